/*
 * rs_core.h — shared pieces of the numeric core (plain C + cblas, no PostgreSQL).
 *
 * The core is written once over rs_real. Built normally rs_real is float and
 * products go to cblas_sgemm; built with -DRS_DOUBLE (the unit tests' reference
 * build) it is double and cblas_dgemm, so gradient checks can compare analytic
 * gradients with finite differences in double precision.
 *
 * The core never allocates behind the caller's back except through rs_alloc, and
 * calls rs_check_interrupts between BLAS calls of long loops: PostgreSQL points
 * these at palloc and CHECK_FOR_INTERRUPTS, tests at calloc and nothing.
 */
#ifndef RS_CORE_H
#define RS_CORE_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#ifdef RS_DOUBLE
typedef double rs_real;
#else
typedef float rs_real;
#endif

/*
 * Elementwise loops are compiled three times in the float build on x86-64 with gcc: for
 * the baseline, for x86-64-v3 (AVX2, FMA) and for x86-64-v4 (AVX-512); glibc's ifunc picks one at load.
 */
#if !defined(RS_DOUBLE) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RS_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RS_VECTOR_CLONES
#endif

/* hooks, set by the embedding program */
/* uninitialised memory: workspaces are written before they are read, and zeroing
 * hundreds of megabytes up front would be a long stretch with no interrupt check */
extern void *(*rs_alloc) (size_t size);
extern void (*rs_release) (void *ptr);
extern void (*rs_check_interrupts) (void);

/* deterministic random numbers: a generator's state, stepped by the host's hooks below */
typedef struct RsRng
{
	uint64_t	s0,
				s1;
} RsRng;

/*
 * What the host supplies besides memory: random numbers, checksums and a seeded hash. PostgreSQL's
 * pg_prng (xoroshiro128**), pg_crc32c and hash_uint32_extended in the server, the unit tests, the fuzzers and
 * the benchmark alike (src/core_host.c, rs_core_use_postgres), so a seed means the same
 * stream everywhere. The core holds only these hooks: it compiles and links without a
 * PostgreSQL header (make check-core). Unset hooks abort with a message.
 */
typedef struct RsHost
{
	void		(*rng_seed) (RsRng *rng, uint64_t seed);
	uint64_t	(*rng_u64) (RsRng *rng);
	double		(*rng_uniform) (RsRng *rng);	/* [0, 1) */
	uint32_t	(*rng_below) (RsRng *rng, uint32_t n);	/* [0, n), n >= 1 */
	uint32_t	(*crc32c) (const void *data, size_t len);
	uint64_t	(*hash_u32) (uint32_t value, uint64_t seed);	/* seeded 64-bit hash (hash_uint32_extended) */
} RsHost;
extern RsHost rs_host;

extern void rs_rng_seed(RsRng *rng, uint64_t seed);
extern uint64_t rs_rng_u64(RsRng *rng);
extern double rs_rng_uniform(RsRng *rng);	/* [0, 1) */
extern double rs_rng_normal(RsRng *rng);	/* N(0, 1), Box-Muller */
extern uint32_t rs_rng_below(RsRng *rng, uint32_t n);	/* [0, n), n >= 1 */
extern uint64_t rs_hash_u32(uint32_t value, uint64_t seed);
/* mixes two 64-bit hashes (PostgreSQL's hash_combine64) */
static inline uint64_t
rs_hash_combine64(uint64_t a, uint64_t b)
{
	a ^= b + UINT64_C(0x49a0f4dd15e5a8e3) + (a << 54) + (a >> 7);
	return a;
}

/* row-major C = alpha * op(A) op(B) + beta * C */
extern void rs_gemm(int trans_a, int trans_b, int m, int n, int k, rs_real alpha,
					const rs_real *a, int lda, const rs_real *b, int ldb,
					rs_real beta, rs_real *c, int ldc);

