/*
 * rs_bundle.c — scoring, features and top-n selection for the bundle ranker
 * (see rs_bundle.h for the model).
 */
#include "rs_bundle.h"

#include <math.h>
#include <string.h>

/* adds to s[j] (and notes j the first time, when tracking) */
#define TOUCH(j) do { if (mark && !mark[j]) { mark[j] = 1; touched[(*ntouched)++] = (j); } } while (0)

double
rs_bundle_score_touched(const RsBundleModel *m, const int32_t *taken, int ntaken,
						const int32_t *items, int nitems, float *s, float *iv,
						uint8_t *mark, int32_t *touched, int *ntouched)
{
	double		z = 0,
				zw;

	for (int t = 0; t < ntaken; t++)
	{
		int32_t		b = taken[t];
		const int32_t *idx;
		const float *val;

		if (b < 0 || b >= m->nb)
			continue;
		idx = m->bidx + (int64_t) b * m->mb;
		val = m->bval + (int64_t) b * m->mb;
		for (int j = 0; j < m->mb; j++)
		{
			TOUCH(idx[j]);
			s[idx[j]] += val[j];
		}
	}
	for (int t = 0; t < nitems; t++)
		if (items[t] >= 0 && items[t] < m->ni)
			z += m->mass[items[t]];
	if (z <= 0)
		return 0;
	zw = rs_view_weight(m->beta, z, m->view_norm);
	for (int t = 0; t < nitems; t++)
	{
		int32_t		i = items[t];
		const int32_t *idx;
		const float *val;
		float		w;

		if (i < 0 || i >= m->ni)
			continue;
		w = (float) (zw * m->idf[i]);
		idx = m->midx + (int64_t) i * m->mm;
		val = m->mval + (int64_t) i * m->mm;
		for (int j = 0; j < m->mm; j++)
		{
			TOUCH(idx[j]);
			s[idx[j]] += w * val[j];
		}
		for (int32_t p = m->ib_ptr[i]; p < m->ib_ptr[i + 1]; p++)
		{
			TOUCH(m->ib_idx[p]);
			iv[m->ib_idx[p]] += m->idf[i] * m->ib_w[p];
		}
	}
	return z;
}

double
rs_bundle_score(const RsBundleModel *m, const int32_t *taken, int ntaken,
				const int32_t *items, int nitems, float *s, float *iv)
{
	memset(s, 0, sizeof(float) * m->nb);
	memset(iv, 0, sizeof(float) * m->nb);
	return rs_bundle_score_touched(m, taken, ntaken, items, nitems, s, iv, NULL, NULL, NULL);
}

void
rs_bundle_clear(float *s, float *iv, uint8_t *mark, const int32_t *touched, int ntouched)
{
	for (int t = 0; t < ntouched; t++)
	{
		s[touched[t]] = 0;
		iv[touched[t]] = 0;
		mark[touched[t]] = 0;
	}
}

void
rs_bundle_features(const RsBundleModel *m, const float *s, const float *iv, int ntaken,
				   const int32_t *cand, int ncand, float *x)
{
	rs_bundle_features_among(m, s, iv, NULL, m->nb, ntaken, cand, ncand, x);
}

void
rs_bundle_features_among(const RsBundleModel *m, const float *s, const float *iv, const int32_t *among, int namong,
						 int ntaken, const int32_t *cand, int ncand, float *x)
{
	float		smax = 0,
				ivmax = 0;
	float		hist = logf(1.0f + (float) ntaken) / 5.0f;

	for (int a = 0; a < namong; a++)
	{
		int32_t		b = among ? among[a] : a;

		if (fabsf(s[b]) > smax)
			smax = fabsf(s[b]);
		if (iv[b] > ivmax)
			ivmax = iv[b];
	}
	for (int c = 0; c < ncand; c++)
	{
		int32_t		b = cand[c];
		float	   *row = x + (int64_t) c * RS_BUNDLE_NFEAT;

		row[0] = smax > 0 ? s[b] / smax : 0;
		row[1] = s[b];
		row[2] = ivmax > 0 ? iv[b] / ivmax : 0;
		row[3] = m->pop[b] / 8.0f;
		row[4] = hist;
	}
}

