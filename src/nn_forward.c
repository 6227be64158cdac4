/*
 * nn_forward.c — mlp_forward(weights, x) and rnn_encode(weights, items).
 *
 * Parsing weights costs a CRC and a copy, so the parsed model is cached in
 * fn_extra for the rest of the query and reused while the same value comes in:
 * the same TOAST pointer for a value read from a table (never detoasted again),
 * else the same length, CRC and, up to 4 MB, bytes.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "model_io.h"
#include "nn_model.h"

#define CACHE_FULL_COMPARE (4 * 1024 * 1024)
/* mlp_forward's workspace per layer: 1 M floats (4 MB), however many rows come in */
#define MLP_CHUNK_FLOATS (1024 * 1024)
/* mlp_forward's answer: 16 M numbers (64 MB of float4) */
#define MLP_MAX_OUTPUTS (16 * 1024 * 1024)
/* rnn_encode's activations for one sequence: 32 M floats (128 MB) at most */
#define RNN_ENCODE_MAX_FLOATS (32 * 1024 * 1024)

typedef struct NetCache
{
	RecsysWeightsKey key;
	char	   *bytes;			/* a copy of an in-line value up to CACHE_FULL_COMPARE */
	RecsysNet	net;
} NetCache;

static RecsysNet *
CachedNet(FunctionCallInfo fcinfo)
{
	NetCache   *c = (NetCache *) fcinfo->flinfo->fn_extra;
	RecsysWeightsKey key;
	bytea	   *w = NULL;
	Size		len;
	MemoryContext old;

	RecsysWeightsKeyOf(PG_GETARG_DATUM(0), &key);
	if (c && RecsysWeightsKeyEqual(&c->key, &key))
	{
		/* a toasted value is named by its pointer; an in-line one is also compared byte for byte */
		if (key.toastrel != InvalidOid || c->bytes == NULL)
			return &c->net;
		w = PG_GETARG_WEIGHTS_P(0);
		if (memcmp(c->bytes, VARDATA_ANY(w), VARSIZE_ANY_EXHDR(w)) == 0)
			return &c->net;
	}
	if (w == NULL)
		w = PG_GETARG_WEIGHTS_P(0);
	len = VARSIZE_ANY_EXHDR(w);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (c == NULL)
		c = fcinfo->flinfo->fn_extra = palloc0(sizeof(NetCache));
	else
	{
		if (c->bytes)
			pfree(c->bytes);
		if (c->net.params)
			pfree(c->net.params);
		RecsysNetFreeWork(&c->net);
		memset(c, 0, sizeof(*c));
	}
	RecsysCoreHooks();
	RecsysNetLoad(&c->net, w);
	c->key = key;
	if (key.toastrel == InvalidOid && len <= CACHE_FULL_COMPARE)
	{
		c->bytes = palloc(len);
		memcpy(c->bytes, VARDATA_ANY(w), len);
	}
	MemoryContextSwitchTo(old);
	return &c->net;
}

/* ---------- mlp_forward(weights bytea, x real[]) RETURNS real[] ---------- */

PG_FUNCTION_INFO_V1(mlp_forward);

