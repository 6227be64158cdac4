/*
 * train_agg.c — training as aggregates: recsys.mlp_train(weights, x, y, options)
 * and recsys.rnn_train(weights, items, target, options).
 *
 * The state is a bytea (never internal, so parallel query, PL/Proxy and Citus can
 * move it): header, parameters, optimiser moments and a buffer of pending rows.
 * The SFUNC appends a row and steps when the buffer holds a mini-batch, updating
 * the state in place when called as an aggregate. The COMBINEFUNC steps both
 * sides' pending rows, then averages parameters and moments weighted by samples.
 * The FINALFUNC steps what is left and returns v1 weights whose config records
 * the training (samples, steps, mean loss, optimiser).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "model_io.h"
#include "nn_model.h"
#include "options.h"

#define TRAIN_MAGIC 0x53545352	/* "RSTS" */
#define TRAIN_ALIGN(x) (((x) + 15) & ~((int64) 15))

typedef struct TrainState
{
	int32		vl_len_;
	uint32		magic;
	int32		kind;
	int32		loss;			/* RsLoss, mlp */
	int32		batch;			/* rows per step */
	int32		pending;		/* rows buffered, not yet stepped */
	int32		max_len;		/* sequence steps kept (the most recent) */
	int32		negatives;		/* sampled negatives per step */
	int32		input;			/* RsInput of the kind */
	int32		in_width,		/* rows: features in, outputs */
				out_width;
	int32		n_items;		/* items: the vocabulary */
	int32		shape[RS_KIND_CFG_INTS];	/* the kind's config fields (rs_kind_pack) */
	int64		nparams;
	int64		samples;		/* rows stepped */
	int64		updates;		/* optimiser steps */
	int64		parts;			/* partial states merged into this one (1 when never combined) */
	double		loss_sum;		/* sum of batch loss x batch rows */
	RsOptim		opt;
	RsRng		rng;			/* negative sampling */
	int64		off_params,
				off_m,
				off_v,
				off_buf;		/* byte offsets from the start of the struct */
} TrainState;

#define STATE_PARAMS(s) ((rs_real *) ((char *) (s) + (s)->off_params))
#define STATE_M(s) ((rs_real *) ((char *) (s) + (s)->off_m))
#define STATE_V(s) ((rs_real *) ((char *) (s) + (s)->off_v))
#define STATE_BUF(s) ((char *) (s) + (s)->off_buf)

/* per-query scratch of the SFUNC/COMBINEFUNC/FINALFUNC: the core's workspace and gradients */
typedef struct TrainCache
{
	RecsysNet	net;
	rs_real    *grads;
	int64		nparams;
} TrainCache;

/* ---------- options ---------- */

static char *
OptString(JsonbValue *v, const char *key)
{
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static void
ParseOptions(TrainState *s, Jsonb *options, bool seq, bool grouped)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	int			optim = RS_OPT_ADAM;
	double		lr = -1;
	const char *family = seq ? "rnn_train" : "mlp_train";

	if (options)
		RecsysOptionsCheckKeys(options, family);
	/* first pass: the optimiser, whose defaults the other keys override */
	if (options)
	{
		JsonbValue *o = getKeyJsonValueFromContainer(&options->root, "optimizer", 9, NULL);

		if (o)
		{
			char	   *name = OptString(o, "optimizer");

			optim = rs_optim_from_name(name);
			if (optim < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown optimizer \"%s\"", name),
						 errhint("Use sgd, momentum or adam.")));
		}
	}
	rs_optim_defaults(&s->opt, optim);
	/* the declared defaults (options.c); an mlp state keeps the sequence fields at rnn_train's */
	s->batch = (int) RecsysOptionDefaultInt(family, "batch");
	s->loss = RS_LOSS_BCE;
	s->max_len = (int) RecsysOptionDefaultInt("rnn_train", "max_len");
	s->negatives = (int) RecsysOptionDefaultInt("rnn_train", "negatives");
	rs_rng_seed(&s->rng, seq ? (uint64) RecsysOptionDefaultInt(family, "seed") : 0);
	if (!options)
		return;
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "optimizer") == 0)
			continue;
		else if (strcmp(key, "lr") == 0)
			lr = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "momentum") == 0)
			s->opt.momentum = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "beta1") == 0)
			s->opt.beta1 = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "beta2") == 0)
			s->opt.beta2 = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "eps") == 0)
			s->opt.eps = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "l2") == 0)
			s->opt.l2 = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "clip") == 0)
			s->opt.clip = RecsysOptionNumber(family, &v, key);
		else if (strcmp(key, "batch") == 0)
			s->batch = (int) RecsysOptionInt(family, &v, key);
		else if (!seq && strcmp(key, "loss") == 0)
		{
			char	   *name = OptString(&v, key);

			if (strcmp(name, "bce") == 0)
				s->loss = RS_LOSS_BCE;
			else if (strcmp(name, "mse") == 0)
				s->loss = RS_LOSS_MSE;
			else if (grouped && strcmp(name, "listwise") == 0)
				s->loss = RS_LOSS_LISTWISE;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown loss \"%s\"", name),
						 grouped ? errhint("recsys.scorer_epoch knows bce, mse and listwise.") :
						 errhint("mlp_train knows bce and mse (listwise needs each customer's rows together: recsys.scorer_epoch).")));
		}
		else if (seq && strcmp(key, "negatives") == 0)
			s->negatives = (int) RecsysOptionInt(family, &v, key);
		else if (seq && strcmp(key, "max_len") == 0)
			s->max_len = (int) RecsysOptionInt(family, &v, key);
		else if (seq && strcmp(key, "seed") == 0)
			rs_rng_seed(&s->rng, (uint64) RecsysOptionInt(family, &v, key));
		/* every other key was refused by RecsysOptionsCheckKeys */
	}
	if (lr >= 0)
		s->opt.lr = lr;
}

