/*
 * bundle_load.c — bundle weights: the loader serving uses (every tensor checked against
 * the fit's config), the scorer's rerank, recsys.bundle_attach (one value holding the
 * fit, the learned scorer and the GRU) and recsys.bundle_part.
 */
#include "postgres.h"

#include <math.h>

#include <cblas.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "bundle_model.h"
#include "prepared.h"
#include "core/rs_ease.h"
#include "model_io.h"

Jsonb *
RecsysViewConfig(const RsFormatView *view)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(RecsysConfigText(view))));
}

/* ---------- loading ---------- */

static const float *
TensorPtr(const RsFormatView *view, const char *name, int64 d0, int64 d1)
{
	RsTensorDesc t;

	if (rs_format_find(view, name, &t) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack tensor \"%s\"", name),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	if (t.dims[0] != d0 || (d1 >= 0 && (t.ndim != 2 || t.dims[1] != d1)) || (d1 < 0 && t.ndim != 1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid recsys weights: tensor \"%s\" has the wrong shape", name)));
	return (const float *) (view->buf + t.offset);
}

int64
RecsysTensorLen(const RsFormatView *view, const char *name)
{
	RsTensorDesc t;

	if (rs_format_find(view, name, &t) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack tensor \"%s\"", name)));
	return t.numel;
}

int32 *
RecsysIndexesFromFloat(const float *f, int64 n, int64 limit, const char *name)
{
	int32	   *idx = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int64 j = 0; j < n; j++)
	{
		if (!(f[j] >= 0 && f[j] < limit) || f[j] != floorf(f[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: tensor \"%s\" holds index %g outside 0..%lld", name, f[j],
							(long long) limit - 1)));
		idx[j] = (int32) f[j];
	}
	return idx;
}

Jsonb *
RecsysSubConfig(Jsonb *config, const char *key)
{
	JsonbValue *v = RecsysConfigGet(config, key);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return JsonbValueToJsonb(v);
}

void
RecsysBundleLoad(bytea *weights, RecsysBundle *b)
{
	RsFormatView view;
	RsBundleModel *m = &b->m;
	Jsonb	   *fit;
	int64		nnz;
	int32	   *ptr;

	memset(b, 0, sizeof(*b));
	RecsysWeightsParse(weights, &view);
	if (view.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights of kind \"%s\" are not a bundle model", rs_kind_name(view.kind)),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	b->config = RecsysViewConfig(&view);
	fit = RecsysSubConfig(b->config, "fit");
	if (fit == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack their \"fit\" config"),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	m->nb = RecsysConfigInt(fit, "bundles", -1, 1, RECSYS_BUNDLE_MAX_INDEX - 1);
	m->ni = RecsysConfigInt(fit, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1);
	m->mb = RecsysConfigInt(fit, "keep_b", -1, 1, m->nb);
	m->mm = RecsysConfigInt(fit, "keep_m", -1, 1, m->nb);
	m->beta = (float) RecsysConfigFloat(fit, "beta", 8, 0, 1e6);
	/* weights fitted before the option normalised every view to beta */
	m->view_norm = (float) RecsysConfigFloat(fit, "view_norm", 1, 0, 1);
	b->candidates = RecsysConfigInt(b->config, "candidates", 100, 1, 10000);
	{
		int64		ni1 = Max(m->ni, 1);

		m->bidx = RecsysIndexesFromFloat(TensorPtr(&view, "b.idx", m->nb, m->mb), (int64) m->nb * m->mb, m->nb, "b.idx");
		m->bval = TensorPtr(&view, "b.val", m->nb, m->mb);
		m->midx = RecsysIndexesFromFloat(TensorPtr(&view, "m.idx", ni1, m->mm), ni1 * m->mm, m->nb, "m.idx");
		m->mval = TensorPtr(&view, "m.val", ni1, m->mm);
		m->idf = TensorPtr(&view, "item.idf", ni1, -1);
		m->mass = TensorPtr(&view, "item.mass", ni1, -1);
		m->pop = TensorPtr(&view, "bundle.pop", m->nb, -1);
		nnz = RecsysTensorLen(&view, "ib.idx");
		ptr = RecsysIndexesFromFloat(TensorPtr(&view, "ib.ptr", (int64) m->ni + 1, -1), (int64) m->ni + 1, nnz + 1, "ib.ptr");
		for (int32 i = 0; i < m->ni; i++)
			if (ptr[i] > ptr[i + 1])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid recsys weights: tensor \"ib.ptr\" is not monotone")));
		m->ib_ptr = ptr;
		m->ib_idx = RecsysIndexesFromFloat(TensorPtr(&view, "ib.idx", nnz, -1), nnz, m->nb, "ib.idx");
		m->ib_w = TensorPtr(&view, "ib.w", nnz, -1);
	}
	{
		Jsonb	   *sc = RecsysSubConfig(b->config, "scorer");
		Jsonb	   *en = RecsysSubConfig(b->config, "encoder");

		if (sc)
		{
			RecsysNetLoadView(&b->scorer, &view, RS_KIND_MLP, sc, "scorer.");
			if (b->scorer.u.mlp.dims[0] != RS_BUNDLE_NFEAT || b->scorer.u.mlp.dims[b->scorer.u.mlp.nlayers] != 1)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid recsys weights: the scorer must map %d features to 1 score", RS_BUNDLE_NFEAT)));
			b->has_scorer = true;
		}
		if (en)
		{
			RecsysNetLoadView(&b->encoder, &view, RS_KIND_GRU, en, "gru.");
			b->has_encoder = true;
		}
	}
}

