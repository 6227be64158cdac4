/*
 * rs_items.h — the item model's numerics (plain C): what a customer's basket history says
 * about each item (how often and how recently they bought it), the shop's view of each
 * item (how many buy it, how many buy it again), the candidates of a next basket and the
 * features a learned scorer blends. src/items.c reads the prepared data, trains the blend
 * through the training driver and serves recommend_items; test/unit/test_items.c checks
 * these by hand.
 */
#ifndef RS_ITEMS_H
#define RS_ITEMS_H

#include <stdint.h>

#include "rs_core.h"
#include "rs_seq.h"

/* the scorer's input per (customer, item); see rs_items_features, rs_items_cooc and rs_items_seq */
#define RS_ITEM_NFEAT 10
/* the feature of the GRU over the customer's sequence (0 without an encoder) */
#define RS_ITEM_FEAT_SEQ 9
/* the most recent items the GRU reads of a customer's history */
#define RS_ITEM_SEQ_TAIL 20
/* popular items every customer's candidates include */
#define RS_ITEM_POPULAR 50

/* the shop's view of each item, from every customer's history */
typedef struct RsItemStats
{
	int32_t		ni;
	float	   *share;			/* buyers / customers with a history */
	float	   *again;			/* buyers in two or more baskets / buyers */
	int32_t    *buyers;
	int32_t    *popular;		/* the most bought items, best first */
	int			npopular;
} RsItemStats;

/*
 * A customer's history up to a basket, one entry per distinct item: in how many baskets
 * (count), in which last (last, 1-based), a decayed count (0.8 per basket back).
 */
typedef struct RsItemHistory
{
	int			n;
	int			nbaskets;
	int32_t    *item;
	int32_t    *count;
	int32_t    *last;
	float	   *decayed;
} RsItemHistory;

/*
 * The stats over nu customers: items[ptr[u] .. ptr[u + 1]) are customer u's distinct (item, basket) pairs, so a
 * customer's second pair of an item is a second basket.
 */
extern void rs_items_stats(int32_t nu, int32_t ni, const int32_t *ptr, const int32_t *items, RsItemStats *st);

/*
 * A customer's history of n (item, basket) pairs up to basket upto (inclusive; all when
 * upto <= 0), into h (arrays of room n). slot: ni ints, all -1, left all -1.
 */
extern void rs_items_history(const int32_t *items, const int32_t *bno, int n, int upto, int32_t *slot,
							 RsItemHistory *h);

/* the features of item (entry pos of h, or -1 when not in it) for the customer of h */
extern void rs_items_features(const RsItemHistory *h, int pos, int32_t item, const RsItemStats *st, float *x);

/*
 * Feature 8 of m candidates (x: m x RS_ITEM_NFEAT): what the customer's items say of each through the shop's
 * association rules, their confidences towards it averaged with the items' decayed counts as weights. rules: rows
 * by item a of (b, confidence); slot: ni ints, all -1, left all -1.
 */
extern void rs_items_cooc(const RsItemHistory *h, const int32_t *rule_ptr, const int32_t *rule_b, const double *rule_conf,
						  const int32_t *cand, int m, int32_t *slot, float *x);

/*
 * Feature 9 of m candidates (x: m x RS_ITEM_NFEAT): what the GRU predicts after the customer's sequence, whose
 * final state is h: each candidate's next-item logit as a log share of the candidates' softmax, divided by 5 and
 * floored at -4 (also for items the encoder does not know).
 */
extern void rs_items_seq(const RsSeq *seq, const rs_real *h, const int32_t *cand, int m, float *x);

/* the blend served before any training: personal rate, popularity and recency (tuned on real baskets) */
extern float rs_items_default_score(const float *x);

#endif
