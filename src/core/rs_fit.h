/*
 * rs_fit.h — the bundle fit's numerics (plain C + cblas): the held-out split, the item
 * view of the bundles, the Gram matrix of item-view-augmented customer rows, and the
 * sparse solve. src/bundle_fit.c reads the prepared data and writes the weights around
 * them; test/unit/test_bundle.c checks them against brute force.
 */
#ifndef RS_FIT_H
#define RS_FIT_H

#include <stdint.h>

#include "rs_core.h"

/* rows of a sparse 0/1 matrix: row r holds idx[ptr[r] .. ptr[r + 1]) */
typedef struct RsRows
{
	const int32_t *ptr,
			   *idx;
} RsRows;

/* item -> bundles with weights 1/sqrt|b|, and each item's idf and mass (idf x its weights) */
typedef struct RsItemView
{
	int32_t    *ib_ptr,			/* ni + 1 */
			   *ib_idx;			/* nnz */
	float	   *ib_w,			/* nnz */
			   *idf,			/* max(ni, 1) */
			   *mass;			/* max(ni, 1) */
} RsItemView;

/* the bundle of a customer's n (>= 2) that is held out for seed, or -1 (fewer than 2) */
extern int	rs_holdout_pick(uint64_t seed, int32_t user, const int32_t *bundles, int n);
/* whether a customer validates (one in five) for seed */
extern int	rs_holdout_valid(uint64_t seed, int32_t user);
/*
 * whether a customer is in the seeded sample of about max_customers of nu that the learned parts (scorer, item
 * blend, GRU) learn from: everyone when max_customers <= 0 or nu <= max_customers. The fit always sees everyone.
 */
extern int	rs_customer_sampled(uint64_t seed, int32_t user, int64_t nu, int64_t max_customers);

/* the item view of nb bundles over ni items (rs_alloc'd) */
extern void rs_item_view_build(int32_t nb, int32_t ni, RsRows bundle_items, RsItemView *v);

/*
 * The fit's sufficient statistics over nu customers: adds to the upper triangle of the
 * Gram matrix of X + IVr (g, nb x nb, row-major; the item view IVr weighted by
 * rs_view_weight(beta, z, view_norm)) a block of customers at a time through ssyrk,
 * adds each bundle's takers to count, and counts the pairs used and the customers
 * with one held out (holdout: one bundle per customer of two or more, by seed).
 * Sums over customers: shards add theirs and the sums meet.
 */
extern void rs_fit_gram(int32_t nu, int32_t nb, RsRows user_bundles, RsRows user_items, const RsItemView *v,
						double beta, double view_norm, int holdout, uint64_t seed, float *g, float *count,
						int64_t *pairs, int64_t *heldout);

/*
 * The catalogue's own rows, added once to the customers' Gram matrix: each item is a
 * pseudo-customer who took the bundles holding it (weights 1/sqrt|b|), its row weighted
 * by content x idf, so bundles that share rare items are neighbours even before
 * customers say so. Adds content * sum_i idf_i r_i r_i' to the upper triangle of g;
 * time is the sum over items of (bundles holding it) squared.
 */
extern void rs_fit_content(int32_t nb, int32_t ni, const RsItemView *v, double content, float *g);

/*
 * From the statistics to the sparse model: the EASE solve on g (consumed: it becomes B),
 * the strongest keep_b entries of each row of B (bidx/bval: nb x keep_b), M = BIn' B per
 * item with its strongest keep_m entries (midx/mval: max(ni, 1) x keep_m, zero padded),
 * and count becomes log(1 + count). Returns 0, or LAPACK's info when g + lambda I is not
 * positive definite (nothing else is written then).
 */
extern int	rs_fit_sparse(float *g, int32_t nb, int32_t ni, const RsItemView *v, double lambda,
						  int keep_b, int keep_m, int32_t *bidx, float *bval, int32_t *midx, float *mval,
						  float *count);

#endif
