/*
 * nn_model.c — configs, v1 weights <-> core models, and model_init().
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "model_io.h"
#include "nn_model.h"

static void *
core_palloc(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size, MCXT_ALLOC_HUGE);
}

static void
core_pfree(void *p)
{
	pfree(p);
}

static void
core_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

void
RecsysCoreHooks(void)
{
	rs_alloc = core_palloc;
	rs_release = core_pfree;
	rs_check_interrupts = core_interrupts;
}

/* ---------- option values: one rule and one wording for every parser ---------- */

/* a JSON number as a double, or an error naming the key and what it must be */
static double
JsonDouble(JsonbValue *v, const char *key, const char *what)
{
	if (v == NULL || v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be %s", key, what)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
}

double
RecsysJsonNumber(JsonbValue *v, const char *key, double lo, double hi)
{
	double		d = JsonDouble(v, key, "a number");

	if (!(d >= lo && d <= hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be from %g to %g, got %g", key, lo, hi, d)));
	return d;
}

/* a whole number: 1.5 is refused rather than truncated */
int64
RecsysJsonInt(JsonbValue *v, const char *key, int64 lo, int64 hi)
{
	double		d = JsonDouble(v, key, "an integer");

	if (!(d >= (double) lo && d <= (double) hi) || d != floor(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer from " INT64_FORMAT " to " INT64_FORMAT ", got %g",
						key, lo, hi, d)));
	return (int64) d;
}

/* ---------- config access ---------- */

JsonbValue *
RecsysConfigGet(Jsonb *config, const char *key)
{
	return getKeyJsonValueFromContainer(&config->root, key, strlen(key), NULL);
}

int
RecsysConfigInt(Jsonb *config, const char *key, int dflt, int lo, int hi)
{
	JsonbValue *v = RecsysConfigGet(config, key);
	double		d;

	if (v == NULL)
	{
		if (dflt >= 0)
			return dflt;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config needs \"%s\"", key)));
	}
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config \"%s\" must be a number", key)));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
	if (d != floor(d) || d < lo || d > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config \"%s\" must be an integer from %d to %d, got %g", key, lo, hi, d)));
	return (int) d;
}

double
RecsysConfigFloat(Jsonb *config, const char *key, double dflt, double lo, double hi)
{
	JsonbValue *v = RecsysConfigGet(config, key);
	double		d;

	if (v == NULL)
		return dflt;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
	if (!(d >= lo && d <= hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be from %g to %g, got %g", key, lo, hi, d)));
	return d;
}

static int
ConfigAct(Jsonb *config, const char *key, RsAct dflt)
{
	JsonbValue *v = RecsysConfigGet(config, key);
	char	   *s;
	int			act;

	if (v == NULL)
		return dflt;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config \"%s\" must be a string", key)));
	s = pnstrdup(v->val.string.val, v->val.string.len);
	act = rs_act_from_name(s);
	if (act < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config \"%s\": unknown activation \"%s\"", key, s),
				 errhint("Use linear, relu, sigmoid or tanh.")));
	return act;
}

/* refuses keys the kind does not declare */
static void
ConfigOnlyFields(Jsonb *config, const RsCfgField *fields)
{
	JsonbIterator *it = JsonbIteratorInit(&config->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (const RsCfgField *f = fields; f->key; f++)
			if (strlen(f->key) == (size_t) v.val.string.len && strncmp(f->key, v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown config key \"%.*s\"", v.val.string.len, v.val.string.val)));
	}
}

/* a widths field: an array of 2..RS_MLP_MAX_LAYERS + 1 whole numbers in [lo, hi] */
static void
ConfigWidths(Jsonb *config, const RsCfgField *f, RecsysNet *net)
{
	JsonbValue *arr = RecsysConfigGet(config, f->key);
	int			n;

	if (arr == NULL || arr->type != jbvBinary || !JsonContainerIsArray(arr->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an %s config needs \"%s\": an array of widths, input first", rs_kind_name(net->kind), f->key),
				 errhint("For example {\"%s\": [128, 64, 32, 1]}.", f->key)));
	n = JsonContainerSize(arr->val.binary.data);
	if (n < 2 || n > RS_MLP_MAX_LAYERS + 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an %s has 2 to %d widths in \"%s\", got %d", rs_kind_name(net->kind), RS_MLP_MAX_LAYERS + 1,
						f->key, n)));
	*(int *) ((char *) net + f->offset2) = n - 1;
	for (int i = 0; i < n; i++)
	{
		JsonbValue *w = getIthJsonbValueFromContainer(arr->val.binary.data, i);
		double		d;

		if (w->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" must hold numbers", f->key)));
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(w->val.numeric)));
		if (d != floor(d) || d < f->lo || d > f->hi)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("layer width %g is out of range %d to %d", d, f->lo, f->hi)));
		RS_CFG_AT(net, f)[i] = (int) d;
	}
}

