/*
 * rs_optim.c — optimiser steps. The caller increments opt->t once per step
 * before calling (Adam's bias correction uses it).
 */
#include "rs_optim.h"

#include <math.h>
#include <string.h>

static const char *const optim_names[] = {"sgd", "momentum", "adam"};

void
rs_optim_defaults(RsOptim *opt, RsOptKind kind)
{
	memset(opt, 0, sizeof(*opt));
	opt->kind = kind;
	opt->lr = kind == RS_OPT_ADAM ? 1e-3 : 1e-2;
	opt->momentum = 0.9;
	opt->beta1 = 0.9;
	opt->beta2 = 0.999;
	opt->eps = 1e-8;
}

int
rs_optim_from_name(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(name, optim_names[i]) == 0)
			return i;
	return -1;
}

const char *
rs_optim_name(RsOptKind kind)
{
	return optim_names[kind];
}

static inline void
step_one(const RsOptim *opt, rs_real *w, rs_real g, rs_real *m, rs_real *v, double c1, double c2)
{
	double		grad = g + opt->l2 * (*w);

	switch (opt->kind)
	{
		case RS_OPT_SGD:
			*w -= (rs_real) (opt->lr * grad);
			break;
		case RS_OPT_MOMENTUM:
			*m = (rs_real) (opt->momentum * (*m) + grad);
			*w -= (rs_real) (opt->lr * (*m));
			break;
		case RS_OPT_ADAM:
			*m = (rs_real) (opt->beta1 * (*m) + (1 - opt->beta1) * grad);
			*v = (rs_real) (opt->beta2 * (*v) + (1 - opt->beta2) * grad * grad);
			*w -= (rs_real) (opt->lr * ((*m) / c1) / (sqrt((*v) / c2) + opt->eps));
			break;
	}
}

void
rs_optim_dense(const RsOptim *opt, rs_real *w, const rs_real *g, rs_real *m, rs_real *v,
			   int64_t n, double scale)
{
	double		c1 = 1 - pow(opt->beta1, (double) opt->t),
				c2 = 1 - pow(opt->beta2, (double) opt->t);
	rs_real		dummy = 0;

	for (int64_t i = 0; i < n; i++)
		step_one(opt, &w[i], (rs_real) (g[i] * scale), m ? &m[i] : &dummy, v ? &v[i] : &dummy, c1, c2);
}

void
rs_optim_rows(const RsOptim *opt, rs_real *w, const rs_real *g, rs_real *m, rs_real *v,
			  int row_len, const int32_t *rows, int nrows, double scale)
{
	for (int r = 0; r < nrows; r++)
	{
		int64_t		off = (int64_t) rows[r] * row_len;

		rs_optim_dense(opt, w + off, g + off, m ? m + off : NULL, v ? v + off : NULL, row_len, scale);
	}
}

double
rs_sumsq(const rs_real *g, int64_t n)
{
	double		s = 0;

	for (int64_t i = 0; i < n; i++)
		s += (double) g[i] * g[i];
	return s;
}

double
rs_sumsq_rows(const rs_real *g, int row_len, const int32_t *rows, int nrows)
{
	double		s = 0;

	for (int r = 0; r < nrows; r++)
		s += rs_sumsq(g + (int64_t) rows[r] * row_len, row_len);
	return s;
}

double
rs_clip_scale(const RsOptim *opt, double global_norm)
{
	if (opt->clip > 0 && global_norm > opt->clip)
		return opt->clip / global_norm;
	return 1.0;
}
