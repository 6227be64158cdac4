/*
 * model_io.c — SQL surface of the weights format: model_info, model_pack,
 * model_tensor, model_check. Every entry validates the whole value (size,
 * header, dims, CRC) before reading a weight.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "access/detoast.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include <float.h>
#include <math.h>

#include "model_io.h"

static void
ConfigValidate(const char *config, size_t len)
{
	JsonLexContext *lex;
	JsonParseErrorType rc;
	size_t		i = 0;

	if (len == 0)
		return;
	lex = makeJsonLexContextCstringLen((char *) config, (int) len, PG_UTF8, true);
	rc = pg_parse_json(lex, &nullSemAction);
	while (i < len && (config[i] == ' ' || config[i] == '\n'))
		i++;
	if (rc != JSON_SUCCESS || i >= len || config[i] != '{')
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid recsys weights: config is not a JSON object")));
}

void
RecsysWeightsParse(bytea *weights, RsFormatView *view)
{
	char		err[256];
	RsFormatError rc;

	rc = rs_format_parse((const uint8_t *) VARDATA_ANY(weights), VARSIZE_ANY_EXHDR(weights),
						 view, err, sizeof(err));
	if (rc != RS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid recsys weights: %s", err),
				 errhint("The value was damaged or was not made by recsys; restore the model version from a backup or retrain it.")));
	ConfigValidate(view->config, view->config_len);
}

bytea *
RecsysWeightsBuild(int kind, int ntensors, RsTensorDesc *descs,
				   const float *const *data, const char *config, size_t config_len)
{
	char		err[256];
	uint64_t	total;
	bytea	   *result;

	if (rs_format_layout(ntensors, descs, config_len, &total, err, sizeof(err)) != RS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot build recsys weights: %s", err)));
	for (int i = 0; i < ntensors; i++)
		for (int64_t k = 0; data && data[i] && k < descs[i].numel; k++)
			if (isnan(data[i][k]) || isinf(data[i][k]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tensor \"%s\" holds NaN or infinity at index %lld",
								descs[i].name, (long long) k)));
	result = (bytea *) palloc(VARHDRSZ + total);
	SET_VARSIZE(result, VARHDRSZ + total);
	rs_format_write((uint8_t *) VARDATA(result), total, kind, ntensors, descs, data, config, config_len);
	return result;
}

void
RecsysWeightsKeyOf(Datum weights, RecsysWeightsKey *key)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(weights);

	memset(key, 0, sizeof(*key));
	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ext;

		VARATT_EXTERNAL_GET_POINTER(ext, raw);
		key->toastrel = ext.va_toastrelid;
		key->valueid = ext.va_valueid;
		key->size = ext.va_rawsize;
	}
	else
	{
		bytea	   *w = DatumGetByteaPP(weights);
		Size		len = VARSIZE_ANY_EXHDR(w);
		const unsigned char *p = (const unsigned char *) VARDATA_ANY(w) + len - 4;

		key->size = len;
		if (len >= 4)
			key->crc = (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) | ((uint32) p[3] << 24);
	}
}

bool
RecsysWeightsKeyEqual(const RecsysWeightsKey *a, const RecsysWeightsKey *b)
{
	return a->toastrel == b->toastrel && a->valueid == b->valueid && a->size == b->size && a->crc == b->crc;
}

/* ---------- model_info(bytea) RETURNS jsonb ---------- */

PG_FUNCTION_INFO_V1(model_info);

Datum
model_info(PG_FUNCTION_ARGS)
{
	bytea	   *w = PG_GETARG_WEIGHTS_P(0);
	RsFormatView view;
	StringInfoData s;
	int64		params = 0;

	RecsysWeightsParse(w, &view);
	initStringInfo(&s);
	appendStringInfo(&s, "{\"format_version\": %d, \"kind\": \"%s\", \"flags\": 0, \"bytes\": %zu, "
					 "\"crc32c\": \"%08x\", \"config\": ",
					 RS_FORMAT_VERSION, rs_kind_name(view.kind), view.len, view.crc);
	if (view.config_len)
		appendBinaryStringInfo(&s, view.config, (int) view.config_len);
	else
		appendStringInfoString(&s, "{}");
	appendStringInfoString(&s, ", \"tensors\": [");
	for (int i = 0; i < view.ntensors; i++)
	{
		RsTensorDesc d;

		rs_format_tensor(&view, i, &d);
		appendStringInfo(&s, "%s{\"name\": \"%s\", \"dtype\": \"float32\", \"dims\": [", i ? ", " : "", d.name);
		for (int j = 0; j < d.ndim; j++)
			appendStringInfo(&s, "%s%lld", j ? ", " : "", (long long) d.dims[j]);
		appendStringInfo(&s, "], \"offset\": %llu}", (unsigned long long) d.offset);
		params += d.numel;
	}
	appendStringInfo(&s, "], \"parameters\": %lld}", (long long) params);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/* ---------- model_check(bytea) RETURNS boolean ---------- */

PG_FUNCTION_INFO_V1(model_check);

/* True for valid weights, an ERROR otherwise: usable in a CHECK constraint. */
Datum
model_check(PG_FUNCTION_ARGS)
{
	RsFormatView view;

	RecsysWeightsParse(PG_GETARG_WEIGHTS_P(0), &view);
	PG_RETURN_BOOL(true);
}

/* ---------- model_pack(kind text, tensors jsonb, config jsonb) RETURNS bytea ---------- */

typedef struct PackTensor
{
	RsTensorDesc desc;
	float	   *data;
	int64		filled;
} PackTensor;

static JsonbValue *
JsonbArrayElement(JsonbValue *v, int i)
{
	return getIthJsonbValueFromContainer(v->val.binary.data, (uint32) i);
}

static bool
JsonbIsArray(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/* Reads the shape from the first element at every nesting level. */
static void
PackShape(PackTensor *t, JsonbValue *v)
{
	t->desc.ndim = 0;
	while (JsonbIsArray(v))
	{
		int			n = JsonContainerSize(v->val.binary.data);

		if (t->desc.ndim == RS_MAX_DIMS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tensor \"%s\" has more than %d dimensions", t->desc.name, RS_MAX_DIMS)));
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tensor \"%s\" has an empty dimension", t->desc.name)));
		t->desc.dims[t->desc.ndim++] = n;
		v = JsonbArrayElement(v, 0);
	}
	if (t->desc.ndim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tensor \"%s\" must be a JSON array of numbers", t->desc.name)));
}

