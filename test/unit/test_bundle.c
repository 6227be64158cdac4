/*
 * test_bundle.c — the bundle ranker's serving arithmetic: top-n selection against a
 * full sort (ties, skips, zeros, huge and tiny scores), and scores and features of a
 * hand-built model against hand-computed values; the fit's numerics (core/rs_fit.h): the
 * held-out split, the item view by hand, the blocked Gram against a brute-force one, and
 * the sparse solve against the dense EASE solution.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_bundle.h"
#include "core/rs_ease.h"
#include "core/rs_fit.h"
#include "unit.h"

static const float *sort_scores;

static int
CmpRank(const void *a, const void *b)
{
	int			x = *(const int *) a,
				y = *(const int *) b;

	if (sort_scores[x] != sort_scores[y])
		return sort_scores[x] > sort_scores[y] ? -1 : 1;
	return x - y;
}

static void
test_top_n(int *failed)
{
	srand(7);
	for (int t = 0; t < 2000; t++)
	{
		int			n = 1 + rand() % 3000,
					k = 1 + rand() % 150,
					m = 0,
					want,
					got;
		float	   *s = malloc(sizeof(float) * n);
		uint8_t    *skip = malloc(n);
		int		   *idx = malloc(sizeof(int) * n);
		int32_t    *out = malloc(sizeof(int32_t) * k);

		for (int i = 0; i < n; i++)
		{
			int			r = rand() % 4;

			/* zeros and small integers tie a lot; the rest spans many magnitudes and both signs */
			s[i] = r == 0 ? 0 : r == 1 ? (float) (rand() % 5) :
				((float) rand() / RAND_MAX - 0.5f) * (rand() % 2 ? 1000.0f : 0.001f);
			skip[i] = rand() % 5 == 0;
		}
		for (int i = 0; i < n; i++)
			if (!skip[i])
				idx[m++] = i;
		sort_scores = s;
		qsort(idx, m, sizeof(int), CmpRank);
		got = rs_top_n(s, n, skip, k, out);
		/* over an index list holding every index in reverse, the same answer */
		{
			int32_t    *all = malloc(sizeof(int32_t) * n),
					   *out2 = malloc(sizeof(int32_t) * k);
			int			got2;

			for (int i = 0; i < n; i++)
				all[i] = n - 1 - i;
			got2 = rs_top_n_among(s, all, n, skip, k, out2);
			CHECK(got2 == got && memcmp(out, out2, sizeof(int32_t) * got) == 0);
			free(all);
			free(out2);
		}
		want = m < k ? m : k;
		CHECK_MSG(got == want, "trial %d: %d selected, want %d", t, got, want);
		for (int i = 0; i < got && i < want; i++)
			if (out[i] != idx[i])
			{
				CHECK_MSG(0, "trial %d: position %d holds %d, want %d", t, i, out[i], idx[i]);
				break;
			}
		free(s);
		free(skip);
		free(idx);
		free(out);
	}
}