typedef enum RsAct
{
	RS_ACT_LINEAR = 0,
	RS_ACT_RELU,
	RS_ACT_SIGMOID,
	RS_ACT_TANH
} RsAct;

extern int	rs_act_from_name(const char *name);	/* -1 if unknown */
extern const char *rs_act_name(RsAct act);
extern void rs_act_forward(RsAct act, rs_real *x, int64_t n);
/* d *= act'(y), from the activation's output y */
extern void rs_act_backward(RsAct act, const rs_real *y, rs_real *d, int64_t n);

/* elementwise math in the build's own precision (expf is several times cheaper than exp) */
#ifdef RS_DOUBLE
#define rs_exp(x) exp(x)
#define rs_tanh(x) tanh(x)
#define rs_sqrt(x) sqrt(x)
#else
#define rs_exp(x) expf(x)
#define rs_tanh(x) rs_tanhf(x)
#define rs_sqrt(x) sqrtf(x)

/* tanh from one expf: glibc's tanhf goes through expm1f and costs several times more */
static inline float
rs_tanhf(float x)
{
	float		e = expf(-2.0f * fabsf(x));

	return copysignf((1.0f - e) / (1.0f + e), x);
}
#endif

static inline rs_real
rs_sigmoid(rs_real x)
{
#ifdef RS_DOUBLE
	/* split by sign so exp never overflows */
	rs_real		e = rs_exp(x >= 0 ? -x : x);

	return x >= 0 ? 1 / (1 + e) : e / (1 + e);
#else
	/* no branch: expf(-x) overflows to inf for x < -88, and 1 / (1 + inf) is the right 0 */
	return 1.0f / (1.0f + expf(-x));
#endif
}

/*
 * The GRU's gates in loops the compiler vectorises: e^x inlined (Cephes' range reduction and degree-6 polynomial,
 * within a float's rounding of expf) instead of one libm call per element, which cost the GRU epoch a tenth of
 * its time. Only x <= 0 is needed (sigmoid and tanh both take e^-|x|), so the one clamp is on the integer
 * exponent; a float compare or fminf in the loop stops gcc from vectorising it under PostgreSQL's -fwrapv.
 */
#ifndef RS_DOUBLE
static inline float
rs_expf_neg(float x)
{
	/* n = floor(x / ln 2 + 0.5) by truncating a positive number; below -87.3 the result is 0 (scale 2^-127 = 0) */
	int32_t		sn = (int32_t) (x * 1.44269504088896341f + 128.5f);
	float		fn,
				r,
				p = 1.9875691500e-4f;
	union
	{
		uint32_t	i;
		float		f;
	}			scale;

	sn = sn < 1 ? 1 : sn;
	fn = (float) (sn - 128);
	r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	scale.i = ((uint32_t) sn - 1u) << 23;
	return p * scale.f;
}

/* 1 / (1 + e^-x), from e = e^-|x|: (x >= 0 ? 1 : e) / (1 + e), the choice made from x's sign bit */
static inline float
rs_sigmoid_v(float x)
{
	union
	{
		float		f;
		int32_t		i;
	}			u = {x};
	float		e = rs_expf_neg(-fabsf(x));
	float		pos = (float) (1 + (u.i >> 31));

	return (pos + (1.0f - pos) * e) / (1.0f + e);
}

static inline float
rs_tanh_v(float x)
{
	float		e = rs_expf_neg(-2.0f * fabsf(x));

	return copysignf((1.0f - e) / (1.0f + e), x);
}
#else
#define rs_sigmoid_v(x) rs_sigmoid(x)
#define rs_tanh_v(x) rs_tanh(x)
#endif

/* initialisation: Xavier (Glorot) uniform for tanh/sigmoid/linear, He uniform for ReLU */
extern void rs_init_dense(RsRng *rng, rs_real *w, int fan_in, int fan_out, RsAct act);
extern void rs_init_normal(RsRng *rng, rs_real *w, int64_t n, double std);

#endif							/* RS_CORE_H */