void
RecsysBundleRerank(RecsysBundle *b, const float *x, int ncand, float *out)
{
	if (b->has_scorer && ncand > 0)
	{
		rs_real    *logits = rs_mlp_forward(&b->scorer.u.mlp, x, ncand);

		memcpy(out, logits, sizeof(float) * ncand);
	}
	else
		for (int c = 0; c < ncand; c++)
			out[c] = x[(int64) c * RS_BUNDLE_NFEAT + 1];
}

/* ---------- recsys.bundle_attach(fit bytea, scorer bytea, encoder bytea) RETURNS bytea ---------- */

/* view's tensors (only: those named; skip: not those starting with it) renamed prefix + name into desc/data from n */
int
RecsysCopyTensors(const RsFormatView *view, const char *prefix, const char *const *only, const char *skip,
				  RsTensorDesc *desc, const float **data, int n)
{
	for (int j = 0; j < view->ntensors; j++)
	{
		RsTensorDesc t;
		bool		keep = only == NULL;

		rs_format_tensor(view, j, &t);
		for (const char *const *o = only; o && *o; o++)
			keep |= strcmp(*o, t.name) == 0;
		if (!keep || (skip && strncmp(t.name, skip, strlen(skip)) == 0))
			continue;
		if (n >= 64)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many tensors to attach")));
		desc[n] = t;
		snprintf(desc[n].name, RS_NAME_LEN, "%s%s", prefix, t.name);
		data[n] = (const float *) (view->buf + t.offset);
		n++;
	}
	return n;
}

char *
RecsysConfigText(const RsFormatView *view)
{
	return view->config_len ? pnstrdup(view->config, view->config_len) : pstrdup("{}");
}

PG_FUNCTION_INFO_V1(bundle_attach);