static void
test_score_features(int *failed)
{
	/* 3 bundles, 2 items; item 0 is in bundles 0 and 1, item 1 in bundle 2 */
	int32_t		bidx[] = {1, 2, 0, 2, 0, 1};	/* keep 2 per bundle */
	float		bval[] = {0.5f, -0.25f, 0.5f, 0.125f, -0.25f, 0.125f};
	int32_t		midx[] = {2, 0, 1, 0};	/* keep 2 per item */
	float		mval[] = {0.375f, 1.0f, 0.25f, 0.5f};
	float		idf[] = {2.0f, 1.0f};
	float		mass[] = {2.0f * (1 / sqrtf(2) + 1 / sqrtf(2)), 1.0f * 1};
	float		pop[] = {logf(3), logf(2), 0};
	int32_t		ib_ptr[] = {0, 2, 3};
	int32_t		ib_idx[] = {0, 1, 2};
	float		ib_w[] = {1 / sqrtf(2), 1 / sqrtf(2), 1};
	RsBundleModel m = {.nb = 3,.ni = 2,.mb = 2,.mm = 2,.beta = 8,.view_norm = 1,.bidx = bidx,.bval = bval,.midx = midx,.mval = mval,
	.idf = idf,.mass = mass,.pop = pop,.ib_ptr = ib_ptr,.ib_idx = ib_idx,.ib_w = ib_w};
	int32_t		taken[] = {0};
	int32_t		items[] = {0, 1};
	float		s[3],
				iv[3],
				x[3 * RS_BUNDLE_NFEAT];
	int32_t		cand[] = {1, 2};
	double		z = rs_bundle_score(&m, taken, 1, items, 2, s, iv);
	double		zz = mass[0] + mass[1];
	double		w0 = 8 * 2.0 / zz,
				w1 = 8 * 1.0 / zz;

	CHECK(fabs(z - zz) < 1e-6);
	/* s = row 0 of B + w0 * M[0] + w1 * M[1] */
	CHECK(fabs(s[0] - (0 + w0 * 1.0 + w1 * 0.5)) < 1e-5);
	CHECK(fabs(s[1] - (0.5 + 0 + w1 * 0.25)) < 1e-5);
	CHECK(fabs(s[2] - (-0.25 + w0 * 0.375)) < 1e-5);
	CHECK(fabs(iv[0] - 2 / sqrt(2)) < 1e-6 && fabs(iv[1] - 2 / sqrt(2)) < 1e-6 && fabs(iv[2] - 1) < 1e-6);
	rs_bundle_features(&m, s, iv, 1, cand, 2, x);
	{
		float		smax = fmaxf(fabsf(s[0]), fmaxf(fabsf(s[1]), fabsf(s[2])));

		CHECK(fabs(x[0] - s[1] / smax) < 1e-6 && fabs(x[1] - s[1]) < 1e-6);
		CHECK(fabs(x[2] - 1) < 1e-6);	/* iv[1] is the largest */
		CHECK(fabs(x[3] - logf(2) / 8) < 1e-6 && fabs(x[4] - logf(2) / 5) < 1e-6);
		CHECK(fabs(x[RS_BUNDLE_NFEAT + 2] - 1 / (2 / sqrt(2))) < 1e-6);
	}
	/* the serving path: touched bundles listed once, same scores, and clearing restores the zeros */
	{
		float		s2[3] = {0, 0, 0},
					iv2[3] = {0, 0, 0};
		uint8_t		mark[3] = {0, 0, 0};
		int32_t		touched[3];
		int			nt = 0;
		double		z2 = rs_bundle_score_touched(&m, taken, 1, items, 2, s2, iv2, mark, touched, &nt);

		CHECK(z2 == z && nt == 3);
		for (int b = 0; b < 3; b++)
			CHECK(s2[b] == s[b] && iv2[b] == iv[b] && mark[b] == 1);
		rs_bundle_clear(s2, iv2, mark, touched, nt);
		for (int b = 0; b < 3; b++)
			CHECK(s2[b] == 0 && iv2[b] == 0 && mark[b] == 0);
	}
	/* indexes outside the model (new since the fit) are ignored, and no items means z = 0 */
	{
		int32_t		odd[] = {7, -1};

		CHECK(rs_bundle_score(&m, odd, 2, odd, 2, s, iv) == 0);
		CHECK(s[0] == 0 && s[1] == 0 && s[2] == 0);
	}
}

static void
test_holdout(int *failed)
{
	int32_t		one[1] = {4},
				many[5] = {9, 3, 7, 1, 5};
	int			valid = 0,
				moved = 0;

	CHECK(rs_holdout_pick(42, 1, one, 1) == -1);
	CHECK(rs_holdout_pick(42, 1, many, 0) == -1);
	for (int32_t u = 0; u < 10000; u++)
	{
		int			p = rs_holdout_pick(42, u, many, 5);

		CHECK(p >= 0 && p < 5);
		CHECK(p == rs_holdout_pick(42, u, many, 5));
		moved += p != rs_holdout_pick(43, u, many, 5);
		valid += rs_holdout_valid(42, u);
	}
	/* one customer in five validates; another seed holds out other bundles */
	CHECK_MSG(valid > 1800 && valid < 2200, "validating customers: %d of 10000", valid);
	CHECK_MSG(moved > 6000, "a new seed moved %d of 10000 held-out picks", moved);

	/* the learned parts' customer sample: about max of nu, seeded, everyone when nu fits */
	{
		int			kept = 0,
					both = 0,
					all = 0;

		for (int32_t u = 0; u < 100000; u++)
		{
			kept += rs_customer_sampled(42, u, 100000, 20000);
			both += rs_customer_sampled(42, u, 100000, 20000) && rs_customer_sampled(43, u, 100000, 20000);
			all += rs_customer_sampled(42, u, 100000, 100000) + rs_customer_sampled(42, u, 100000, 0);
		}
		CHECK_MSG(kept > 19000 && kept < 21000, "sampled %d of 100000 customers for 20000", kept);
		CHECK_MSG(both > 3000 && both < 5000, "two seeds share %d sampled customers (independent: 4000)", both);
		CHECK(all == 200000);
	}
}

