/*
 * core_bench.c — the numeric core standalone: samples/s for the reference MLP and
 * GRU configurations, and the GFLOP/s its matrix products reach.
 *
 *   core_bench THREADS [SECONDS] [--phases]
 *
 * MLP 128-256-128-1, BCE, Adam, batch 256. GRU: vocabulary 10,000, embedding 64,
 * hidden 128, sequences of 20, 100 sampled negatives, Adam, batch 256. Random data
 * from a fixed seed, the same shapes as bench/torch_bench.py. GRU_EMBED and GRU_HIDDEN
 * set other GRU widths (recsys.train's GRUs are 32 and 64), GRU_NEGATIVES the negatives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rs_core.h"
#include "core/rs_mlp.h"
#include "core/rs_seq.h"
#include "core_host.h"

extern void openblas_set_num_threads(int);

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void
bench_mlp(double seconds)
{
	enum
	{
		B = 256
	};
	RsMlp		m = {.nlayers = 3,.dims = {128, 256, 128, 1},.hidden = RS_ACT_RELU,.output = RS_ACT_SIGMOID};
	int64_t		n = rs_mlp_nparams(m.dims, 3);
	float	   *p = calloc(n, 4),
			   *g = calloc(n, 4),
			   *om = calloc(n, 4),
			   *ov = calloc(n, 4);
	int			nb = 64;
	float	   *x = malloc(sizeof(float) * B * 128 * nb),
			   *y = malloc(sizeof(float) * B * nb);
	RsRng		rng;
	RsOptim		opt;
	long		steps = 0;
	double		t0,
				dt,
				flops;

	rs_rng_seed(&rng, 1);
	rs_mlp_bind(&m, p, g);
	rs_mlp_init(&m, &rng);
	for (long i = 0; i < (long) B * 128 * nb; i++)
		x[i] = (float) rs_rng_normal(&rng);
	for (long i = 0; i < (long) B * nb; i++)
		y[i] = rs_rng_uniform(&rng) < 0.5 ? 0 : 1;
	rs_optim_defaults(&opt, RS_OPT_ADAM);
	rs_mlp_train_batch(&m, &opt, p, g, om, ov, x, y, B, RS_LOSS_BCE, NULL, 0);	/* warm up */
	t0 = now();
	do
	{
		int			k = steps % nb;

		rs_mlp_train_batch(&m, &opt, p, g, om, ov, x + (long) k * B * 128, y + (long) k * B, B, RS_LOSS_BCE, NULL, 0);
		steps++;
	} while ((dt = now() - t0) < seconds);
	/* forward 2*sum(fi*fo), backward: dW for every layer, dX for all but the first */
	flops = 2.0 * (128 * 256 + 256 * 128 + 128) * 2 + 2.0 * (256 * 128 + 128);
	printf("core mlp 128-256-128-1: %.0f samples/s, %.1f GFLOP/s\n", steps * B / dt, steps * B * flops / dt / 1e9);
}

static void
bench_gru(double seconds, int phases)
{
	enum
	{
		B = 256, T = 20, V = 10000
	};
	int			E = getenv("GRU_EMBED") ? atoi(getenv("GRU_EMBED")) : 64,
				H = getenv("GRU_HIDDEN") ? atoi(getenv("GRU_HIDDEN")) : 128,
				K = getenv("GRU_NEGATIVES") ? atoi(getenv("GRU_NEGATIVES")) : 100;
	RsSeq		m = {.cell = RS_CELL_GRU,.act = RS_ACT_TANH,.vocab = V,.embed = E,.hidden = H};
	int64_t		n = rs_seq_layout(&m);
	float	   *p = calloc(n, 4),
			   *g = calloc(n, 4),
			   *om = calloc(n, 4),
			   *ov = calloc(n, 4);
	int32_t    *items = malloc(sizeof(int32_t) * B * T),
			   *len = malloc(sizeof(int32_t) * B),
			   *targets = malloc(sizeof(int32_t) * B),
			   *negs = malloc(sizeof(int32_t) * K);
	RsRng		rng;
	RsOptim		opt;
	long		steps = 0;
	double		t0,
				dt,
				flops,
				te = 0,
				tl = 0,
				tb = 0;

	rs_rng_seed(&rng, 2);
	rs_seq_bind(&m, p, g);
	rs_seq_init(&m, &rng);
	rs_optim_defaults(&opt, RS_OPT_ADAM);
	for (int b = 0; b < B; b++)
	{
		len[b] = T;
		targets[b] = rs_rng_below(&rng, V);
		for (int t = 0; t < T; t++)
			items[b * T + t] = rs_rng_below(&rng, V);
	}
	for (int j = 0; j < K; j++)
		negs[j] = rs_rng_below(&rng, V);
	rs_seq_train_batch(&m, &opt, p, g, om, ov, items, len, B, T, targets, negs, K);
	t0 = now();
	do
	{
		for (int j = 0; j < K; j++)
			negs[j] = rs_rng_below(&rng, V);
		rs_seq_train_batch(&m, &opt, p, g, om, ov, items, len, B, T, targets, negs, K);
		steps++;
	} while ((dt = now() - t0) < seconds);
	/* per sequence step: input and recurrent products forward (2*(E+H)*3H), twice that backward */
	flops = (double) T * 2.0 * (E + H) * 3 * H * 3 + 2.0 * K * H * 3;
	printf("core gru e%d h%d t20 k%d: %.0f samples/s, %.1f GFLOP/s\n", E, H, K, steps * B / dt, steps * B * flops / dt / 1e9);
	if (phases)
	{
		for (int r = 0; r < 5; r++)
		{
			double		a = now(),
						b2,
						c;

			rs_seq_encode(&m, items, len, B, T);
			b2 = now();
			rs_seq_loss(&m, targets, negs, K, B);
			c = now();
			rs_seq_backward(&m, len, B, T);
			te += b2 - a;
			tl += c - b2;
			tb += now() - c;
		}
		printf("  phases per step: encode %.2f ms, loss %.2f ms, backward %.2f ms\n", te / 5 * 1e3, tl / 5 * 1e3, tb / 5 * 1e3);
	}
}

int
main(int argc, char **argv)
{
	int			threads = argc > 1 ? atoi(argv[1]) : 1;
	double		seconds = argc > 2 ? atof(argv[2]) : 3;
	int			phases = argc > 3 && strcmp(argv[3], "--phases") == 0;

	openblas_set_num_threads(threads);
	rs_core_use_postgres();
	printf("threads %d\n", threads);
	if (!getenv("GRU_ONLY"))
		bench_mlp(seconds);
	if (!getenv("MLP_ONLY"))
		bench_gru(seconds, phases);
	return 0;
}
