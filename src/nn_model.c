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

void
RecsysConfigOnlyKeys(Jsonb *config, const char *const *keys)
{
	JsonbIterator *it = JsonbIteratorInit(&config->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (const char *const *k = keys; *k; k++)
			if (strlen(*k) == (size_t) v.val.string.len && strncmp(*k, v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown config key \"%.*s\"", v.val.string.len, v.val.string.val)));
	}
}

void
RecsysNetConfigure(RecsysNet *net, int kind, Jsonb *config)
{
	memset(net, 0, sizeof(*net));
	net->kind = kind;
	if (!JB_ROOT_IS_OBJECT(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a JSON object")));
	if (kind == RS_KIND_MLP)
	{
		JsonbValue *layers = RecsysConfigGet(config, "layers");
		int			n;

		if (layers == NULL || layers->type != jbvBinary || !JsonContainerIsArray(layers->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an mlp config needs \"layers\": an array of widths, input first"),
					 errhint("For example {\"layers\": [128, 64, 32, 1]}.")));
		n = JsonContainerSize(layers->val.binary.data);
		if (n < 2 || n > RS_MLP_MAX_LAYERS + 1)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("an mlp has 2 to %d widths in \"layers\", got %d", RS_MLP_MAX_LAYERS + 1, n)));
		net->mlp.nlayers = n - 1;
		for (int i = 0; i < n; i++)
		{
			JsonbValue *w = getIthJsonbValueFromContainer(layers->val.binary.data, i);
			double		d;

			if (w->type != jbvNumeric)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"layers\" must hold numbers")));
			d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(w->val.numeric)));
			if (d != floor(d) || d < 1 || d > RECSYS_MAX_WIDTH)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("layer width %g is out of range 1 to %d", d, RECSYS_MAX_WIDTH)));
			net->mlp.dims[i] = (int) d;
		}
		net->mlp.hidden = ConfigAct(config, "activation", RS_ACT_RELU);
		net->mlp.output = ConfigAct(config, "output", RS_ACT_SIGMOID);
		net->nparams = rs_mlp_nparams(net->mlp.dims, net->mlp.nlayers);
	}
	else if (kind == RS_KIND_RNN || kind == RS_KIND_GRU)
	{
		net->seq.cell = kind == RS_KIND_GRU ? RS_CELL_GRU : RS_CELL_RNN;
		net->seq.vocab = RecsysConfigInt(config, "vocab", -1, 1, RECSYS_MAX_VOCAB);
		net->seq.embed = RecsysConfigInt(config, "embed", 64, 1, RECSYS_MAX_WIDTH);
		net->seq.hidden = RecsysConfigInt(config, "hidden", 128, 1, RECSYS_MAX_WIDTH);
		/* the seed's Elman RNN squashes with the logistic sigmoid */
		net->seq.act = kind == RS_KIND_RNN ? ConfigAct(config, "activation", RS_ACT_SIGMOID) : RS_ACT_TANH;
		net->nparams = rs_seq_layout(&net->seq);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model kind \"%s\" is not a neural network", rs_kind_name(kind)),
				 errhint("Use mlp, rnn or gru.")));
	if ((uint64) net->nparams * sizeof(rs_real) > RS_MAX_TOTAL_SIZE / 4)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model would have %lld parameters, the limit is %llu",
						(long long) net->nparams, (unsigned long long) (RS_MAX_TOTAL_SIZE / 4 / sizeof(rs_real)))));
}

char *
RecsysNetConfigText(const RecsysNet *net)
{
	StringInfoData s;

	initStringInfo(&s);
	if (net->kind == RS_KIND_MLP)
	{
		appendStringInfoString(&s, "{\"layers\": [");
		for (int i = 0; i <= net->mlp.nlayers; i++)
			appendStringInfo(&s, "%s%d", i ? ", " : "", net->mlp.dims[i]);
		appendStringInfo(&s, "], \"activation\": \"%s\", \"output\": \"%s\"}",
						 rs_act_name(net->mlp.hidden), rs_act_name(net->mlp.output));
	}
	else
	{
		appendStringInfo(&s, "{\"vocab\": %d, \"embed\": %d, \"hidden\": %d",
						 net->seq.vocab, net->seq.embed, net->seq.hidden);
		if (net->kind == RS_KIND_RNN)
			appendStringInfo(&s, ", \"activation\": \"%s\"", rs_act_name(net->seq.act));
		appendStringInfoChar(&s, '}');
	}
	return s.data;
}