static void
PackFill(PackTensor *t, JsonbValue *v, int depth)
{
	int			n;

	if (depth == t->desc.ndim)
	{
		if (v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tensor \"%s\" holds a non-number", t->desc.name)));
		{
			double		x = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																 NumericGetDatum(v->val.numeric)));

			if (!(fabs(x) <= FLT_MAX))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("tensor \"%s\" value %lld is out of range for float32",
								t->desc.name, (long long) t->filled + 1)));
			t->data[t->filled++] = (float) x;
		}
		return;
	}
	n = JsonbIsArray(v) ? (int) JsonContainerSize(v->val.binary.data) : -1;
	if (n != t->desc.dims[depth])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tensor \"%s\" is ragged: dimension %d has %d and %lld elements",
						t->desc.name, depth + 1, n, (long long) t->desc.dims[depth])));
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		PackFill(t, JsonbArrayElement(v, i), depth + 1);
	}
}

PG_FUNCTION_INFO_V1(model_pack);

Datum
model_pack(PG_FUNCTION_ARGS)
{
	char	   *kindname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *tensors = PG_GETARG_JSONB_P(1);
	Jsonb	   *config = PG_GETARG_JSONB_P(2);
	int			kind = rs_kind_from_name(kindname);
	int			n;
	PackTensor *pt;
	RsTensorDesc *descs;
	const float **data;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *config_text;
	int64		max_numel;
	int			i = 0;

	if (kind == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown model kind \"%s\"", kindname),
				 errhint("Use one of mlp, rnn, gru, baseline, bundle.")));
	if (!JB_ROOT_IS_OBJECT(tensors) || JB_ROOT_COUNT(tensors) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tensors must be a non-empty JSON object of name: array")));
	if (!JB_ROOT_IS_OBJECT(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config must be a JSON object")));
	n = JB_ROOT_COUNT(tensors);
	if (n > RS_MAX_TENSORS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a model holds at most %d tensors, got %d", RS_MAX_TENSORS, n)));
	pt = palloc0(sizeof(PackTensor) * n);

	/*
	 * The shape is read from the first element at each level, so it can promise far
	 * more than the value holds: every number takes at least a JEntry of 4 bytes, which
	 * bounds a true tensor before anything is allocated for it.
	 */
	max_numel = VARSIZE(tensors) / sizeof(JEntry);

	it = JsonbIteratorInit(&tensors->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (v.val.string.len >= RS_NAME_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tensor name \"%.*s\" is longer than %d characters",
								v.val.string.len, v.val.string.val, RS_NAME_LEN - 1)));
			memcpy(pt[i].desc.name, v.val.string.val, v.val.string.len);
		}
		else if (tok == WJB_VALUE)
		{
			int64		numel = 1;

			PackShape(&pt[i], &v);
			for (int j = 0; j < pt[i].desc.ndim; j++)
				if (pg_mul_s64_overflow(numel, pt[i].desc.dims[j], &numel) || numel > max_numel)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("tensor \"%s\" is ragged: its first elements promise more numbers than the JSON holds",
									pt[i].desc.name)));
			pt[i].data = palloc(mul_size(sizeof(float), (Size) numel));
			PackFill(&pt[i], &v, 0);
			i++;
		}
	}
	descs = palloc(sizeof(RsTensorDesc) * n);
	data = palloc(sizeof(float *) * n);
	for (i = 0; i < n; i++)
	{
		descs[i] = pt[i].desc;
		data[i] = pt[i].data;
	}
	config_text = JsonbToCString(NULL, &config->root, VARSIZE(config));
	PG_RETURN_BYTEA_P(RecsysWeightsBuild(kind, n, descs, data, config_text, strlen(config_text)));
}

/* ---------- model_tensor(bytea, name text) RETURNS real[] ---------- */

PG_FUNCTION_INFO_V1(model_tensor);

Datum
model_tensor(PG_FUNCTION_ARGS)
{
	bytea	   *w = PG_GETARG_WEIGHTS_P(0);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	RsFormatView view;
	RsTensorDesc d;
	float	   *vals;
	Datum	   *elems;
	int			dims[RS_MAX_DIMS],
				lbs[RS_MAX_DIMS];

	RecsysWeightsParse(w, &view);
	if (rs_format_find(&view, name, &d) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model has no tensor named \"%s\"", name),
				 errhint("recsys.model_info(weights) lists the tensors.")));
	vals = palloc(sizeof(float) * d.numel);
	rs_format_copy(&view, &d, vals);
	elems = palloc(sizeof(Datum) * d.numel);
	for (int64 k = 0; k < d.numel; k++)
		elems[k] = Float4GetDatum(vals[k]);
	for (int j = 0; j < d.ndim; j++)
	{
		dims[j] = (int) d.dims[j];
		lbs[j] = 1;
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, d.ndim, dims, lbs, FLOAT4OID,
											 sizeof(float4), true, TYPALIGN_INT));
}