char *
RecsysKindNames(RsInput input)
{
	StringInfoData s;
	const RsKindOps *k;
	int			n = 0,
				seen = 0;

	for (int i = 0; (k = rs_kind_at(i)) != NULL; i++)
		n += (int) input < 0 || k->input == input;
	initStringInfo(&s);
	for (int i = 0; (k = rs_kind_at(i)) != NULL; i++)
		if ((int) input < 0 || k->input == input)
			appendStringInfo(&s, "%s%s", seen++ == 0 ? "" : seen == n ? " or " : ", ", rs_kind_name(k->kind));
	return s.data;
}

const RsKindOps *
RecsysNetKind(int kind, const char *what)
{
	const RsKindOps *ops = rs_kind_ops(kind);

	if (ops == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of kind \"%s\" are not a neural network", what, rs_kind_name(kind)),
				 errhint("Use %s.", RecsysKindNames(RS_INPUT_ANY))));
	return ops;
}

void
RecsysNetConfigure(RecsysNet *net, int kind, Jsonb *config)
{
	const RsKindOps *ops = RecsysNetKind(kind, "models");

	memset(net, 0, sizeof(*net));
	net->kind = kind;
	if (!JB_ROOT_IS_OBJECT(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a JSON object")));
	for (const RsCfgField *f = ops->config; f->key; f++)
	{
		if (f->type == RS_CFG_WIDTHS)
			ConfigWidths(config, f, net);
		else if (f->type == RS_CFG_ACT)
			*RS_CFG_AT(net, f) = ConfigAct(config, f->key, f->dflt);
		else
			*RS_CFG_AT(net, f) = RecsysConfigInt(config, f->key, f->dflt, f->lo, f->hi);
	}
	net->nparams = ops->layout(net);
	if ((uint64) net->nparams * sizeof(rs_real) > RS_MAX_TOTAL_SIZE / 4)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model would have %lld parameters, the limit is %llu",
						(long long) net->nparams, (unsigned long long) (RS_MAX_TOTAL_SIZE / 4 / sizeof(rs_real)))));
}

char *
RecsysNetConfigText(const RecsysNet *net)
{
	const RsKindOps *ops = RecsysNetKind(net->kind, "models");
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (const RsCfgField *f = ops->config; f->key; f++)
	{
		const int  *v = (const int *) ((const char *) net + f->offset);

		appendStringInfo(&s, "%s\"%s\": ", f == ops->config ? "" : ", ", f->key);
		if (f->type == RS_CFG_WIDTHS)
		{
			int			nlayers = *(const int *) ((const char *) net + f->offset2);

			appendStringInfoChar(&s, '[');
			for (int i = 0; i <= nlayers; i++)
				appendStringInfo(&s, "%s%d", i ? ", " : "", v[i]);
			appendStringInfoChar(&s, ']');
		}
		else if (f->type == RS_CFG_ACT)
			appendStringInfo(&s, "\"%s\"", rs_act_name((RsAct) *v));
		else
			appendStringInfo(&s, "%d", *v);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

void
RecsysNetBind(RecsysNet *net, rs_real *params, rs_real *grads)
{
	net->params = params;
	rs_kind_ops(net->kind)->bind(net, params, grads);
}

void
RecsysNetFreeWork(RecsysNet *net)
{
	const RsKindOps *ops = rs_kind_ops(net->kind);

	if (ops)
		ops->free(net);
}

void
RecsysNetAllocate(RecsysNet *net)
{
	RecsysNetBind(net, palloc_extended(sizeof(rs_real) * net->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO), NULL);
}

/* the format's tensors for this net, in parameter order */
static int
NetTensors(const RecsysNet *net, RsTensorDesc *d)
{
	memset(d, 0, sizeof(RsTensorDesc) * RS_KIND_MAX_TENSORS);
	return rs_kind_ops(net->kind)->tensors(net, d);
}

void
RecsysNetLoad(RecsysNet *net, bytea *weights)
{
	RsFormatView view;
	Jsonb	   *config;

	RecsysWeightsParse(weights, &view);
	if (rs_kind_ops(view.kind) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights of kind \"%s\" are not a neural network", rs_kind_name(view.kind)),
				 errhint("Pass weights made by recsys.model_init or a training aggregate.")));
	config = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(
																		  pnstrdup(view.config_len ? view.config : "{}",
																				   view.config_len ? view.config_len : 2))));
	RecsysNetLoadView(net, &view, view.kind, config, "");
}