/* a training step's loss, an error when it is no longer finite (after samples rows) */
void
RecsysCheckLoss(double loss, int64 samples)
{
	if (!isfinite(loss))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("training diverged: the loss became %g after %lld samples", loss, (long long) samples),
				 errhint("Lower the learning rate (option lr) or set a gradient clip (option clip).")));
}

/* mlp_train's options for a trainer of its own (scorer_epochs.c): the optimiser, batch and loss (also listwise) */
void
RecsysMlpTrainOptions(Jsonb *options, RsOptim *opt, int *batch, int *loss)
{
	TrainState	hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.input = RS_INPUT_ROWS;
	ParseOptions(&hdr, options, false, true);
	*opt = hdr.opt;
	*batch = hdr.batch;
	*loss = hdr.loss;
}

/* ---------- state <-> net ---------- */

static void
NetFromState(const TrainState *s, RecsysNet *net)
{
	rs_kind_unpack(rs_kind_ops(s->kind), s->shape, net);
}

static int64
BufferBytes(const TrainState *s)
{
	if (s->input == RS_INPUT_ROWS)
		return (int64) s->batch * (s->in_width + s->out_width) * sizeof(float);
	return (int64) s->batch * (s->max_len + 2) * sizeof(int32);
}

/* 256 M floats (1 GB): what one training step may hold in activations and their gradients */
#define TRAIN_MAX_ACTIVATIONS (INT64CONST(256) * 1024 * 1024)

/* A fresh state in CurrentMemoryContext (the executor copies it into the aggregate's context). */
static TrainState *
StateCreate(bytea *weights, Jsonb *options, bool seq)
{
	RecsysNet	net;
	const RsKindOps *ops;
	TrainState	hdr;
	TrainState *s;
	int64		total,
				activations;

	RecsysCoreHooks();
	RecsysNetLoad(&net, weights);
	ops = rs_kind_ops(net.kind);
	if (seq != (ops->input == RS_INPUT_ITEMS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs %s weights, got %s", seq ? "rnn_train" : "mlp_train",
						RecsysKindNames(seq ? RS_INPUT_ITEMS : RS_INPUT_ROWS), rs_kind_name(net.kind))));
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = TRAIN_MAGIC;
	hdr.kind = net.kind;
	hdr.nparams = net.nparams;
	hdr.input = ops->input;
	hdr.in_width = ops->in_width(&net);
	hdr.out_width = ops->out_width(&net);
	hdr.n_items = ops->n_items(&net);
	rs_kind_pack(ops, &net, hdr.shape);
	ParseOptions(&hdr, options, seq, false);
	hdr.off_params = TRAIN_ALIGN(sizeof(TrainState));
	hdr.off_m = TRAIN_ALIGN(hdr.off_params + net.nparams * (int64) sizeof(rs_real));
	hdr.off_v = TRAIN_ALIGN(hdr.off_m + net.nparams * (int64) sizeof(rs_real));
	hdr.off_buf = TRAIN_ALIGN(hdr.off_v + net.nparams * (int64) sizeof(rs_real));
	total = hdr.off_buf + BufferBytes(&hdr);
	/* the core's activations and their gradients for one mini-batch, bounded like the state */
	activations = ops->activations(&net, hdr.batch, hdr.max_len, hdr.negatives);
	if (activations > TRAIN_MAX_ACTIVATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a mini-batch of %d through this model needs about %lld MB of activations, the limit is %d MB",
						hdr.batch, (long long) (activations * (int64) sizeof(rs_real) / (1024 * 1024)),
						(int) (TRAIN_MAX_ACTIVATIONS * sizeof(rs_real) / (1024 * 1024))),
				 errhint("Use a smaller batch (option batch) or max_len.")));
	if (total >= (int64) MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a training state of %lld bytes exceeds the 1 GB limit of a bytea", (long long) total),
				 errhint("Use a smaller model or batch.")));
	s = palloc0(total);
	memcpy(s, &hdr, sizeof(hdr));
	SET_VARSIZE(s, total);
	memcpy(STATE_PARAMS(s), net.params, sizeof(rs_real) * net.nparams);
	s->parts = 1;
	return s;
}