void
RecsysNetBind(RecsysNet *net, rs_real *params, rs_real *grads)
{
	net->params = params;
	if (net->kind == RS_KIND_MLP)
		rs_mlp_bind(&net->mlp, params, grads);
	else
		rs_seq_bind(&net->seq, params, grads);
}

void
RecsysNetFreeWork(RecsysNet *net)
{
	if (net->kind == RS_KIND_MLP)
		rs_mlp_free(&net->mlp);
	else if (net->kind == RS_KIND_RNN || net->kind == RS_KIND_GRU)
		rs_seq_free(&net->seq);
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
	int			n = 0;

	memset(d, 0, sizeof(RsTensorDesc) * (RS_MLP_MAX_LAYERS * 2));
	if (net->kind == RS_KIND_MLP)
	{
		for (int l = 0; l < net->mlp.nlayers; l++)
		{
			snprintf(d[n].name, RS_NAME_LEN, "l%d.w", l);
			d[n].ndim = 2;
			d[n].dims[0] = net->mlp.dims[l];
			d[n].dims[1] = net->mlp.dims[l + 1];
			n++;
			snprintf(d[n].name, RS_NAME_LEN, "l%d.b", l);
			d[n].ndim = 1;
			d[n].dims[0] = net->mlp.dims[l + 1];
			n++;
		}
	}
	else
	{
		static const char *const names[RS_SEQ_NTENSORS] = {"emb", "w_x", "w_h", "b_x", "b_h", "out", "out_b"};
		int64		gh = (int64) net->seq.gates * net->seq.hidden;
		int64		dims[RS_SEQ_NTENSORS][2] = {
			{net->seq.vocab, net->seq.embed}, {net->seq.embed, gh}, {net->seq.hidden, gh},
			{gh, 0}, {gh, 0}, {net->seq.vocab, net->seq.hidden}, {net->seq.vocab, 0}};

		for (n = 0; n < RS_SEQ_NTENSORS; n++)
		{
			strlcpy(d[n].name, names[n], RS_NAME_LEN);
			d[n].ndim = dims[n][1] ? 2 : 1;
			d[n].dims[0] = dims[n][0];
			d[n].dims[1] = dims[n][1];
		}
	}
	for (int i = 0; i < n; i++)
		d[i].numel = d[i].dims[0] * (d[i].ndim == 2 ? d[i].dims[1] : 1);
	return n;
}

void
RecsysNetLoad(RecsysNet *net, bytea *weights)
{
	RsFormatView view;
	Jsonb	   *config;

	RecsysWeightsParse(weights, &view);
	if (view.kind != RS_KIND_MLP && view.kind != RS_KIND_RNN && view.kind != RS_KIND_GRU)
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
	RsTensorDesc want[RS_MLP_MAX_LAYERS * 2];
	int			n;
	int64		off = 0;

	RsTensorDesc have[RS_MLP_MAX_LAYERS * 2];

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
	RsTensorDesc d[RS_MLP_MAX_LAYERS * 2];
	const float *data[RS_MLP_MAX_LAYERS * 2];
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
	RecsysNet	net;
	RsRng		rng;
	static const char *const mlp_keys[] = {"layers", "activation", "output", NULL};
	static const char *const rnn_keys[] = {"vocab", "embed", "hidden", "activation", NULL};
	static const char *const gru_keys[] = {"vocab", "embed", "hidden", NULL};

	if (kind != RS_KIND_MLP && kind != RS_KIND_RNN && kind != RS_KIND_GRU)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_init makes mlp, rnn or gru models, not \"%s\"", kindname)));
	RecsysCoreHooks();
	if (JB_ROOT_IS_OBJECT(config))
		RecsysConfigOnlyKeys(config, kind == RS_KIND_MLP ? mlp_keys : kind == RS_KIND_RNN ? rnn_keys : gru_keys);
	RecsysNetConfigure(&net, kind, config);
	RecsysNetAllocate(&net);
	rs_rng_seed(&rng, (uint64) seed);
	if (kind == RS_KIND_MLP)
		rs_mlp_init(&net.mlp, &rng);
	else
		rs_seq_init(&net.seq, &rng);
	PG_RETURN_BYTEA_P(RecsysNetSave(&net, NULL));
}