void
RecsysNetLoadView(RecsysNet *net, const RsFormatView *view, int kind, Jsonb *config, const char *prefix)
{
	RsTensorDesc want[RS_KIND_MAX_TENSORS];
	int			n;
	int64		off = 0;

	RsTensorDesc have[RS_KIND_MAX_TENSORS];

	RecsysNetConfigure(net, kind, config);
	n = NetTensors(net, want);

	/*
	 * Every tensor is checked against the config before anything is allocated: the
	 * config of a small value can claim a model of a gigabyte.
	 */
	for (int i = 0; i < n; i++)
	{
		char		name[RS_NAME_LEN * 2];

		snprintf(name, sizeof(name), "%s%s", prefix, want[i].name);
		if (rs_format_find(view, name, &have[i]) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: tensor \"%s\" is missing", name)));
		if (have[i].ndim != want[i].ndim || have[i].dims[0] != want[i].dims[0] ||
			(want[i].ndim == 2 && have[i].dims[1] != want[i].dims[1]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: tensor \"%s\" does not have the shape its config says", name)));
	}
	RecsysNetAllocate(net);
	for (int i = 0; i < n; i++)
	{
		/* rs_real is float in the server build: the format's float32 copies straight in */
		rs_format_copy(view, &have[i], net->params + off);
		off += want[i].numel;
	}
	Assert(off == net->nparams);
}

bytea *
RecsysNetSave(const RecsysNet *net, const char *extra_config)
{
	RsTensorDesc d[RS_KIND_MAX_TENSORS];
	const float *data[RS_KIND_MAX_TENSORS];
	int			n = NetTensors(net, d);
	int64		off = 0;
	char	   *config = RecsysNetConfigText(net);

	for (int i = 0; i < n; i++)
	{
		data[i] = net->params + off;
		off += d[i].numel;
	}
	if (extra_config)
	{
		Datum		merged = DirectFunctionCall2(jsonb_concat,
												 DirectFunctionCall1(jsonb_in, CStringGetDatum(config)),
												 DirectFunctionCall1(jsonb_in, CStringGetDatum(extra_config)));
		Jsonb	   *j = DatumGetJsonbP(merged);

		config = JsonbToCString(NULL, &j->root, VARSIZE(j));
	}
	return RecsysWeightsBuild(net->kind, n, d, data, config, strlen(config));
}

/* ---------- model_init(kind text, config jsonb, seed bigint) RETURNS bytea ---------- */

PG_FUNCTION_INFO_V1(model_init);

Datum
model_init(PG_FUNCTION_ARGS)
{
	char	   *kindname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *config = PG_GETARG_JSONB_P(1);
	int64		seed = PG_GETARG_INT64(2);
	int			kind = rs_kind_from_name(kindname);
	const RsKindOps *ops = kind > 0 ? rs_kind_ops(kind) : NULL;
	RecsysNet	net;
	RsRng		rng;

	if (ops == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_init makes %s models, not \"%s\"", RecsysKindNames(RS_INPUT_ANY), kindname)));
	RecsysCoreHooks();
	if (JB_ROOT_IS_OBJECT(config))
		ConfigOnlyFields(config, ops->config);
	RecsysNetConfigure(&net, kind, config);
	RecsysNetAllocate(&net);
	rs_rng_seed(&rng, (uint64) seed);
	ops->init(&net, &rng);
	PG_RETURN_BYTEA_P(RecsysNetSave(&net, NULL));
}

/* a scorer's fresh weights: nfeat inputs, hidden units, one linear output (the bundle and item scorers) */
Datum
RecsysScorerInit(int nfeat, int32 hidden, int64 seed)
{
	char	   *config;

	if (hidden < 1 || hidden > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hidden must be from 1 to 1024, got %d", hidden)));
	config = psprintf("{\"layers\": [%d, %d, 1], \"output\": \"linear\"}", nfeat, hidden);
	return DirectFunctionCall3(model_init, CStringGetTextDatum("mlp"),
							   DirectFunctionCall1(jsonb_in, CStringGetDatum(config)),
							   Int64GetDatum(seed));
}