/*
 * Checks that a bytea is a training state of this build before trusting any field:
 * shapes in range, parameter count and every offset recomputed from them.
 */
static TrainState *
StateCheck(bytea *b)
{
	TrainState *s = (TrainState *) b;
	bool		ok = !VARATT_IS_EXTENDED(b) && VARSIZE(b) >= sizeof(TrainState) && s->magic == TRAIN_MAGIC &&
		rs_kind_ops(s->kind) != NULL &&
		s->batch >= 1 && s->batch <= 65536 && s->pending >= 0 && s->pending < s->batch + (s->batch == 1) &&
		s->max_len >= 1 && s->max_len <= 10000 && s->negatives >= 0 && s->negatives <= 100000 &&
		s->opt.kind >= RS_OPT_SGD && s->opt.kind <= RS_OPT_ADAM && (s->loss == RS_LOSS_BCE || s->loss == RS_LOSS_MSE);

	/* the shape from its declared fields, and every size derived from it again */
	if (ok)
	{
		const RsKindOps *ops = rs_kind_ops(s->kind);
		RecsysNet	net;

		ok = rs_kind_unpack(ops, s->shape, &net) == s->nparams && s->input == (int32) ops->input &&
			s->in_width == ops->in_width(&net) && s->out_width == ops->out_width(&net) &&
			s->n_items == ops->n_items(&net);
	}
	ok = ok && s->off_params == TRAIN_ALIGN(sizeof(TrainState)) &&
		s->off_m == TRAIN_ALIGN(s->off_params + s->nparams * (int64) sizeof(rs_real)) &&
		s->off_v == TRAIN_ALIGN(s->off_m + s->nparams * (int64) sizeof(rs_real)) &&
		s->off_buf == TRAIN_ALIGN(s->off_v + s->nparams * (int64) sizeof(rs_real)) &&
		s->off_buf + BufferBytes(s) == (int64) VARSIZE(b);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid recsys training state"),
				 errhint("Pass the state of recsys.mlp_train or recsys.rnn_train only.")));
	return s;
}