Datum
bundle_attach(PG_FUNCTION_ARGS)
{
	static const char *const fit_tensors[] = {"b.idx", "b.val", "m.idx", "m.val", "item.idf", "item.mass",
	"bundle.pop", "ib.ptr", "ib.idx", "ib.w", NULL};
	RsFormatView fit,
				sc,
				en;
	RsTensorDesc desc[64];
	const float *data[64];
	int			n;
	StringInfoData cfg;
	Jsonb	   *fitcfg;
	JsonbValue *fitpart;
	int			candidates = PG_ARGISNULL(3) ? 100 : PG_GETARG_INT32(3);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("fit must not be NULL")));
	if (candidates < 1 || candidates > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidates must be from 1 to 10000, got %d", candidates)));
	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &fit);
	if (fit.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fit must be bundle weights from recsys.bundle_fit, got kind %s", rs_kind_name(fit.kind))));
	n = RecsysCopyTensors(&fit, "", fit_tensors, NULL, desc, data, 0);
	fitcfg = RecsysViewConfig(&fit);
	fitpart = RecsysConfigGet(fitcfg, "fit");
	if (fitpart == NULL || fitpart->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fit must be bundle weights from recsys.bundle_fit")));
	initStringInfo(&cfg);
	appendStringInfo(&cfg, "{\"model\": \"bundle\", \"candidates\": %d, \"fit\": %s", candidates,
					 JsonbToCString(NULL, fitpart->val.binary.data, -1));
	if (!PG_ARGISNULL(1))
	{
		RecsysWeightsParse(PG_GETARG_BYTEA_P(1), &sc);
		if (sc.kind != RS_KIND_MLP)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("scorer must be mlp weights, got kind %s", rs_kind_name(sc.kind))));
		n = RecsysCopyTensors(&sc, "scorer.", NULL, NULL, desc, data, n);
		appendStringInfo(&cfg, ", \"scorer\": %s", RecsysConfigText(&sc));
	}
	if (!PG_ARGISNULL(2))
	{
		RecsysWeightsParse(PG_GETARG_BYTEA_P(2), &en);
		if (en.kind != RS_KIND_GRU)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("encoder must be gru weights, got kind %s", rs_kind_name(en.kind))));
		n = RecsysCopyTensors(&en, "gru.", NULL, NULL, desc, data, n);
		appendStringInfo(&cfg, ", \"encoder\": %s", RecsysConfigText(&en));
	}
	appendStringInfoChar(&cfg, '}');
	{
		bytea	   *result = RecsysWeightsBuild(RS_KIND_BUNDLE, n, desc, data, cfg.data, cfg.len);
		RecsysBundle check;

		/* what cannot be served is refused here, not on the first request */
		RecsysCoreHooks();
		RecsysBundleLoad(result, &check);
		PG_RETURN_BYTEA_P(result);
	}
}

/*
 * The part of attached weights whose tensors start with prefix and whose config is under cfgkey, as weights of
 * kind of its own; NULL when the config has no such key.
 */
bytea *
RecsysWeightsPart(const RsFormatView *view, const char *prefix, const char *cfgkey, int kind)
{
	RsTensorDesc desc[64];
	const float *data[64];
	int			n = 0;
	JsonbValue *sub = RecsysConfigGet(RecsysViewConfig(view), cfgkey);
	char	   *subtext;
	size_t		plen = strlen(prefix);

	if (sub == NULL || sub->type != jbvBinary)
		return NULL;
	subtext = JsonbToCString(NULL, sub->val.binary.data, -1);
	for (int j = 0; j < view->ntensors; j++)
	{
		RsTensorDesc t;

		rs_format_tensor(view, j, &t);
		if (strncmp(t.name, prefix, plen) != 0)
			continue;
		if (n >= 64)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: too many %s tensors", cfgkey)));
		desc[n] = t;
		strlcpy(desc[n].name, t.name + plen, RS_NAME_LEN);
		data[n] = (const float *) (view->buf + t.offset);
		n++;
	}
	return RecsysWeightsBuild(kind, n, desc, data, subtext, strlen(subtext));
}

/* ---------- recsys.bundle_part(weights bytea, part text) RETURNS bytea ---------- */

PG_FUNCTION_INFO_V1(bundle_part);

Datum
bundle_part(PG_FUNCTION_ARGS)
{
	RsFormatView view;
	char	   *part = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *prefix;
	const char *cfgkey;
	int			kind;

	if (strcmp(part, "scorer") == 0)
		prefix = "scorer.", cfgkey = "scorer", kind = RS_KIND_MLP;
	else if (strcmp(part, "encoder") == 0)
		prefix = "gru.", cfgkey = "encoder", kind = RS_KIND_GRU;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown part \"%s\"", part),
				 errhint("Use scorer or encoder.")));
	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &view);
	if (view.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights of kind \"%s\" are not a bundle model", rs_kind_name(view.kind))));
	{
		bytea	   *result = RecsysWeightsPart(&view, prefix, cfgkey, kind);

		if (result == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P(result);
	}
}

