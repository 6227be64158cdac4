/*
 * test_bundle.c — the bundle ranker's serving arithmetic: top-n selection against a
 * full sort (ties, skips, zeros, huge and tiny scores), and scores and features of a
 * hand-built model against hand-computed values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_bundle.h"
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
	RsBundleModel m = {.nb = 3,.ni = 2,.mb = 2,.mm = 2,.beta = 8,.bidx = bidx,.bval = bval,.midx = midx,.mval = mval,
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

const UnitCase unit_bundle_cases[] = {
	{"bundle: top-n selection equals a full sort (ties, skips, signs, magnitudes)", test_top_n},
	{"bundle: scores and features of a hand-built model", test_score_features},
	{NULL, NULL}
};