static TrainCache *
GetCache(FunctionCallInfo fcinfo, const TrainState *s)
{
	TrainCache *c = (TrainCache *) fcinfo->flinfo->fn_extra;
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

	RecsysCoreHooks();
	if (c == NULL || c->nparams != s->nparams || c->net.kind != s->kind)
	{
		/* a new shape (first call, or groups with different models): start over */
		if (c == NULL)
			c = fcinfo->flinfo->fn_extra = palloc0(sizeof(TrainCache));
		else
		{
			if (c->grads)
				pfree(c->grads);
			RecsysNetFreeWork(&c->net);
		}
		NetFromState(s, &c->net);
		c->nparams = s->nparams;
		c->grads = palloc_extended(sizeof(rs_real) * s->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	}
	MemoryContextSwitchTo(old);
	return c;
}

/* One optimiser step over the pending rows. */
static void
StateStep(FunctionCallInfo fcinfo, TrainState *s)
{
	TrainCache *c;
	double		loss;
	int			n = s->pending;
	MemoryContext old;

	if (n == 0)
		return;
	c = GetCache(fcinfo, s);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	{
		RsBatch		batch = {.n = n};
		int32	   *negs = NULL;

		c->net.params = STATE_PARAMS(s);
		if (s->input == RS_INPUT_ROWS)
		{
			batch.x = (float *) STATE_BUF(s);
			batch.y = batch.x + (int64) s->batch * s->in_width;
			batch.loss = s->loss;
		}
		else
		{
			/* rows were buffered with stride max_len; the core reads B x T, T = max_len */
			batch.items = (int32 *) STATE_BUF(s);
			batch.len = batch.items + (int64) s->batch * s->max_len;
			batch.targets = batch.len + s->batch;
			batch.steps = s->max_len;
			batch.k = s->negatives;
			negs = palloc(sizeof(int32) * (s->negatives + 1));
			for (int j = 0; j < s->negatives; j++)
				negs[j] = (int32) rs_rng_below(&s->rng, (uint32) s->n_items);
			batch.negs = negs;
		}
		loss = rs_kind_ops(s->kind)->train_step(&c->net, &s->opt, c->grads, STATE_M(s), STATE_V(s), &batch);
		if (negs)
			pfree(negs);
	}
	MemoryContextSwitchTo(old);
	RecsysCheckLoss(loss, s->samples);
	s->loss_sum += loss * n;
	s->samples += n;
	s->updates++;
	s->pending = 0;
}

static TrainState *StateForUpdate(FunctionCallInfo fcinfo, int argno);

/*
 * The state for a transition call: a new one from the weights (argument 1) and
 * options (argument 4) on the first row, else the current one to update.
 */
static TrainState *
StateForRow(FunctionCallInfo fcinfo, bool seq)
{
	if (!PG_ARGISNULL(0))
		return StateForUpdate(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s needs starting weights", seq ? "rnn_train" : "mlp_train"),
				 errhint("Pass recsys.model_init(kind, config, seed) or the active version's weights.")));
	return StateCreate(PG_GETARG_WEIGHTS_P(1), PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4), seq);
}

/* The state to update: in place inside an aggregate, a copy when called directly. */
static TrainState *
StateForUpdate(FunctionCallInfo fcinfo, int argno)
{
	if (AggCheckCallContext(fcinfo, NULL))
		return StateCheck(PG_GETARG_BYTEA_P(argno));
	return StateCheck(PG_GETARG_BYTEA_P_COPY(argno));
}

/* ---------- SFUNCs ---------- */

PG_FUNCTION_INFO_V1(mlp_train_step);