/* bundles {0, 1}, {1, 2, 3}, {3}; item 4 in none */
static const int32_t bi_ptr[] = {0, 2, 5, 6},
			bi_idx[] = {0, 1, 1, 2, 3, 3};

static void
test_item_view(int *failed)
{
	RsItemView	v;
	RsRows		bi = {bi_ptr, bi_idx};
	const int	df[5] = {1, 2, 1, 2, 0};

	rs_item_view_build(3, 5, bi, &v);
	CHECK(v.ib_ptr[0] == 0 && v.ib_ptr[1] == 1 && v.ib_ptr[2] == 3 && v.ib_ptr[3] == 4 && v.ib_ptr[4] == 6 &&
		  v.ib_ptr[5] == 6);
	/* item 1 is in bundles 0 (size 2) and 1 (size 3) */
	CHECK(v.ib_idx[1] == 0 && v.ib_idx[2] == 1);
	CHECK(fabsf(v.ib_w[1] - 1 / sqrtf(2)) < 1e-6 && fabsf(v.ib_w[2] - 1 / sqrtf(3)) < 1e-6);
	for (int i = 0; i < 5; i++)
	{
		double		idf = df[i] ? fmax(log(3.0 / (df[i] + 1.0)), 0) : 0,
					c = 0;

		for (int p = v.ib_ptr[i]; p < v.ib_ptr[i + 1]; p++)
			c += v.ib_w[p];
		CHECK_MSG(fabs(v.idf[i] - idf) < 1e-6, "idf of item %d: %g, want %g", i, v.idf[i], idf);
		CHECK(fabs(v.mass[i] - idf * c) < 1e-6);
	}
	rs_release(v.ib_ptr), rs_release(v.ib_idx), rs_release(v.ib_w), rs_release(v.idf), rs_release(v.mass);
}

/* random customers over the catalogue above (nb 3, ni 5), 600 of them: more than one block of the Gram */
#define FIT_NU 600

