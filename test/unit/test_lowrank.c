/*
 * test_lowrank.c — the large-catalogue bundle fit against the dense one: G omega by one
 * streamed pass equals the formed Gram times omega, and at full rank the low-rank fit's
 * sparse B and M equal the dense EASE solution's; both with the catalogue's own rows,
 * which are checked against brute force first.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/rs_bundle.h"
#include "../../src/core/rs_ease.h"
#include "../../src/core/rs_lowrank.h"
#include "unit.h"

#define LR_NU 400
#define LR_NB 24
#define LR_NI 40

typedef struct LrCase
{
	int32_t		bi_ptr[LR_NB + 1],
				bi_idx[LR_NB * 4],
				ub_ptr[LR_NU + 1],
				ub_idx[LR_NU * LR_NB],
				ui_ptr[LR_NU + 1],
				ui_idx[LR_NU * LR_NI];
	RsItemView	v;
	RsFitRows	rows;
} LrCase;

/* bundles of 2 to 4 items; customers taking a few bundles and buying items near them */
static LrCase *
LrCaseMake(unsigned seed, double beta, double content)
{
	LrCase	   *c = calloc(1, sizeof(LrCase));
	RsRows		bi = {c->bi_ptr, c->bi_idx};

	srand(seed);
	for (int b = 0; b < LR_NB; b++)
	{
		int			size = 2 + rand() % 3;

		c->bi_ptr[b + 1] = c->bi_ptr[b];
		for (int k = 0; k < size; k++)
		{
			int32_t		item = (b * 2 + k * 3 + rand() % 2) % LR_NI,
						dup = 0;

			for (int p = c->bi_ptr[b]; p < c->bi_ptr[b + 1]; p++)
				dup |= c->bi_idx[p] == item;
			if (!dup)
				c->bi_idx[c->bi_ptr[b + 1]++] = item;
		}
		/* bundle_items rows are sorted by item within a bundle */
		for (int p = c->bi_ptr[b] + 1; p < c->bi_ptr[b + 1]; p++)
			for (int q = p; q > c->bi_ptr[b] && c->bi_idx[q - 1] > c->bi_idx[q]; q--)
			{
				int32_t		t = c->bi_idx[q];

				c->bi_idx[q] = c->bi_idx[q - 1];
				c->bi_idx[q - 1] = t;
			}
	}
	for (int u = 0; u < LR_NU; u++)
	{
		int			home = rand() % LR_NB;

		c->ub_ptr[u + 1] = c->ub_ptr[u];
		c->ui_ptr[u + 1] = c->ui_ptr[u];
		for (int b = 0; b < LR_NB; b++)
			if (rand() % 100 < (abs(b - home) <= 2 ? 40 : 3))
				c->ub_idx[c->ub_ptr[u + 1]++] = b;
		for (int i = 0; i < LR_NI; i++)
			if (rand() % 100 < (abs(i - 2 * home) <= 3 ? 30 : 2))
				c->ui_idx[c->ui_ptr[u + 1]++] = i;
	}
	rs_item_view_build(LR_NB, LR_NI, bi, &c->v);
	c->rows.nu = LR_NU;
	c->rows.nb = LR_NB;
	c->rows.ni = LR_NI;
	c->rows.user_bundles = (RsRows) {c->ub_ptr, c->ub_idx};
	c->rows.user_items = (RsRows) {c->ui_ptr, c->ui_idx};
	c->rows.v = &c->v;
	c->rows.beta = beta;
	c->rows.view_norm = 0.75;
	c->rows.content = content;
	c->rows.holdout = 1;
	c->rows.seed = 42;
	return c;
}

static void
LrCaseFree(LrCase *c)
{
	rs_release(c->v.ib_ptr), rs_release(c->v.ib_idx), rs_release(c->v.ib_w), rs_release(c->v.idf),
		rs_release(c->v.mass);
	free(c);
}