Datum
mlp_train_step(PG_FUNCTION_ARGS)
{
	TrainState *s;
	ArrayType  *x;
	float4		y;
	int			in;
	float	   *buf;

	s = StateForRow(fcinfo, false);
	if (s->out_width != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mlp_train takes one target per row, but the model has %d outputs", s->out_width)));
	/* rows with a NULL feature vector or target are skipped, as a strict aggregate would */
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_BYTEA_P(s);
	x = PG_GETARG_ARRAYTYPE_P(2);
	y = PG_GETARG_FLOAT4(3);
	in = s->in_width;
	if (ARR_NDIM(x) != 1 || ARR_DIMS(x)[0] != in)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d features but the model takes %d",
						ARR_NDIM(x) == 1 ? ARR_DIMS(x)[0] : 0, in)));
	if (ARR_HASNULL(x) && array_contains_nulls(x))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("x must not contain NULLs")));
	if (isnan(y) || isinf(y) || (s->loss == RS_LOSS_BCE && (y < 0 || y > 1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target %g is not usable for %s", y, s->loss == RS_LOSS_BCE ? "bce (0 to 1)" : "mse")));
	buf = (float *) STATE_BUF(s);
	{
		float	   *dst = buf + (int64) s->pending * in;
		const float4 *src = (const float4 *) ARR_DATA_PTR(x);

		for (int i = 0; i < in; i++)
		{
			if (isnan(src[i]) || isinf(src[i]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("x holds NaN or infinity at position %d", i + 1)));
			dst[i] = src[i];
		}
		buf[(int64) s->batch * in + s->pending] = y;
	}
	s->pending++;
	if (s->pending == s->batch)
		StateStep(fcinfo, s);
	PG_RETURN_BYTEA_P(s);
}

PG_FUNCTION_INFO_V1(rnn_train_step);

Datum
rnn_train_step(PG_FUNCTION_ARGS)
{
	TrainState *s;
	int			n;
	int32	   *ids,
				target;
	int32	   *items,
			   *len,
			   *targets;

	s = StateForRow(fcinfo, true);
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_BYTEA_P(s);
	ids = RecsysCheckItems(PG_GETARG_ARRAYTYPE_P(2), s->n_items, &n, "item");
	target = PG_GETARG_INT32(3);
	if (target < 0 || target >= s->n_items)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target %d is outside the model's vocabulary 0..%d", target, s->n_items - 1)));
	items = (int32 *) STATE_BUF(s);
	len = items + (int64) s->batch * s->max_len;
	targets = len + s->batch;
	/* keep the most recent max_len items */
	if (n > s->max_len)
	{
		ids += n - s->max_len;
		n = s->max_len;
	}
	memcpy(items + (int64) s->pending * s->max_len, ids, sizeof(int32) * n);
	len[s->pending] = n;
	targets[s->pending] = target;
	s->pending++;
	if (s->pending == s->batch)
		StateStep(fcinfo, s);
	PG_RETURN_BYTEA_P(s);
}

/* ---------- COMBINEFUNC ---------- */

PG_FUNCTION_INFO_V1(train_combine);

Datum
train_combine(PG_FUNCTION_ARGS)
{
	TrainState *a = StateForUpdate(fcinfo, 0);
	TrainState *b = StateCheck(PG_GETARG_BYTEA_P_COPY(1));	/* aligned, and ours to step */
	rs_real    *pa,
			   *pb;
	double		wa,
				wb;

	/* same model and same buffer geometry, so the two states have the same layout */
	if (a->kind != b->kind || a->nparams != b->nparams || a->batch != b->batch || a->max_len != b->max_len ||
		a->negatives != b->negatives || a->loss != b->loss || memcmp(a->shape, b->shape, sizeof(a->shape)) != 0 ||
		VARSIZE(a) != VARSIZE(b))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot combine training states of different models or options")));
	StateStep(fcinfo, a);
	StateStep(fcinfo, b);
	if (b->samples == 0)
		PG_RETURN_BYTEA_P(a);
	if (a->samples == 0)
	{
		memcpy(a, b, VARSIZE(b));
		PG_RETURN_BYTEA_P(a);
	}
	/* sample-weighted model averaging, moments included */
	wa = (double) a->samples / (a->samples + b->samples);
	wb = 1.0 - wa;
	for (int arr = 0; arr < 3; arr++)
	{
		pa = arr == 0 ? STATE_PARAMS(a) : arr == 1 ? STATE_M(a) : STATE_V(a);
		pb = arr == 0 ? STATE_PARAMS(b) : arr == 1 ? STATE_M(b) : STATE_V(b);
		for (int64 i = 0; i < a->nparams; i++)
			pa[i] = (rs_real) (wa * pa[i] + wb * pb[i]);
	}
	a->samples += b->samples;
	a->updates += b->updates;
	a->parts += b->parts;
	a->loss_sum += b->loss_sum;
	a->opt.t = Max(a->opt.t, b->opt.t);
	PG_RETURN_BYTEA_P(a);
}

/* ---------- FINALFUNC ---------- */

PG_FUNCTION_INFO_V1(train_final);

Datum
train_final(PG_FUNCTION_ARGS)
{
	TrainState *s;
	RecsysNet	net;
	StringInfoData extra;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = StateForUpdate(fcinfo, 0);	/* FINALFUNC_MODIFY = READ_WRITE */
	StateStep(fcinfo, s);
	NetFromState(s, &net);
	RecsysCoreHooks();
	RecsysNetBind(&net, STATE_PARAMS(s), NULL);
	initStringInfo(&extra);
	appendStringInfo(&extra, "{\"train\": {\"samples\": " INT64_FORMAT ", \"steps\": " INT64_FORMAT
					 ", \"merged_parts\": " INT64_FORMAT ", \"mean_loss\": %.9g, \"optimizer\": \"%s\", \"lr\": %.9g, \"batch\": %d}}",
					 s->samples, s->updates, s->parts, s->samples ? s->loss_sum / s->samples : 0.0,
					 rs_optim_name(s->opt.kind), s->opt.lr, s->batch);
	PG_RETURN_BYTEA_P(RecsysNetSave(&net, extra.data));
}