static void
test_fit_gram_sparse(int *failed)
{
	int32_t		ub_ptr[FIT_NU + 1],
				ub_idx[FIT_NU * 3],
				ui_ptr[FIT_NU + 1],
				ui_idx[FIT_NU * 5];
	RsRows		bi = {bi_ptr, bi_idx},
				ub = {ub_ptr, ub_idx},
				ui = {ui_ptr, ui_idx};
	RsItemView	v;
	double		want[9] = {0},
				beta = 0.5;
	float		g[9] = {0},
				count[3] = {0},
				dense[9],
				bval[9],
				mval[15];
	int32_t		bidx[9],
				midx[15];
	int64_t		pairs = 0,
				heldout = 0,
				want_pairs = 0,
				want_heldout = 0;
	double		worst = 0;

	srand(11);
	ub_ptr[0] = ui_ptr[0] = 0;
	for (int u = 0; u < FIT_NU; u++)
	{
		int			nb = 0,
					ni = 0;

		for (int b = 0; b < 3; b++)
			if (rand() % 2)
				ub_idx[ub_ptr[u] + nb++] = b;
		for (int i = 0; i < 5; i++)
			if (rand() % 3 == 0)
				ui_idx[ui_ptr[u] + ni++] = i;
		ub_ptr[u + 1] = ub_ptr[u] + nb;
		ui_ptr[u + 1] = ui_ptr[u] + ni;
	}
	rs_item_view_build(3, 5, bi, &v);
	rs_fit_gram(FIT_NU, 3, ub, ui, &v, beta, 0.75, 1, 42, g, count, &pairs, &heldout);

	/* brute force: each customer's row x = taken (one held out) + beta * idf-weighted item view / z^0.75 */
	for (int u = 0; u < FIT_NU; u++)
	{
		double		x[3] = {0},
					z = 0;
		int			n = ub_ptr[u + 1] - ub_ptr[u],
					skip = rs_holdout_pick(42, u, ub_idx + ub_ptr[u], n);

		for (int t = 0; t < n; t++)
			if (t != skip)
				x[ub_idx[ub_ptr[u] + t]] += 1, want_pairs++;
		want_heldout += skip >= 0;
		for (int q = ui_ptr[u]; q < ui_ptr[u + 1]; q++)
			z += v.mass[ui_idx[q]];
		for (int q = ui_ptr[u]; z > 0 && q < ui_ptr[u + 1]; q++)
			for (int e = v.ib_ptr[ui_idx[q]]; e < v.ib_ptr[ui_idx[q] + 1]; e++)
				x[v.ib_idx[e]] += beta * v.idf[ui_idx[q]] / pow(z, 0.75) * v.ib_w[e];
		for (int a = 0; a < 3; a++)
			for (int b = a; b < 3; b++)
				want[a * 3 + b] += x[a] * x[b];
	}
	CHECK(pairs == want_pairs && heldout == want_heldout && heldout > 100);
	for (int a = 0; a < 3; a++)
		for (int b = a; b < 3; b++)
			worst = fmax(worst, fabs(g[a * 3 + b] - want[a * 3 + b]) / fmax(1, fabs(want[a * 3 + b])));
	CHECK_MSG(worst < 1e-5, "Gram worst relative error %g", worst);

	/* the sparse solve keeping everything is the dense EASE solution, and M = BIn' B */
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < a; b++)
			g[a * 3 + b] = g[b * 3 + a];
	memcpy(dense, g, sizeof(g));
	CHECK(rs_ease_solve(dense, 3, 10.0) == 0);
	{
		float		c0[3];

		memcpy(c0, count, sizeof(c0));
		CHECK(rs_fit_sparse(g, 3, 5, &v, 10.0, 3, 3, bidx, bval, midx, mval, count) == 0);
		for (int b = 0; b < 3; b++)
			CHECK(fabsf(count[b] - logf(1 + c0[b])) < 1e-6);
	}
	worst = 0;
	for (int r = 0; r < 3; r++)
	{
		float		row[3] = {0};

		for (int k = 0; k < 3; k++)
			row[bidx[r * 3 + k]] = bval[r * 3 + k];
		for (int c = 0; c < 3; c++)
			worst = fmax(worst, fabs(row[c] - dense[r * 3 + c]));
	}
	for (int i = 0; i < 5; i++)
	{
		float		row[3] = {0},
					m[3] = {0};

		for (int k = 0; k < 3; k++)
			row[midx[i * 3 + k]] += mval[i * 3 + k];
		for (int p = v.ib_ptr[i]; p < v.ib_ptr[i + 1]; p++)
			for (int c = 0; c < 3; c++)
				m[c] += v.ib_w[p] * dense[v.ib_idx[p] * 3 + c];
		for (int c = 0; c < 3; c++)
			worst = fmax(worst, fabs(row[c] - m[c]));
	}
	CHECK_MSG(worst < 1e-5, "sparse B and M worst error %g against the dense solve", worst);
	/* a Gram that is not positive definite is refused, not solved */
	{
		float		bad[4] = {1, 2, 2, 1};

		CHECK(rs_fit_sparse(bad, 2, 0, &v, 1e-9, 2, 2, bidx, bval, midx, mval, count) != 0);
	}
	rs_release(v.ib_ptr), rs_release(v.ib_idx), rs_release(v.ib_w), rs_release(v.idf), rs_release(v.mass);
}

const UnitCase unit_bundle_cases[] = {
	{"bundle: top-n selection equals a full sort (ties, skips, signs, magnitudes)", test_top_n},
	{"bundle: scores and features of a hand-built model", test_score_features},
	{"fit: the held-out split is seeded, deterministic and one in five validates; the customer sample is seeded", test_holdout},
	{"fit: the item view's weights, idf and mass by hand", test_item_view},
	{"fit: the blocked Gram equals brute force; the sparse solve equals the dense EASE solution", test_fit_gram_sparse},
	{NULL, NULL}
};
