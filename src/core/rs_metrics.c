/*
 * rs_metrics.c — ranking metrics and the Gini index (see rs_metrics.h).
 */
#include "rs_metrics.h"

#include <math.h>
#include <stdlib.h>

#include "rs_core.h"

void
rs_rank_metrics(const uint8_t *hits, int n_ranked, int64_t n_relevant, int k, int64_t n_items,
				RsRankMetrics *out)
{
	int			top = n_ranked < k ? n_ranked : k;
	int64_t		ideal = n_relevant < k ? n_relevant : k;
	double		h = 0,
				dcg = 0,
				idcg = 0,
				ap = 0,
				rr = 0;
	int64_t		listed_hits = 0;

	for (int i = 0; i < top; i++)
		if (hits[i])
		{
			h += 1;
			dcg += 1.0 / log2(i + 2.0);
			ap += h / (i + 1);
			if (rr == 0)
				rr = 1.0 / (i + 1);
		}
	for (int64_t i = 0; i < ideal; i++)
		idcg += 1.0 / log2(i + 2.0);
	for (int i = 0; i < n_ranked; i++)
		listed_hits += hits[i] != 0;

	out->precision = k > 0 ? h / k : 0;
	out->hit = h > 0;
	if (n_relevant <= 0)
	{
		out->recall = out->f1 = out->ndcg = out->ap = out->rr = out->auc = NAN;
		return;
	}
	out->recall = h / n_relevant;
	out->f1 = out->precision + out->recall > 0
		? 2 * out->precision * out->recall / (out->precision + out->recall) : 0;
	out->ndcg = idcg > 0 ? dcg / idcg : 0;
	out->ap = ideal > 0 ? ap / ideal : 0;
	out->rr = rr;

	/*
	 * AUC over the whole list (not cut at K) and the catalogue: each (relevant,
	 * other) pair ordered right counts 1, a tie 1/2. Unlisted items sit below the
	 * list, tied with each other. A catalogue smaller than list plus relevant
	 * grows to fit.
	 */
	{
		int64_t		unlisted_rel = n_relevant - listed_hits;
		int64_t		n = n_items;
		int64_t		neg,
					unlisted_neg;
		double		good = 0,
					rel_above = 0;

		if (n < n_ranked + unlisted_rel)
			n = n_ranked + unlisted_rel;
		neg = n - n_relevant;
		unlisted_neg = neg - (n_ranked - listed_hits);
		if (neg <= 0)
		{
			out->auc = NAN;
			return;
		}
		for (int i = 0; i < n_ranked; i++)
		{
			if (hits[i])
				rel_above += 1;
			else
				good += rel_above;	/* listed relevant above this listed other */
		}
		/* every listed relevant is above every unlisted other; unlisted pairs tie */
		good += (double) listed_hits * unlisted_neg + 0.5 * (double) unlisted_rel * unlisted_neg;
		out->auc = good / ((double) n_relevant * neg);
	}
}

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

double
rs_gini(const double *counts, int n)
{
	double	   *v;
	double		sum = 0,
				weighted = 0;

	if (n <= 0)
		return NAN;
	v = rs_alloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
		v[i] = counts[i];
	qsort(v, n, sizeof(double), CmpDouble);
	for (int i = 0; i < n; i++)
	{
		sum += v[i];
		weighted += (2.0 * (i + 1) - n - 1) * v[i];
	}
	rs_release(v);
	return sum > 0 ? weighted / (n * sum) : 0;
}
