/*
 * rs_items.c — the item model's numerics (see rs_items.h).
 */
#include "rs_items.h"

#include <math.h>
#include <string.h>

#include "rs_bundle.h"

void
rs_items_stats(int32_t nu, int32_t ni, const int32_t *ptr, const int32_t *items, RsItemStats *st)
{
	int32_t    *seen = rs_alloc(sizeof(int32_t) * (size_t) (ni > 1 ? ni : 1));
	int32_t    *again_seen = rs_alloc(sizeof(int32_t) * (size_t) (ni > 1 ? ni : 1));
	int32_t    *again = rs_alloc(sizeof(int32_t) * (size_t) (ni > 1 ? ni : 1));
	int32_t		customers = 0;
	int			want = ni < RS_ITEM_POPULAR ? ni : RS_ITEM_POPULAR;

	st->ni = ni;
	st->share = rs_alloc(sizeof(float) * (size_t) (ni > 1 ? ni : 1));
	st->again = rs_alloc(sizeof(float) * (size_t) (ni > 1 ? ni : 1));
	st->buyers = rs_alloc(sizeof(int32_t) * (size_t) (ni > 1 ? ni : 1));
	st->popular = rs_alloc(sizeof(int32_t) * (size_t) (want > 1 ? want : 1));
	for (int32_t i = 0; i < ni; i++)
		seen[i] = -1, again_seen[i] = -1, again[i] = 0, st->buyers[i] = 0;
	for (int32_t u = 0; u < nu; u++)
	{
		customers += ptr[u + 1] > ptr[u];
		for (int32_t p = ptr[u]; p < ptr[u + 1]; p++)
		{
			int32_t		i = items[p];

			if (seen[i] != u)
			{
				seen[i] = u;
				st->buyers[i]++;
			}
			else if (again_seen[i] != u)
			{
				/* pairs are distinct: a second one is another basket; counted once per customer */
				again_seen[i] = u;
				again[i]++;
			}
		}
		if ((u & 4095) == 0)
			rs_check_interrupts();
	}
	for (int32_t i = 0; i < ni; i++)
	{
		st->share[i] = customers ? (float) st->buyers[i] / customers : 0;
		st->again[i] = st->buyers[i] ? (float) again[i] / st->buyers[i] : 0;
	}
	{
		float	   *score = rs_alloc(sizeof(float) * (size_t) (ni > 1 ? ni : 1));

		for (int32_t i = 0; i < ni; i++)
			score[i] = (float) st->buyers[i];
		st->npopular = rs_top_n(score, ni, NULL, want, st->popular);
		while (st->npopular > 0 && st->buyers[st->popular[st->npopular - 1]] == 0)
			st->npopular--;		/* nobody buys it: not popular */
		rs_release(score);
	}
	rs_release(seen);
	rs_release(again_seen);
	rs_release(again);
}

void
rs_items_history(const int32_t *items, const int32_t *bno, int n, int upto, int32_t *slot, RsItemHistory *h)
{
	h->n = 0;
	h->nbaskets = 0;
	for (int p = 0; p < n; p++)
		if (upto <= 0 || bno[p] <= upto)
			h->nbaskets = bno[p] > h->nbaskets ? bno[p] : h->nbaskets;
	for (int p = 0; p < n; p++)
	{
		int32_t		i = items[p];
		int			s;

		if (upto > 0 && bno[p] > upto)
			continue;
		s = slot[i];
		if (s < 0)
		{
			s = slot[i] = h->n++;
			h->item[s] = i;
			h->count[s] = 0;
			h->last[s] = 0;
			h->decayed[s] = 0;
		}
		h->count[s]++;
		h->last[s] = bno[p] > h->last[s] ? bno[p] : h->last[s];
		h->decayed[s] += powf(0.8f, (float) (h->nbaskets - bno[p]));
	}
	for (int s = 0; s < h->n; s++)
		slot[h->item[s]] = -1;
}

void
rs_items_features(const RsItemHistory *h, int pos, int32_t item, const RsItemStats *st, float *x)
{
	float		nb = (float) (h->nbaskets > 0 ? h->nbaskets : 1);

	memset(x, 0, sizeof(float) * RS_ITEM_NFEAT);
	if (pos >= 0)
	{
		x[0] = h->count[pos] / nb;							/* how often: share of their baskets */
		x[1] = 1.0f / (1 + h->nbaskets - h->last[pos]);		/* how recently: 1 in the last basket */
		x[2] = logf(1.0f + h->count[pos]) / 3;
		x[5] = 1;
		x[7] = h->decayed[pos] / 3;
	}
	x[3] = st->share[item] * 10;		/* how many customers buy it */
	x[4] = st->again[item];				/* how many of its buyers buy it again */
	x[6] = logf(1.0f + h->nbaskets) / 3;
}

void
rs_items_cooc(const RsItemHistory *h, const int32_t *rule_ptr, const int32_t *rule_b, const double *rule_conf,
			  const int32_t *cand, int m, int32_t *slot, float *x)
{
	double		total = 0;

	for (int j = 0; j < m; j++)
		slot[cand[j]] = j;
	for (int e = 0; e < h->n; e++)
	{
		int32_t		a = h->item[e];

		total += h->decayed[e];
		for (int32_t q = rule_ptr[a]; q < rule_ptr[a + 1]; q++)
		{
			int32_t		j = slot[rule_b[q]];

			if (j >= 0)
				x[(size_t) j * RS_ITEM_NFEAT + 8] += (float) (h->decayed[e] * rule_conf[q]);
		}
	}
	for (int j = 0; j < m; j++)
	{
		if (total > 0)
			x[(size_t) j * RS_ITEM_NFEAT + 8] /= (float) total;
		slot[cand[j]] = -1;
	}
}

void
rs_items_seq(const RsSeq *seq, const rs_real *h, const int32_t *cand, int m, float *x)
{
	double		top = -INFINITY,
				z = 0;

	for (int j = 0; j < m; j++)
	{
		float	   *xj = x + (size_t) j * RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ;
		int32_t		i = cand[j];

		*xj = NAN;
		if (i >= 0 && i < seq->vocab)
		{
			const rs_real *w = seq->p[RS_SEQ_OUT] + (size_t) i * seq->hidden;
			double		l = seq->p[RS_SEQ_OUTB][i];

			for (int d = 0; d < seq->hidden; d++)
				l += (double) w[d] * h[d];
			*xj = (float) l;
			if (l > top)
				top = l;
		}
	}
	for (int j = 0; j < m; j++)
	{
		float		l = x[(size_t) j * RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ];

		if (!isnan(l))
			z += exp(l - top);
	}
	for (int j = 0; j < m; j++)
	{
		float	   *xj = x + (size_t) j * RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ;
		double		v = isnan(*xj) || z <= 0 ? -4 : (*xj - top - log(z)) / 5;

		*xj = (float) (v < -4 ? -4 : v);
	}
}

float
rs_items_default_score(const float *x)
{
	return x[0] + 0.3f * x[3] + 0.2f * x[1];
}
