/*
 * rs_core.c — hooks, GEMM wrapper, activations and initialisation.
 */
#include "rs_core.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
default_alloc(size_t size)
{
	return malloc(size);
}

static void
no_check(void)
{
}

void	   *(*rs_alloc) (size_t size) = default_alloc;
void		(*rs_release) (void *ptr) = free;
void		(*rs_check_interrupts) (void) = no_check;

void
rs_gemm(int trans_a, int trans_b, int m, int n, int k, rs_real alpha,
		const rs_real *a, int lda, const rs_real *b, int ldb,
		rs_real beta, rs_real *c, int ldc)
{
#ifdef RS_DOUBLE
	cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
				m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
				m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

static const char *const act_names[] = {"linear", "relu", "sigmoid", "tanh"};

int
rs_act_from_name(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, act_names[i]) == 0)
			return i;
	return -1;
}

const char *
rs_act_name(RsAct act)
{
	return act_names[act];
}

RS_VECTOR_CLONES
void
rs_act_forward(RsAct act, rs_real *x, int64_t n)
{
	switch (act)
	{
		case RS_ACT_LINEAR:
			break;
		case RS_ACT_RELU:
			for (int64_t i = 0; i < n; i++)
				x[i] = x[i] > 0 ? x[i] : 0;
			break;
		case RS_ACT_SIGMOID:
			for (int64_t i = 0; i < n; i++)
				x[i] = rs_sigmoid(x[i]);
			break;
		case RS_ACT_TANH:
			for (int64_t i = 0; i < n; i++)
				x[i] = rs_tanh(x[i]);
			break;
	}
}

RS_VECTOR_CLONES
void
rs_act_backward(RsAct act, const rs_real *restrict y, rs_real *restrict d, int64_t n)
{
	switch (act)
	{
		case RS_ACT_LINEAR:
			break;
		case RS_ACT_RELU:
#ifdef RS_DOUBLE
			for (int64_t i = 0; i < n; i++)
				d[i] = y[i] > 0 ? d[i] : 0;
#else
			/*
			 * A ReLU output is +0.0 or positive, so "y > 0" is "bits != 0": an integer
			 * mask vectorises, where a float compare (trapping math) stays a branch
			 * that mispredicts on every other element.
			 */
			for (int64_t i = 0; i < n; i++)
			{
				uint32_t	yb,
							db;

				memcpy(&yb, &y[i], 4);
				memcpy(&db, &d[i], 4);
				db &= -(uint32_t) (yb != 0);
				memcpy(&d[i], &db, 4);
			}
#endif
			break;
		case RS_ACT_SIGMOID:
			for (int64_t i = 0; i < n; i++)
				d[i] *= y[i] * (1 - y[i]);
			break;
		case RS_ACT_TANH:
			for (int64_t i = 0; i < n; i++)
				d[i] *= 1 - y[i] * y[i];
			break;
	}
}

static void
host_missing(const char *what)
{
	fprintf(stderr, "recsys core: the host set no %s hook (rs_host)\n", what);
	abort();
}

static void
missing_seed(RsRng *rng, uint64_t seed)
{
	host_missing("rng_seed");
}

static uint64_t
missing_u64(RsRng *rng)
{
	host_missing("rng_u64");
	return 0;
}

static double
missing_uniform(RsRng *rng)
{
	host_missing("rng_uniform");
	return 0;
}

static uint32_t
missing_below(RsRng *rng, uint32_t n)
{
	host_missing("rng_below");
	return 0;
}

static uint32_t
missing_crc32c(const void *data, size_t len)
{
	host_missing("crc32c");
	return 0;
}

static uint64_t
missing_hash_u32(uint32_t value, uint64_t seed)
{
	(void) value;
	(void) seed;
	host_missing("hash_u32");
	return 0;
}

RsHost		rs_host = {missing_seed, missing_u64, missing_uniform, missing_below, missing_crc32c, missing_hash_u32};

uint64_t
rs_hash_u32(uint32_t value, uint64_t seed)
{
	return rs_host.hash_u32(value, seed);
}

void
rs_rng_seed(RsRng *rng, uint64_t seed)
{
	rs_host.rng_seed(rng, seed);
}

uint64_t
rs_rng_u64(RsRng *rng)
{
	return rs_host.rng_u64(rng);
}

double
rs_rng_uniform(RsRng *rng)
{
	return rs_host.rng_uniform(rng);
}

uint32_t
rs_rng_below(RsRng *rng, uint32_t n)
{
	return rs_host.rng_below(rng, n);
}

double
rs_rng_normal(RsRng *rng)
{
	double		u1 = rs_rng_uniform(rng),
				u2 = rs_rng_uniform(rng);

	/* u1 in (0, 1]: log never sees zero */
	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void
rs_init_dense(RsRng *rng, rs_real *w, int fan_in, int fan_out, RsAct act)
{
	double		limit = act == RS_ACT_RELU ? sqrt(6.0 / fan_in) : sqrt(6.0 / (fan_in + fan_out));

	for (int64_t i = 0; i < (int64_t) fan_in * fan_out; i++)
		w[i] = (rs_real) ((2.0 * rs_rng_uniform(rng) - 1.0) * limit);
}

void
rs_init_normal(RsRng *rng, rs_real *w, int64_t n, double std)
{
	for (int64_t i = 0; i < n; i++)
		w[i] = (rs_real) (rs_rng_normal(rng) * std);
}
