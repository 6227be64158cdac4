/*
 * rs_ease.h — EASE (Steck, WWW 2019): a closed-form item-item linear model.
 * B = I - P / diag(P), P = (X^T X + lambda I)^-1, diag(B) = 0; a user's scores
 * are the sum of B's rows for the items (here: bundles) the user took.
 */
#ifndef RS_EASE_H
#define RS_EASE_H

#include "rs_core.h"

/*
 * In place: g holds the n x n Gram matrix X^T X on entry (its upper triangle is
 * enough) and B on return.
 * Returns 0, or the LAPACK info code when the regularised Gram matrix is not
 * positive definite (lambda too small for the data).
 */
extern int	rs_ease_solve(rs_real *g, int n, double lambda);
/*
 * In place: inverse of the symmetric positive definite g (read from its row-major
 * upper triangle; the lower one may hold anything), computed in column
 * blocks with rs_check_interrupts() between blocks. Returns 0, or the order of
 * the first leading minor that is not positive definite.
 */
extern int	rs_spd_inverse(rs_real *g, int n, int block);
#define RS_EASE_BLOCK 256
/* scores[n] = sum of the rows of b listed in rows[] */
extern void rs_ease_scores(const rs_real *b, int n, const int32_t *rows, int nrows, rs_real *scores);

#endif