static void
test_fit_content(int *failed)
{
	LrCase	   *c = LrCaseMake(3, 1.0, 1.3);
	static float g[LR_NB * LR_NB];
	double		worst = 0;
	int			offdiag = 0;

	memset(g, 0, sizeof(g));
	rs_fit_content(LR_NB, LR_NI, &c->v, c->rows.content, g);
	/* brute force from the bundles' item lists: item i's row r_i[b] = 1/sqrt|b| where b holds i */
	for (int a = 0; a < LR_NB; a++)
		for (int b = 0; b < LR_NB; b++)
		{
			double		want = 0;

			for (int i = 0; i < LR_NI; i++)
			{
				int			in_a = 0,
							in_b = 0;

				for (int p = c->bi_ptr[a]; p < c->bi_ptr[a + 1]; p++)
					in_a |= c->bi_idx[p] == i;
				for (int p = c->bi_ptr[b]; p < c->bi_ptr[b + 1]; p++)
					in_b |= c->bi_idx[p] == i;
				if (in_a && in_b)
					want += c->rows.content * c->v.idf[i] / sqrt((double) (c->bi_ptr[a + 1] - c->bi_ptr[a])) /
						sqrt((double) (c->bi_ptr[b + 1] - c->bi_ptr[b]));
			}
			/* the upper triangle only, as the customers' Gram */
			if (a > b)
				want = 0;
			offdiag += a < b && want > 0;
			worst = fmax(worst, fabs(g[a * LR_NB + b] - want));
		}
	CHECK_MSG(worst < 1e-5, "content rows worst error %g against brute force", worst);
	CHECK_MSG(offdiag > 10, "only %d bundle pairs share an item", offdiag);
	LrCaseFree(c);
}

static void
test_gram_apply(int *failed)
{
	LrCase	   *c = LrCaseMake(5, 2.0, 1.5);
	static float g[LR_NB * LR_NB],
				omega[LR_NB * 3],
				y[LR_NB * 3];
	float		count[LR_NB] = {0},
				count2[LR_NB] = {0};
	int64_t		pairs = 0,
				heldout = 0,
				pairs2 = 0,
				heldout2 = 0;
	double		worst = 0;

	memset(g, 0, sizeof(g));
	rs_fit_gram(LR_NU, LR_NB, c->rows.user_bundles, c->rows.user_items, &c->v, c->rows.beta, c->rows.view_norm, 1, 42,
				g, count, &pairs, &heldout);
	rs_fit_content(LR_NB, LR_NI, &c->v, c->rows.content, g);
	for (int a = 0; a < LR_NB; a++)
		for (int b = 0; b < a; b++)
			g[a * LR_NB + b] = g[b * LR_NB + a];
	for (int k = 0; k < LR_NB * 3; k++)
		omega[k] = (float) ((k * 7919) % 13) - 6.0f;
	rs_gram_apply(&c->rows, omega, 3, y, count2, &pairs2, &heldout2);
	for (int a = 0; a < LR_NB; a++)
		for (int k = 0; k < 3; k++)
		{
			double		want = 0;

			for (int b = 0; b < LR_NB; b++)
				want += (double) g[a * LR_NB + b] * omega[b * 3 + k];
			worst = fmax(worst, fabs(y[a * 3 + k] - want) / fmax(1, fabs(want)));
		}
	CHECK_MSG(worst < 1e-4, "G omega worst relative error %g against the formed Gram", worst);
	CHECK(pairs2 == pairs && heldout2 == heldout && heldout > 50);
	for (int b = 0; b < LR_NB; b++)
		CHECK(count2[b] == count[b]);
	LrCaseFree(c);
}

