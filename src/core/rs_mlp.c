/*
 * rs_mlp.c — MLP forward/backward. Row-major throughout: a batch is B x d, a
 * layer is z = a W + b with W fan_in x fan_out, so every product is one GEMM.
 */
#include "rs_mlp.h"

#include <stdio.h>
#include <string.h>

#include "rs_kind.h"
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
				   int batch, RsLoss loss, const int32_t *gptr, int ngroups)
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
	else if (loss == RS_LOSS_LISTWISE)
		value = rs_loss_listwise(logits, y, gptr, ngroups, m->dloss);	/* one output: the caller checks */
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

/* ---------- the mlp kind (rs_kind.h) ---------- */

static const RsCfgField mlp_config[] = {
	{"layers", RS_CFG_WIDTHS, -1, 1, RS_MAX_WIDTH, offsetof(RsNet, u.mlp.dims), offsetof(RsNet, u.mlp.nlayers)},
	{"activation", RS_CFG_ACT, RS_ACT_RELU, 0, 0, offsetof(RsNet, u.mlp.hidden), 0},
	{"output", RS_CFG_ACT, RS_ACT_SIGMOID, 0, 0, offsetof(RsNet, u.mlp.output), 0},
	{NULL}
};

static int64_t
mlp_layout(RsNet *net)
{
	return rs_mlp_nparams(net->u.mlp.dims, net->u.mlp.nlayers);
}

static int
mlp_tensors(const RsNet *net, RsTensorDesc *d)
{
	const RsMlp *m = &net->u.mlp;
	int			n = 0;

	for (int l = 0; l < m->nlayers; l++)
	{
		snprintf(d[n].name, RS_NAME_LEN, "l%d.w", l);
		d[n].ndim = 2;
		d[n].dims[0] = m->dims[l];
		d[n].dims[1] = m->dims[l + 1];
		n++;
		snprintf(d[n].name, RS_NAME_LEN, "l%d.b", l);
		d[n].ndim = 1;
		d[n].dims[0] = m->dims[l + 1];
		n++;
	}
	rs_kind_numel(d, n);
	return n;
}

static void
mlp_bind(RsNet *net, rs_real *params, rs_real *grads)
{
	rs_mlp_bind(&net->u.mlp, params, grads);
}

static void
mlp_init(RsNet *net, RsRng *rng)
{
	rs_mlp_init(&net->u.mlp, rng);
}

static void
mlp_free(RsNet *net)
{
	rs_mlp_free(&net->u.mlp);
}

static int
mlp_in_width(const RsNet *net)
{
	return net->u.mlp.dims[0];
}

static int
mlp_out_width(const RsNet *net)
{
	return net->u.mlp.dims[net->u.mlp.nlayers];
}

static int
mlp_n_items(const RsNet *net)
{
	(void) net;
	return 0;
}

/* every layer's output and its gradient, per row */
static int64_t
mlp_activations(const RsNet *net, int batch, int steps, int k)
{
	int64_t		per_row = 0;

	(void) steps;
	(void) k;
	for (int l = 0; l <= net->u.mlp.nlayers; l++)
		per_row += 2 * (int64_t) net->u.mlp.dims[l];
	return per_row * batch;
}

static rs_real *
mlp_forward_op(RsNet *net, const RsBatch *b)
{
	return rs_mlp_forward(&net->u.mlp, b->x, b->n);
}

static RsAct
mlp_output(const RsNet *net)
{
	return net->u.mlp.output;
}

static double
mlp_train_step(RsNet *net, RsOptim *opt, rs_real *grads, rs_real *opt_m, rs_real *opt_v, const RsBatch *b)
{
	return rs_mlp_train_batch(&net->u.mlp, opt, net->params, grads, opt_m, opt_v, b->x, b->y, b->n, b->loss,
							  b->gptr, b->ngroups);
}

const RsKindOps rs_mlp_ops = {
	.kind = RS_KIND_MLP, .input = RS_INPUT_ROWS, .config = mlp_config,
	.layout = mlp_layout, .tensors = mlp_tensors, .bind = mlp_bind, .init = mlp_init, .free = mlp_free,
	.in_width = mlp_in_width, .out_width = mlp_out_width, .n_items = mlp_n_items,
	.activations = mlp_activations, .forward = mlp_forward_op, .output = mlp_output, .train_step = mlp_train_step
};
