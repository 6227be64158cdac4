/*
 * rs_mlp.c — MLP forward/backward. Row-major throughout: a batch is B x d, a
 * layer is z = a W + b with W fan_in x fan_out, so every product is one GEMM.
 */
#include "rs_mlp.h"

#include <string.h>

#include "rs_loss.h"

int64_t
rs_mlp_nparams(const int *dims, int nlayers)
{
	int64_t		n = 0;

	for (int l = 0; l < nlayers; l++)
		n += (int64_t) dims[l] * dims[l + 1] + dims[l + 1];
	return n;
}

int64_t
rs_mlp_offset(const int *dims, int layer, int bias)
{
	return rs_mlp_nparams(dims, layer) + (bias ? (int64_t) dims[layer] * dims[layer + 1] : 0);
}

void
rs_mlp_bind(RsMlp *m, rs_real *params, rs_real *grads)
{
	for (int l = 0; l < m->nlayers; l++)
	{
		m->w[l] = params + rs_mlp_offset(m->dims, l, 0);
		m->b[l] = params + rs_mlp_offset(m->dims, l, 1);
		m->gw[l] = grads ? grads + rs_mlp_offset(m->dims, l, 0) : NULL;
		m->gb[l] = grads ? grads + rs_mlp_offset(m->dims, l, 1) : NULL;
	}
}

void
rs_mlp_free(RsMlp *m)
{
	for (int l = 1; l <= m->nlayers; l++)
		if (m->act[l])
			rs_release(m->act[l]);
	for (int i = 0; i < 2; i++)
		if (m->delta[i])
			rs_release(m->delta[i]);
	if (m->dloss)
		rs_release(m->dloss);
	memset(m->act, 0, sizeof(m->act));
	memset(m->delta, 0, sizeof(m->delta));
	m->dloss = NULL;
	m->cap = 0;
}

void
rs_mlp_reserve(RsMlp *m, int batch)
{
	int			widest = 1;

	if (batch <= m->cap)
		return;
	rs_mlp_free(m);
	for (int l = 0; l <= m->nlayers; l++)
		if (m->dims[l] > widest)
			widest = m->dims[l];
	for (int l = 1; l <= m->nlayers; l++)
		m->act[l] = rs_alloc(sizeof(rs_real) * (size_t) batch * m->dims[l]);
	for (int i = 0; i < 2; i++)
		m->delta[i] = rs_alloc(sizeof(rs_real) * (size_t) batch * widest);
	m->dloss = rs_alloc(sizeof(rs_real) * (size_t) batch * m->dims[m->nlayers]);
	m->cap = batch;
}

void
rs_mlp_init(RsMlp *m, RsRng *rng)
{
	for (int l = 0; l < m->nlayers; l++)
	{
		RsAct		act = l == m->nlayers - 1 ? m->output : m->hidden;

		rs_init_dense(rng, m->w[l], m->dims[l], m->dims[l + 1], act);
		memset(m->b[l], 0, sizeof(rs_real) * m->dims[l + 1]);
	}
}

rs_real *
rs_mlp_forward(RsMlp *m, const rs_real *x, int batch)
{
	const rs_real *in = x;

	rs_mlp_reserve(m, batch);
	for (int l = 0; l < m->nlayers; l++)
	{
		int			fi = m->dims[l],
					fo = m->dims[l + 1];
		rs_real    *out = m->act[l + 1];

		/* out = bias broadcast, then out += in W */
		for (int r = 0; r < batch; r++)
			memcpy(out + (int64_t) r * fo, m->b[l], sizeof(rs_real) * fo);
		rs_gemm(0, 0, batch, fo, fi, 1, in, fi, m->w[l], fo, 1, out, fo);
		if (l < m->nlayers - 1)
			rs_act_forward(m->hidden, out, (int64_t) batch * fo);
		in = out;
		rs_check_interrupts();
	}
	return m->act[m->nlayers];
}

void
rs_mlp_backward(RsMlp *m, const rs_real *x, int batch, const rs_real *dlogits)
{
	const rs_real *d = dlogits;
	int			cur = 0;

	for (int l = m->nlayers - 1; l >= 0; l--)
	{
		int			fi = m->dims[l],
					fo = m->dims[l + 1];
		const rs_real *in = l == 0 ? x : m->act[l];

		rs_gemm(1, 0, fi, fo, batch, 1, in, fi, d, fo, 1, m->gw[l], fo);
		for (int r = 0; r < batch; r++)
			for (int j = 0; j < fo; j++)
				m->gb[l][j] += d[(int64_t) r * fo + j];
		if (l > 0)
		{
			rs_real    *dprev = m->delta[cur];

			rs_gemm(0, 1, batch, fi, fo, 1, d, fo, m->w[l], fo, 0, dprev, fi);
			rs_act_backward(m->hidden, m->act[l], dprev, (int64_t) batch * fi);
			d = dprev;
			cur ^= 1;
		}
		rs_check_interrupts();
	}
}

double
rs_mlp_train_batch(RsMlp *m, RsOptim *opt, rs_real *params, rs_real *grads,
				   rs_real *opt_m, rs_real *opt_v, const rs_real *x, const rs_real *y,
				   int batch, RsLoss loss)
{
	int64_t		n = rs_mlp_nparams(m->dims, m->nlayers);
	int			out = m->dims[m->nlayers];
	rs_real    *logits;
	double		value,
				scale;

	rs_mlp_bind(m, params, grads);
	memset(grads, 0, sizeof(rs_real) * n);
	logits = rs_mlp_forward(m, x, batch);
	if (loss == RS_LOSS_BCE)
		value = rs_loss_bce_logits(logits, y, batch * out, m->dloss);
	else
	{
		/* MSE is taken after the output activation */
		memcpy(m->delta[0], logits, sizeof(rs_real) * batch * out);
		rs_act_forward(m->output, m->delta[0], (int64_t) batch * out);
		value = rs_loss_mse(m->delta[0], y, batch * out, m->dloss);
		rs_act_backward(m->output, m->delta[0], m->dloss, (int64_t) batch * out);
	}
	rs_mlp_backward(m, x, batch, m->dloss);
	opt->t++;
	scale = opt->clip > 0 ? rs_clip_scale(opt, __builtin_sqrt(rs_sumsq(grads, n))) : 1.0;
	rs_optim_dense(opt, params, grads, opt_m, opt_v, n, scale);
	return value;
}
