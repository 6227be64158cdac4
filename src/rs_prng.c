/*
 * rs_prng.c — the core's random numbers are PostgreSQL's pg_prng (xoroshiro128**),
 * so a seed means the same stream in the server, the unit tests and the benchmark.
 * Needs only c.h; the unit tests link libpgcommon for it.
 */
#include "c.h"

#include "common/pg_prng.h"

#include "core/rs_core.h"

StaticAssertDecl(sizeof(RsRng) == sizeof(pg_prng_state), "RsRng mirrors pg_prng_state");

void
rs_rng_seed(RsRng *rng, uint64_t seed)
{
	pg_prng_seed((pg_prng_state *) rng, seed);
}

uint64_t
rs_rng_u64(RsRng *rng)
{
	return pg_prng_uint64((pg_prng_state *) rng);
}

double
rs_rng_uniform(RsRng *rng)
{
	return pg_prng_double((pg_prng_state *) rng);
}

uint32_t
rs_rng_below(RsRng *rng, uint32_t n)
{
	return (uint32_t) pg_prng_uint64_range((pg_prng_state *) rng, 0, n - 1);
}