/* a before b in the ranking: higher score, then lower index */
static inline int
Better(const float *score, int32_t a, int32_t b)
{
	return score[a] > score[b] || (score[a] == score[b] && a < b);
}

/* min-heap (worst on top) of candidate indexes */
static void
SiftDown(const float *score, int32_t *h, int n, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					w = i;

		if (l < n && Better(score, h[w], h[l]))
			w = l;
		if (r < n && Better(score, h[w], h[r]))
			w = r;
		if (w == i)
			return;
		{
			int32_t		t = h[i];

			h[i] = h[w];
			h[w] = t;
		}
		i = w;
	}
}

/* float -> uint32 whose unsigned order is the float order */
static inline uint32_t
FloatKey(float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

#define TOP_BUCKET_SHIFT 20		/* 4096 buckets over the key's top bits */

int
rs_top_n(const float *score, int n, const uint8_t *skip, int k, int32_t *out)
{
	return rs_top_n_among(score, NULL, n, skip, k, out);
}

int
rs_top_n_among(const float *score, const int32_t *among, int n, const uint8_t *skip, int k, int32_t *out)
{
	int			len = 0;
	uint32_t	floor_bucket = 0;

	if (k <= 0)
		return 0;

	/*
	 * A histogram of the scores' top key bits finds the bucket that holds the
	 * k-th best; only scores from that bucket up enter the heap. On a large n
	 * this skips most heap replacements, which were most of a request's time.
	 */
	if (n > 4 * k)
	{
		uint32_t	hist[1u << (32 - TOP_BUCKET_SHIFT)];
		int64_t		seen = 0;

		memset(hist, 0, sizeof(hist));
		for (int32_t a = 0; a < n; a++)
		{
			int32_t		j = among ? among[a] : a;

			if (!(skip && skip[j]))
				hist[FloatKey(score[j]) >> TOP_BUCKET_SHIFT]++;
		}
		for (int b = (1 << (32 - TOP_BUCKET_SHIFT)) - 1; b >= 0; b--)
		{
			seen += hist[b];
			if (seen >= k)
			{
				floor_bucket = (uint32_t) b;
				break;
			}
		}
	}
	for (int32_t a = 0; a < n; a++)
	{
		int32_t		j = among ? among[a] : a;

		if (skip && skip[j])
			continue;
		if ((FloatKey(score[j]) >> TOP_BUCKET_SHIFT) < floor_bucket)
			continue;
		if (len < k)
		{
			/* sift up */
			int			i = len++;

			out[i] = j;
			while (i > 0 && Better(score, out[(i - 1) / 2], out[i]))
			{
				int32_t		t = out[i];

				out[i] = out[(i - 1) / 2];
				out[(i - 1) / 2] = t;
				i = (i - 1) / 2;
			}
		}
		else if (Better(score, j, out[0]))
		{
			out[0] = j;
			SiftDown(score, out, len, 0);
		}
	}
	/* heap sort: pop the worst to the end */
	for (int end = len - 1; end > 0; end--)
	{
		int32_t		t = out[0];

		out[0] = out[end];
		out[end] = t;
		SiftDown(score, out, end, 0);
	}
	return len;
}

void
rs_sort_indexes(int32_t *idx, int n)
{
	/* insertion sort: a few hundred indexes at most */
	for (int a = 1; a < n; a++)
	{
		int32_t		v = idx[a];
		int			b = a - 1;

		while (b >= 0 && idx[b] > v)
		{
			idx[b + 1] = idx[b];
			b--;
		}
		idx[b + 1] = v;
	}
}

void
rs_top_abs(const float *row, int n, int m, int32_t *idx, float *val, int32_t *work)
{
	/* rank by magnitude through a scratch copy of |row| (work holds n floats' room as int32) */
	float	   *mag = (float *) work;
	int			cnt;

	for (int j = 0; j < n; j++)
		mag[j] = fabsf(row[j]);
	cnt = rs_top_n(mag, n, NULL, m, idx);
	/* index order: better locality when the rows are summed */
	rs_sort_indexes(idx, cnt);
	for (int a = 0; a < cnt; a++)
		val[a] = row[idx[a]];
}
