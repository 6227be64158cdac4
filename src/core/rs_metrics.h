/*
 * rs_metrics.h — ranking metrics of one ranked list against one set of relevant ids.
 *
 * The caller marks, for each ranked position, whether the id there is relevant
 * (hits[i]), and says how many relevant ids exist in all (n_relevant) and how large
 * the catalogue is (n_items, for AUC). Conventions, as in the CrossCBR/BGCN protocol:
 *   precision@K = hits in the top K / K;   recall@K = hits in the top K / |relevant|;
 *   NDCG@K binary, ideal DCG over min(|relevant|, K);
 *   AP@K = sum over relevant positions i <= K of precision@i, / min(|relevant|, K);
 *   hit@K = any hit in the top K;   RR = 1 / rank of the first hit within K, else 0;
 *   AUC over the catalogue: the listed order, then unlisted items tied below the list.
 * With no relevant ids, every metric that divides by them is NaN (the caller maps it
 * to NULL, so averages skip such users); precision and hit are 0.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stdint.h>

typedef struct RsRankMetrics
{
	double		precision,
				recall,
				f1,
				ndcg,
				ap,
				hit,
				rr,
				auc;
} RsRankMetrics;

extern void rs_rank_metrics(const uint8_t *hits, int n_ranked, int64_t n_relevant, int k, int64_t n_items,
							RsRankMetrics *out);

/* Gini index of exposure counts (0: every item shown equally; near 1: all exposure on one) */
extern double rs_gini(const double *counts, int n);

#endif
