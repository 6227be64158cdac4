/*
 * core_host.c — the core's host hooks from PostgreSQL: pg_prng (xoroshiro128**) for
 * random numbers, pg_crc32c (hardware accelerated where the CPU has it) for
 * checksums and hash_uint32_extended for seeded hashes, so a seed means the same stream
 * in the server, the unit tests, the fuzzers and the benchmark. Needs only c.h: the unit tests link libpgcommon for it.
 */
#include "c.h"

#include "common/pg_prng.h"
#include "port/pg_crc32c.h"

#include "core/rs_core.h"
#include "core_host.h"

StaticAssertDecl(sizeof(RsRng) == sizeof(pg_prng_state), "RsRng mirrors pg_prng_state");

static void
HostRngSeed(RsRng *rng, uint64_t seed)
{
	pg_prng_seed((pg_prng_state *) rng, seed);
}

static uint64_t
HostRngU64(RsRng *rng)
{
	return pg_prng_uint64((pg_prng_state *) rng);
}

static double
HostRngUniform(RsRng *rng)
{
	return pg_prng_double((pg_prng_state *) rng);
}

static uint32_t
HostRngBelow(RsRng *rng, uint32_t n)
{
	return (uint32_t) pg_prng_uint64_range((pg_prng_state *) rng, 0, n - 1);
}

static uint32_t
HostCrc32c(const void *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return (uint32_t) crc;
}

/* hash_uint32_extended without the Datum: common/hashfn.h needs postgres.h, this file keeps to c.h */
extern uint64 hash_bytes_uint32_extended(uint32 k, uint64 seed);

static uint64_t
HostHashU32(uint32_t value, uint64_t seed)
{
	return hash_bytes_uint32_extended(value, seed);
}

void
rs_core_use_postgres(void)
{
	rs_host.rng_seed = HostRngSeed;
	rs_host.rng_u64 = HostRngU64;
	rs_host.rng_uniform = HostRngUniform;
	rs_host.rng_below = HostRngBelow;
	rs_host.crc32c = HostCrc32c;
	rs_host.hash_u32 = HostHashU32;
}