static void
test_lowrank_full_rank(int *failed)
{
	LrCase	   *c = LrCaseMake(9, 1.0, 0.8);
	static float g[LR_NB * LR_NB],
				bval[LR_NB * LR_NB],
				mval[LR_NI * LR_NB];
	static int32_t bidx[LR_NB * LR_NB],
				midx[LR_NI * LR_NB];
	float		count[LR_NB] = {0},
				count2[LR_NB];
	int64_t		pairs = 0,
				heldout = 0,
				pairs2,
				heldout2;
	double		worst = 0,
				scale = 0;
	const double lambda = 20.0;

	rs_fit_gram(LR_NU, LR_NB, c->rows.user_bundles, c->rows.user_items, &c->v, c->rows.beta, c->rows.view_norm, 1, 42,
				g, count, &pairs, &heldout);
	rs_fit_content(LR_NB, LR_NI, &c->v, c->rows.content, g);
	for (int a = 0; a < LR_NB; a++)
		for (int b = 0; b < a; b++)
			g[a * LR_NB + b] = g[b * LR_NB + a];
	CHECK(rs_ease_solve(g, LR_NB, lambda) == 0);
	/* every entry kept, every eigenpair: the low-rank fit is the dense one */
	CHECK(rs_fit_lowrank(&c->rows, LR_NB, 3, 7, lambda, LR_NB, LR_NB, bidx, bval, midx, mval, count2, &pairs2,
						 &heldout2) == 0);
	CHECK(pairs2 == pairs && heldout2 == heldout);
	for (int b = 0; b < LR_NB; b++)
		CHECK(fabsf(count2[b] - logf(1 + count[b])) < 1e-6);
	for (int k = 0; k < LR_NB * LR_NB; k++)
		scale = fmax(scale, fabs(g[k]));
	for (int r = 0; r < LR_NB; r++)
	{
		float		row[LR_NB] = {0};

		for (int k = 0; k < LR_NB; k++)
			row[bidx[r * LR_NB + k]] += bval[r * LR_NB + k];
		for (int j = 0; j < LR_NB; j++)
			worst = fmax(worst, fabs(row[j] - g[r * LR_NB + j]));
	}
	CHECK_MSG(worst < 1e-3 * scale, "B worst error %g against the dense solve (largest entry %g)", worst, scale);
	worst = 0;
	for (int i = 0; i < LR_NI; i++)
	{
		float		row[LR_NB] = {0},
					m[LR_NB] = {0};

		for (int k = 0; k < LR_NB; k++)
			row[midx[i * LR_NB + k]] += mval[i * LR_NB + k];
		for (int p = c->v.ib_ptr[i]; p < c->v.ib_ptr[i + 1]; p++)
			for (int j = 0; j < LR_NB; j++)
				m[j] += c->v.ib_w[p] * g[c->v.ib_idx[p] * LR_NB + j];
		for (int j = 0; j < LR_NB; j++)
			worst = fmax(worst, fabs(row[j] - m[j]));
	}
	CHECK_MSG(worst < 1e-3 * scale, "M worst error %g against BIn' B of the dense solve", worst);

	/* a lower rank keeps the strongest neighbours: most of each row's top 3 survive at rank 12 */
	{
		static float bval12[LR_NB * 3],
					mval12[LR_NI * 3];
		static int32_t bidx12[LR_NB * 3],
					midx12[LR_NI * 3];
		int			same = 0;

		CHECK(rs_fit_lowrank(&c->rows, 12, 3, 7, lambda, 3, 3, bidx12, bval12, midx12, mval12, count2, &pairs2,
							 &heldout2) == 0);
		for (int r = 0; r < LR_NB; r++)
		{
			int32_t		top[3];
			float		tv[3];
			int32_t		work[LR_NB];

			rs_top_abs(g + r * LR_NB, LR_NB, 3, top, tv, work);
			for (int a = 0; a < 3; a++)
				for (int b = 0; b < 3; b++)
					same += top[a] == bidx12[r * 3 + b];
		}
		CHECK_MSG(same >= LR_NB * 3 / 2, "rank 12 kept %d of %d strongest neighbours", same, LR_NB * 3);
	}
	LrCaseFree(c);
}

const UnitCase unit_lowrank_cases[] = {
	{"fit: the catalogue's rows (content x idf x r r' per item) equal brute force, upper triangle only", test_fit_content},
	{"lowrank: G omega by one streamed pass equals the formed Gram times omega", test_gram_apply},
	{"lowrank: at full rank the low-rank fit's B and M equal the dense EASE solution", test_lowrank_full_rank},
	{NULL, NULL}
};
