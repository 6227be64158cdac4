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

RS_VECTOR_CLONES
void
rs_optim_dense(const RsOptim *opt, rs_real *restrict w, const rs_real *restrict g, rs_real *restrict m,
			   rs_real *restrict v, int64_t n, double scale)
{
	/* one branch-free loop per kind, constants hoisted, so each one vectorises */
	const rs_real lr = (rs_real) opt->lr,
				l2 = (rs_real) opt->l2,
				sc = (rs_real) scale;

	switch (opt->kind)
	{
		case RS_OPT_SGD:
			for (int64_t i = 0; i < n; i++)
				w[i] -= lr * (g[i] * sc + l2 * w[i]);
			break;
		case RS_OPT_MOMENTUM:
			{
				const rs_real mu = (rs_real) opt->momentum;

				for (int64_t i = 0; i < n; i++)
				{
					m[i] = mu * m[i] + g[i] * sc + l2 * w[i];
					w[i] -= lr * m[i];
				}
				break;
			}
		case RS_OPT_ADAM:
			{
				/* PyTorch's form: w -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) */
				/* 1 - beta taken in double: 1 - 0.999f would be off by 5e-5 */
				const rs_real b1 = (rs_real) opt->beta1,
							b2 = (rs_real) opt->beta2,
							c1m = (rs_real) (1 - opt->beta1),
							c2m = (rs_real) (1 - opt->beta2),
							eps = (rs_real) opt->eps;
				const rs_real step = (rs_real) (opt->corrected ? opt->lr
												: opt->lr / (1 - pow(opt->beta1, (double) opt->t)));
				const rs_real inv_sqrt_c2 = (rs_real) (opt->corrected ? opt->beta2_corr
													   : 1 / sqrt(1 - pow(opt->beta2, (double) opt->t)));

				(void) lr;
				for (int64_t i = 0; i < n; i++)
				{
					rs_real		grad = g[i] * sc + l2 * w[i];

					m[i] = b1 * m[i] + c1m * grad;
					v[i] = b2 * v[i] + c2m * grad * grad;
					w[i] -= step * m[i] / (rs_sqrt(v[i]) * inv_sqrt_c2 + eps);
				}
				break;
			}
	}
}

void
rs_optim_rows(const RsOptim *opt, rs_real *w, const rs_real *g, rs_real *m, rs_real *v,
			  int row_len, const int32_t *rows, int nrows, double scale)
{
	/* the bias corrections are per step, not per row: fold them into a copy once */
	RsOptim		o = *opt;

	if (o.kind == RS_OPT_ADAM)
	{
		o.lr = opt->lr / (1 - pow(opt->beta1, (double) opt->t));
		o.beta2_corr = 1 / sqrt(1 - pow(opt->beta2, (double) opt->t));
		o.corrected = 1;
	}
	for (int r = 0; r < nrows; r++)
	{
		int64_t		off = (int64_t) rows[r] * row_len;

		/* the rows are scattered over tables larger than the cache: ask for the next row's lines now */
		if (r + 1 < nrows)
		{
			int64_t		next = (int64_t) rows[r + 1] * row_len;

			for (int c = 0; c < row_len; c += 16)
			{
				__builtin_prefetch(w + next + c, 1);
				__builtin_prefetch(g + next + c, 0);
				if (m)
					__builtin_prefetch(m + next + c, 1);
				if (v)
					__builtin_prefetch(v + next + c, 1);
			}
		}
		rs_optim_dense(&o, w + off, g + off, m ? m + off : NULL, v ? v + off : NULL, row_len, scale);
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
