/*
 * rs_lowrank.h — the bundle fit for large catalogues (plain C + cblas + LAPACK): EASE on a
 * rank-r eigenbasis of the Gram matrix, which is never formed. The dense fit (rs_fit.h)
 * keeps a bundles x bundles matrix and inverts it (memory nb^2, time nb^3); this one keeps
 * (bundles + items) x rank floats, streams the customers' rows once per subspace
 * iteration (time linear in events x rank) and finds each bundle's strongest neighbours
 * block by block (time nb^2 x rank, memory block x nb). Both write the same sparse
 * model, so serving does not know which fit made it.
 *
 * With G ~ V S V' (V orthonormal, nb x r), (G + lambda I)^-1 = (I - K) / lambda where
 * K = V diag(s / (s + lambda)) V', so EASE's B = I - P / diag(P) becomes
 * B[i][j] = K[i][j] / (1 - K[j][j]) off the diagonal: the spectrum past rank r counts as
 * part of the ridge.
 */
#ifndef RS_LOWRANK_H
#define RS_LOWRANK_H

#include <stdint.h>

#include "rs_fit.h"

/* the customers' rows as rs_fit_gram reads them, and the options they are read with */
typedef struct RsFitRows
{
	int32_t		nu,
				nb,
				ni;
	RsRows		user_bundles,
				user_items;
	const RsItemView *v;
	double		beta;
	double		view_norm;		/* rs_view_weight's exponent */
	double		content;		/* the catalogue's rows' weight (rs_fit_content) */
	int			holdout;
	uint64_t	seed;
} RsFitRows;

/*
 * y = G omega (omega, y: nb x l, row-major) for G the Gram matrix rs_fit_gram and
 * rs_fit_content would build, by one pass over the customers and one over the items.
 * When count is not NULL, also adds each bundle's takers to it and counts pairs and
 * held-out customers, as rs_fit_gram does.
 */
extern void rs_gram_apply(const RsFitRows *rows, const float *omega, int l, float *y, float *count,
						  int64_t *pairs, int64_t *heldout);

/*
 * The low-rank fit: rank eigenpairs of G by randomized subspace iteration (iters power
 * steps, Gaussian start from seed), then the strongest keep_b entries of each row of B
 * (bidx/bval: nb x keep_b), M = BIn' B over those sparse rows with its strongest keep_m
 * entries per item (midx/mval: max(ni, 1) x keep_m, zero padded), count as log(1 +
 * takers), and pairs and heldout as rs_fit_gram counts them. Returns 0, or LAPACK's info
 * when a factorisation fails (nothing useful is written then).
 */
extern int	rs_fit_lowrank(const RsFitRows *rows, int rank, int iters, uint64_t seed, double lambda,
						   int keep_b, int keep_m, int32_t *bidx, float *bval, int32_t *midx, float *mval,
						   float *count, int64_t *pairs, int64_t *heldout);

#endif
