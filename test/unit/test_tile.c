/*
 * test_tile.c — the register-tiled product (rs_tile.h): against plain loops at shapes that cross its blocks,
 * and the sequence encoders trained with it and without it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_core.h"
#include "core/rs_seq.h"
#include "core/rs_tile.h"
#include "unit.h"

static double
rand_unit(RsRng *rng)
{
	return rs_rng_uniform(rng) * 2 - 1;
}

/* worst |x - y| over the worst |y| */
static double
rel_err(const rs_real *x, const rs_real *y, int64_t n)
{
	double		d = 0,
				s = 1e-30;

	for (int64_t i = 0; i < n; i++)
	{
		d = fmax(d, fabs((double) x[i] - y[i]));
		s = fmax(s, fabs((double) y[i]));
	}
	return d / s;
}

static void
test_tile_product(int *failed)
{
	/* rows around the 4-row tile, columns around the 48-wide block and the 384-wide chunk, k around 256 */
	static const int ms[] = {1, 3, 4, 5, 9, 37};
	static const int ns[] = {16, 32, 48, 64, 96, 400};
	static const int ks[] = {0, 1, 7, 300};
	RsRng		rng;
	double		worst = 0;
	int			cases = 0;

	rs_rng_seed(&rng, 7);
	for (int mi = 0; mi < 6; mi++)
		for (int ni = 0; ni < 6; ni++)
			for (int ki = 0; ki < 4; ki++)
				for (int trans = 0; trans < 2; trans++)
					for (int acc = 0; acc < 2; acc++)
					{
						int			m = ms[mi],
									n = ns[ni],
									k = ks[ki],
									lda = k + 3,
									ldb = n + 5,
									ldc = n + 2;
						/* A stored m x lda, or (trans) k x (m + 2) and read transposed */
						int64_t		asize = trans ? (int64_t) (k > 0 ? k : 1) * (m + 2) : (int64_t) m * lda;
						rs_real    *a = malloc(sizeof(rs_real) * asize),
								   *b = malloc(sizeof(rs_real) * ((int64_t) (k > 0 ? k : 1) * ldb)),
								   *c = malloc(sizeof(rs_real) * (int64_t) m * ldc),
								   *want = malloc(sizeof(rs_real) * (int64_t) m * ldc);
						int64_t		a_row = trans ? 1 : lda,
									a_col = trans ? m + 2 : 1;

						for (int64_t i = 0; i < asize; i++)
							a[i] = (rs_real) rand_unit(&rng);
						for (int64_t i = 0; i < (int64_t) (k > 0 ? k : 1) * ldb; i++)
							b[i] = (rs_real) rand_unit(&rng);
						for (int64_t i = 0; i < (int64_t) m * ldc; i++)
							c[i] = want[i] = (rs_real) rand_unit(&rng);
						for (int i = 0; i < m; i++)
							for (int j = 0; j < n; j++)
							{
								double		s = acc ? want[(int64_t) i * ldc + j] : 0;

								for (int p = 0; p < k; p++)
									s += (double) a[i * a_row + p * a_col] * b[(int64_t) p * ldb + j];
								want[(int64_t) i * ldc + j] = (rs_real) s;
							}
						rs_tile_gemm(m, n, k, a, a_row, a_col, b, ldb, c, ldc, acc);
						/* the padding columns past n are left as they were */
						worst = fmax(worst, rel_err(c, want, (int64_t) m * ldc));
						cases++;
						free(a);
						free(b);
						free(c);
						free(want);
					}
	printf("#   tiled product: %d shapes, worst relative error %.2e (%s)\n", cases, worst,
		   rs_tile_ok(16) ? "AVX-512 tile" : "plain loops: no AVX-512 here");
	CHECK_MSG(worst < 1e-5, "tiled product worst relative error %.3e", worst);
}

/* one batch's forward, loss and backward; the final states and every gradient copied out */
static void
seq_grads(RsCell cell, bool tiled, rs_real *hfinal, rs_real *grads_out, int64_t *n_out)
{
	enum
	{
		B = 7, T = 5, V = 20, K = 4
	};
	RsSeq		m = {.cell = cell,.act = RS_ACT_TANH,.vocab = V,.embed = 16,.hidden = 32};
	int64_t		n = rs_seq_layout(&m);
	rs_real    *p = calloc(n, sizeof(rs_real)),
			   *g = calloc(n, sizeof(rs_real));
	int32_t		items[B * T],
				len[B] = {5, 3, 0, 5, 1, 4, 5},
				targets[B],
				negs[K];
	RsRng		rng;

	rs_rng_seed(&rng, 11);
	rs_seq_bind(&m, p, g);
	rs_seq_init(&m, &rng);
	/* biases away from zero, so every bias path counts */
	for (int j = 0; j < m.gates * m.hidden; j++)
	{
		m.p[RS_SEQ_BX][j] = (rs_real) (0.3 * rand_unit(&rng));
		m.p[RS_SEQ_BH][j] = (rs_real) (0.3 * rand_unit(&rng));
	}
	/* items repeat within and across rows (V = 20 for 35 positions) */
	for (int i = 0; i < B * T; i++)
		items[i] = rs_rng_below(&rng, V);
	for (int b = 0; b < B; b++)
		targets[b] = rs_rng_below(&rng, V);
	for (int j = 0; j < K; j++)
		negs[j] = rs_rng_below(&rng, V);
	rs_tile_enabled = tiled;
	memcpy(hfinal, rs_seq_encode(&m, items, len, B, T), sizeof(rs_real) * B * m.hidden);
	rs_seq_loss(&m, targets, negs, K, B);
	rs_seq_backward(&m, len, B, T);
	rs_tile_enabled = true;
	memcpy(grads_out, g, sizeof(rs_real) * n);
	*n_out = n;
	rs_seq_free(&m);
	free(p);
	free(g);
}

static void
test_tile_seq(int *failed)
{
	for (int cell = RS_CELL_RNN; cell <= RS_CELL_GRU; cell++)
	{
		rs_real		h1[7 * 32],
					h2[7 * 32],
				   *g1 = malloc(sizeof(rs_real) * 100000),
				   *g2 = malloc(sizeof(rs_real) * 100000);
		int64_t		n1,
					n2;
		double		eh,
					eg;

		seq_grads(cell, false, h1, g1, &n1);
		seq_grads(cell, true, h2, g2, &n2);
		CHECK(n1 == n2 && n1 < 100000);
		eh = rel_err(h2, h1, 7 * 32);
		eg = rel_err(g2, g1, n1);
		printf("#   %s hidden 32, batch 7 (padded, an empty row), with the tile against without: states %.2e, "
			   "gradients %.2e\n", cell == RS_CELL_GRU ? "gru" : "elman rnn", eh, eg);
		CHECK_MSG(eh < 1e-5 && eg < 1e-4, "tiled %s differs: states %.3e, gradients %.3e",
				  cell == RS_CELL_GRU ? "gru" : "rnn", eh, eg);
		free(g1);
		free(g2);
	}
}

const UnitCase unit_tile_cases[] = {
	{"tile: the tiled product against plain loops, any shape, A or its transpose, with and without C",
	test_tile_product},
	{"tile: gru and elman rnn batches agree with and without the tiled products", test_tile_seq},
	{NULL, NULL}
};
