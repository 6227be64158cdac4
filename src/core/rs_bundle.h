/*
 * rs_bundle.h — the bundle ranker's numeric side: scores of every bundle for one
 * customer from a sparse EASE fitted on item-view-augmented user rows, the
 * features the learned scorer reranks with, and top-n selection.
 *
 * The model (fitted by src/bundle_model.c): B is EASE over X + beta * IVr, where X
 * is the user x bundle matrix and IVr the user's item view (idf-weighted items
 * spread over the bundles holding them, rows summing to 1). Serving needs
 *   s = x B + beta / z * sum_i idf_i * M[i, :],   M = BIn' B,  z = sum_i mass_i
 * and both B (per bundle) and M (per item) are kept sparse: the top entries of
 * each row by magnitude, which costs no measurable quality on Youshu.
 * Always float: this is serving code, not part of the double reference build.
 */
#ifndef RS_BUNDLE_H
#define RS_BUNDLE_H

#include <math.h>
#include <stdint.h>

#define RS_BUNDLE_NFEAT 5

typedef struct RsBundleModel
{
	int			nb,
				ni;				/* bundles, items in the model */
	int			mb,
				mm;				/* entries kept per row of B, of M */
	float		beta;
	float		view_norm;		/* the item view's weights fall as z^-view_norm (rs_view_weight) */
	const int32_t *bidx;		/* nb x mb */
	const float *bval;
	const int32_t *midx;		/* ni x mm */
	const float *mval;
	const float *idf;			/* ni */
	const float *mass;			/* ni: idf_i * sum over bundles holding i of 1/sqrt|b| */
	const float *pop;			/* nb: log(1 + buyers) */
	const int32_t *ib_ptr;		/* ni + 1: item -> bundles holding it */
	const int32_t *ib_idx;
	const float *ib_w;			/* 1/sqrt|b| */
} RsBundleModel;

/*
 * The item view's weight per unit of idf for a customer whose items' mass is z > 0:
 * beta / z^view_norm. At 1 every customer's view sums to beta; below it, a customer who
 * bought more carries more, less than in proportion. The fit and serving share it.
 */
static inline double
rs_view_weight(double beta, double z, double view_norm)
{
	return view_norm == 1 ? beta / z : beta / pow(z, view_norm);
}

/*
 * Scores of all nb bundles (s) and the plain item view (iv) for a customer who
 * took the bundles taken[] and bought items[]; indexes outside the model are
 * ignored (new since the fit). Returns z, the item view's mass (0: no items).
 */
extern double rs_bundle_score(const RsBundleModel *m, const int32_t *taken, int ntaken,
							  const int32_t *items, int nitems, float *s, float *iv);

/*
 * The same, for serving: s and iv must be all zero on entry; every bundle touched is
 * marked (mark[] zero on entry) and listed once in touched[] (*ntouched must be 0 on
 * entry). Untouched bundles keep score 0. rs_bundle_clear restores the zeros.
 */
extern double rs_bundle_score_touched(const RsBundleModel *m, const int32_t *taken, int ntaken,
									  const int32_t *items, int nitems, float *s, float *iv,
									  uint8_t *mark, int32_t *touched, int *ntouched);
extern void rs_bundle_clear(float *s, float *iv, uint8_t *mark, const int32_t *touched, int ntouched);

/* scorer input, RS_BUNDLE_NFEAT per candidate: s / max|s|, s, iv / max iv, pop / 8, log(1 + ntaken) / 5 */
extern void rs_bundle_features(const RsBundleModel *m, const float *s, const float *iv, int ntaken,
							   const int32_t *cand, int ncand, float *x);

/* the same, with the maxima for normalising taken over among[0..namong) only (NULL: all bundles) */
extern void rs_bundle_features_among(const RsBundleModel *m, const float *s, const float *iv, const int32_t *among,
									 int namong, int ntaken, const int32_t *cand, int ncand, float *x);

/* the k largest score[j] with skip == NULL or skip[j] == 0, best first (ties: lower j); returns how many */
extern int	rs_top_n(const float *score, int n, const uint8_t *skip, int k, int32_t *out);
/* the same over the indexes among[0..n) (NULL: 0..n-1); ties still go to the lower index */
extern int	rs_top_n_among(const float *score, const int32_t *among, int n, const uint8_t *skip, int k, int32_t *out);

/* the m entries of row (length n) largest in magnitude, in index order; m <= n */
/* sorts n indexes ascending, in place (the kept entries of a sparse row, in index order) */
extern void rs_sort_indexes(int32_t *idx, int n);
extern void rs_top_abs(const float *row, int n, int m, int32_t *idx, float *val, int32_t *work);

#endif
