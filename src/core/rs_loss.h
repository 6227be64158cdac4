/*
 * rs_loss.h — losses over a batch; each returns the mean loss and writes the
 * gradient of that mean with respect to its inputs.
 */
#ifndef RS_LOSS_H
#define RS_LOSS_H

#include "rs_core.h"

/* binary cross-entropy on logits z, targets y in [0, 1] */
extern double rs_loss_bce_logits(const rs_real *z, const rs_real *y, int n, rs_real *dz);
/* mean squared error, (z - y)^2 / 2 */
extern double rs_loss_mse(const rs_real *z, const rs_real *y, int n, rs_real *dz);
/*
 * listwise: a softmax over each group of rows (group g = rows gptr[g] .. gptr[g + 1] - 1), cross-entropy against
 * the group's targets scaled to sum to 1; the mean over the groups that hold a positive target, and no gradient
 * for the others (nothing in them to rank above the rest)
 */
extern double rs_loss_listwise(const rs_real *z, const rs_real *y, const int32_t *gptr, int ngroups, rs_real *dz);
/* BPR: -log sigmoid(pos - neg) */
extern double rs_loss_bpr(const rs_real *pos, const rs_real *neg, int n, rs_real *dpos, rs_real *dneg);
/* sampled softmax: rows of width w, the target's logit in column 0, k = w - 1 negatives */
extern double rs_loss_sampled_softmax(const rs_real *logits, int n, int w, rs_real *dlogits);

#endif