Datum
mlp_forward(PG_FUNCTION_ARGS)
{
	ArrayType  *x = PG_GETARG_ARRAYTYPE_P(1);
	RecsysNet  *net = CachedNet(fcinfo);
	const RsKindOps *ops = rs_kind_ops(net->kind);
	RsBatch		batch = {0};
	int			ndim = ARR_NDIM(x),
				rows,
				in,
				out;
	float4	   *xv;
	rs_real    *logits;
	Datum	   *elems;
	int			dims[2],
				lbs[2] = {1, 1};
	int			widest = 1,
				chunk;
	MemoryContext old;

	if (ops->input != RS_INPUT_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mlp_forward needs %s weights, got %s", RecsysKindNames(RS_INPUT_ROWS),
						rs_kind_name(net->kind))));
	in = ops->in_width(net);
	out = ops->out_width(net);
	if (ndim != 1 && ndim != 2)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x must be a vector of %d features or a matrix of rows of %d, got %d dimensions",
						in, in, ndim)));
	if (ARR_HASNULL(x) && array_contains_nulls(x))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("x must not contain NULLs")));
	rows = ndim == 1 ? 1 : ARR_DIMS(x)[0];
	if (ARR_DIMS(x)[ndim - 1] != in)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d features but the model takes %d", ARR_DIMS(x)[ndim - 1], in)));
	if (rows > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("at most 1000000 rows per call, got %d", rows)));
	/* the answer is one array: its size is bounded before it is allocated */
	if ((int64) rows * out > MLP_MAX_OUTPUTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%d rows of %d outputs make %lld numbers, more than the %d one answer may hold",
						rows, out, (long long) rows * out, MLP_MAX_OUTPUTS),
				 errhint("Pass fewer rows per call.")));
	/* a row's activations (and their gradients, which the forward pass does not use) bound the chunk */
	widest = (int) Min(ops->activations(net, 1, 0, 0), PG_INT32_MAX);
	chunk = Max(1, 2 * MLP_CHUNK_FLOATS / widest);
	xv = (float4 *) ARR_DATA_PTR(x);
	for (int64 i = 0; i < (int64) rows * in; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (isnan(xv[i]) || isinf(xv[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("x holds NaN or infinity at position %lld", (long long) i + 1)));
	}
	elems = palloc(mul_size(mul_size(sizeof(Datum), rows), out));

	/*
	 * Rows go through in chunks whose widest layer fits MLP_CHUNK_FLOATS: the workspace
	 * (rows x widest layer) stays bounded whatever the batch, and is reused across calls.
	 */
	for (int r0 = 0; r0 < rows; r0 += chunk)
	{
		int			nr = Min(chunk, rows - r0);

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		batch.n = nr;
		batch.x = xv + (int64) r0 * in;
		logits = ops->forward(net, &batch);
		MemoryContextSwitchTo(old);
		for (int64 i = 0; i < (int64) nr * out; i++)
		{
			rs_real		v = logits[i];

			rs_act_forward(ops->output(net), &v, 1);
			if (!isfinite(v))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("mlp_forward computed %g for row %lld", (double) v, (long long) r0 + i / out + 1),
						 errhint("The weights or inputs are too large to compute with in float32.")));
			elems[(int64) r0 * out + i] = Float4GetDatum(v);
		}
	}
	dims[0] = rows;
	dims[1] = out;
	if (ndim == 1)
		dims[0] = out;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, ndim, dims, lbs, FLOAT4OID, sizeof(float4), true,
											 TYPALIGN_INT));
}

/* ---------- rnn_encode(weights bytea, items int[]) RETURNS real[] ---------- */

/* Checks an array of indexes ("item", "bundle") and returns them (NULLs and out-of-range ids are errors). */
int32 *
RecsysCheckItems(ArrayType *items, int vocab, int *n, const char *what)
{
	int32	   *ids;

	if (ARR_NDIM(items) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("items must be a one-dimensional array")));
	if (ARR_HASNULL(items) && array_contains_nulls(items))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("items must not contain NULLs")));
	*n = ARR_NDIM(items) == 0 ? 0 : ARR_DIMS(items)[0];
	ids = (int32 *) ARR_DATA_PTR(items);
	for (int i = 0; i < *n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (ids[i] < 0 || ids[i] >= vocab)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s %d at position %d is outside the model's range 0..%d", what, ids[i], i + 1, vocab - 1)));
	}
	return ids;
}

PG_FUNCTION_INFO_V1(rnn_encode);

Datum
rnn_encode(PG_FUNCTION_ARGS)
{
	ArrayType  *items = PG_GETARG_ARRAYTYPE_P(1);
	RecsysNet  *net = CachedNet(fcinfo);
	const RsKindOps *ops = rs_kind_ops(net->kind);
	RsBatch		batch = {0};
	int			n,
				out;
	int32	   *ids;
	rs_real    *h;
	Datum	   *elems;
	MemoryContext old;

	if (ops->input != RS_INPUT_ITEMS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rnn_encode needs %s weights, got %s", RecsysKindNames(RS_INPUT_ITEMS),
						rs_kind_name(net->kind))));
	if (ARR_ELEMTYPE(items) != INT4OID)
		elog(ERROR, "rnn_encode expects integer[]");
	ids = RecsysCheckItems(items, ops->n_items(net), &n, "item");
	if (n > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a sequence holds at most 10000 items, got %d", n)));
	/* the encoder keeps every step's activations: bound them, not only the length */
	if (ops->activations(net, 1, n, 0) / 2 > RNN_ENCODE_MAX_FLOATS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a sequence of %d items through this encoder needs more than %d MB of activations",
						n, (int) (RNN_ENCODE_MAX_FLOATS * sizeof(float) / (1024 * 1024))),
				 errhint("Encode the most recent items only.")));
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	batch.n = 1;
	batch.items = ids;
	batch.len = &n;
	batch.steps = n;
	h = ops->forward(net, &batch);
	MemoryContextSwitchTo(old);
	out = ops->out_width(net);
	elems = palloc(sizeof(Datum) * out);
	for (int i = 0; i < out; i++)
	{
		if (!isfinite(h[i]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("rnn_encode computed %g in hidden unit %d", (double) h[i], i + 1),
					 errhint("The weights are too large to compute with in float32.")));
		elems[i] = Float4GetDatum(h[i]);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, out, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}
