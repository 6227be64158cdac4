/*
 * rs_optim.h — SGD, momentum and Adam with L2 weight decay and global gradient
 * norm clipping; dense updates, and row-sparse ("lazy") updates for embeddings.
 */
#ifndef RS_OPTIM_H
#define RS_OPTIM_H

#include "rs_core.h"

typedef enum RsOptKind
{
	RS_OPT_SGD = 0,
	RS_OPT_MOMENTUM,
	RS_OPT_ADAM
} RsOptKind;

typedef struct RsOptim
{
	RsOptKind	kind;
	double		lr;
	double		momentum;		/* momentum: velocity decay */
	double		beta1,
				beta2,
				eps;			/* adam */
	double		l2;				/* weight decay, added to the gradient */
	double		clip;			/* global gradient norm limit, 0 = off */
	int64_t		t;				/* steps taken (adam bias correction) */
	/* internal: lr already divided by 1 - beta1^t, and 1/sqrt(1 - beta2^t), for row updates */
	int			corrected;
	double		beta2_corr;
} RsOptim;

extern void rs_optim_defaults(RsOptim *opt, RsOptKind kind);
extern int	rs_optim_from_name(const char *name);	/* -1 if unknown */
extern const char *rs_optim_name(RsOptKind kind);

/*
 * One step over dense arrays (m, v: optimiser state of the same length; m is the
 * velocity for momentum; either may be NULL when the kind does not use it).
 * scale multiplies the gradient first (clipping).
 */
extern void rs_optim_dense(const RsOptim *opt, rs_real *w, const rs_real *g, rs_real *m, rs_real *v,
						   int64_t n, double scale);
/* One step for the listed rows of a row-major table of row_len columns. */
extern void rs_optim_rows(const RsOptim *opt, rs_real *w, const rs_real *g, rs_real *m, rs_real *v,
						  int row_len, const int32_t *rows, int nrows, double scale);
/* sum of squares, to compute the global norm before clipping */
extern double rs_sumsq(const rs_real *g, int64_t n);
extern double rs_sumsq_rows(const rs_real *g, int row_len, const int32_t *rows, int nrows);
/* the factor to multiply gradients by for a given global norm (1 when within the limit) */
extern double rs_clip_scale(const RsOptim *opt, double global_norm);

#endif
