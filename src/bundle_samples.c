/*
 * bundle_samples.c — the learned scorer's data: recsys.bundle_samples (held-out pairs and
 * their candidates under a fit) and recsys.bundle_features (a customer's features for
 * given bundles, the feedback samples).
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

/* ---------- recsys.bundle_samples(fit bytea, holdout_seed bigint, candidates int) ---------- */

PG_FUNCTION_INFO_V1(bundle_samples);

Datum
bundle_samples(PG_FUNCTION_ARGS)
{
	bytea	   *w = PG_GETARG_BYTEA_P(0);
	uint64		seed = (uint64) PG_GETARG_INT64(1);
	int			ncand = PG_GETARG_INT32(2);
	int32		max_customers = PG_NARGS() > 3 ? PG_GETARG_INT32(3) : 0;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecsysBundle bm;
	RecsysPrepared		d;
	float	   *s,
			   *iv,
			   *x;
	int32	   *cand,
			   *taken;
	uint8	   *skip;

	if (ncand < 1 || ncand > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidates must be from 1 to 10000, got %d", ncand)));
	InitMaterializedSRF(fcinfo, 0);
	RecsysCoreHooks();
	RecsysBundleLoad(w, &bm);
	SPI_connect();
	RecsysPreparedLoad(&d, CurrentMemoryContext);
	/* the same counts the fit saw, or the held-out pairs would not be the fit's */
	if (d.nb != bm.m.nb || d.ni != bm.m.ni)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the prepared data changed since the fit (%d bundles and %d items, the fit saw %d and %d)",
						d.nb, d.ni, bm.m.nb, bm.m.ni),
				 errhint("Fit again with recsys.bundle_fit.")));
	s = palloc(sizeof(float) * d.nb);
	iv = palloc(sizeof(float) * d.nb);
	skip = palloc0(d.nb);
	ncand = Min(ncand, d.nb);
	cand = palloc(sizeof(int32) * ncand);
	taken = palloc(sizeof(int32) * d.nb);
	x = palloc(sizeof(float) * ncand * RS_BUNDLE_NFEAT);
	for (int32 u = 0; u < d.nu; u++)
	{
		const int32 *all = d.user_bundles.idx + d.user_bundles.ptr[u];
		int			nall = d.user_bundles.ptr[u + 1] - d.user_bundles.ptr[u];
		int			pick = rs_holdout_pick(seed, u, all, nall);
		int			ntaken = 0,
					got,
					pos = -1;
		bool		valid;

		if (pick < 0 || !rs_customer_sampled(seed, u, d.nu, max_customers))
			continue;
		valid = rs_holdout_valid(seed, u);
		for (int t = 0; t < nall; t++)
			if (t != pick)
				taken[ntaken++] = all[t];
		rs_bundle_score(&bm.m, taken, ntaken, d.user_items.idx + d.user_items.ptr[u],
						d.user_items.ptr[u + 1] - d.user_items.ptr[u], s, iv);
		for (int t = 0; t < ntaken; t++)
			skip[taken[t]] = 1;
		got = rs_top_n(s, d.nb, skip, ncand, cand);
		for (int t = 0; t < ntaken; t++)
			skip[taken[t]] = 0;
		for (int c = 0; c < got; c++)
			if (cand[c] == all[pick])
				pos = c;
		/* a training customer whose bundle is not among the candidates teaches nothing */
		if (pos < 0 && !valid)
			continue;
		rs_bundle_features(&bm.m, s, iv, ntaken, cand, got, x);
		for (int c = 0; c < got; c++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};
			Datum		feats[RS_BUNDLE_NFEAT];

			for (int f = 0; f < RS_BUNDLE_NFEAT; f++)
				feats[f] = Float4GetDatum(x[c * RS_BUNDLE_NFEAT + f]);
			values[0] = Int32GetDatum(u);
			values[1] = BoolGetDatum(valid);
			values[2] = Int32GetDatum(cand[c]);
			values[3] = PointerGetDatum(construct_array(feats, RS_BUNDLE_NFEAT, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
			values[4] = Float4GetDatum(c == pos ? 1.0f : 0.0f);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			/* copied by the tuplestore: 100 candidates of 100,000 customers would keep 600 MB of arrays */
			pfree(DatumGetPointer(values[3]));
		}
		/* a validating customer whose bundle was missed still counts, as a miss */
		if (pos < 0)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, true, true, false};

			values[0] = Int32GetDatum(u);
			values[1] = BoolGetDatum(true);
			values[2] = values[3] = (Datum) 0;
			values[4] = Float4GetDatum(1.0f);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * ---------- recsys.in_customer_sample(user_idx, seed, customers, max_customers): the learned parts' sample
 * (core/rs_fit.h), for the SQL steps that read customers themselves (the GRU's epochs) ----------
 */
PG_FUNCTION_INFO_V1(in_customer_sample);

Datum
in_customer_sample(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rs_customer_sampled((uint64) PG_GETARG_INT64(1), PG_GETARG_INT32(0), PG_GETARG_INT64(2),
									   PG_GETARG_INT64(3)));
}

/* ---------- recsys.bundle_features(fit bytea, user_idx integer, bundles integer[]) RETURNS real[] ---------- */

typedef struct FeatureCache
{
	RecsysWeightsKey key;
	bytea	   *weights;
	RecsysBundle bm;
} FeatureCache;

/* one column of a query about one customer, as indexes */
static int32 *
UserList(const char *query, int32 user, int *n)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(user)};
	int32	   *out;

	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read a customer's history");
	*n = (int) SPI_processed;
	out = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		out[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	return out;
}

PG_FUNCTION_INFO_V1(bundle_features);

Datum
bundle_features(PG_FUNCTION_ARGS)
{
	int32		user = PG_GETARG_INT32(1);
	ArrayType  *bundles = PG_GETARG_ARRAYTYPE_P(2);
	FeatureCache *fc = (FeatureCache *) fcinfo->flinfo->fn_extra;
	RecsysWeightsKey key;
	int32	   *want,
			   *taken,
			   *items;
	int			nwant,
				ntaken,
				nitems;
	float	   *s,
			   *iv,
			   *x;
	Datum	   *elems;
	int			dims[2],
				lbs[2] = {1, 1};
	MemoryContext old;

	/* the model is parsed once per query, as in ease_scores */
	RecsysWeightsKeyOf(PG_GETARG_DATUM(0), &key);
	if (fc == NULL || !RecsysWeightsKeyEqual(&fc->key, &key))
	{
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		if (fc == NULL)
			fc = fcinfo->flinfo->fn_extra = palloc0(sizeof(FeatureCache));
		fc->weights = PG_GETARG_BYTEA_P_COPY(0);
		RecsysCoreHooks();
		RecsysBundleLoad(fc->weights, &fc->bm);
		fc->key = key;
		MemoryContextSwitchTo(old);
	}
	want = RecsysCheckItems(bundles, fc->bm.m.nb, &nwant, "bundle");
	/* allocated before SPI_connect: SPI's memory goes at SPI_finish */
	s = palloc(sizeof(float) * fc->bm.m.nb);
	iv = palloc(sizeof(float) * fc->bm.m.nb);
	x = palloc(sizeof(float) * Max(nwant, 1) * RS_BUNDLE_NFEAT);
	SPI_connect();
	taken = UserList("SELECT bundle_idx FROM recsys.user_bundles WHERE user_idx = $1 ORDER BY 1", user, &ntaken);
	items = UserList("SELECT item_idx FROM recsys.user_items WHERE user_idx = $1 ORDER BY 1", user, &nitems);
	rs_bundle_score(&fc->bm.m, taken, ntaken, items, nitems, s, iv);
	rs_bundle_features(&fc->bm.m, s, iv, ntaken, want, nwant, x);
	SPI_finish();
	if (nwant == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT4OID));
	elems = palloc(sizeof(Datum) * nwant * RS_BUNDLE_NFEAT);
	for (int i = 0; i < nwant * RS_BUNDLE_NFEAT; i++)
		elems[i] = Float4GetDatum(x[i]);
	dims[0] = nwant;
	dims[1] = RS_BUNDLE_NFEAT;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, 2, dims, lbs, FLOAT4OID, 4, true, TYPALIGN_INT));
}


/* ---------- recsys.bundle_scorer_init(hidden int, seed bigint) ---------- */

/*
 * The scorer's shape lives here, next to its features: RS_BUNDLE_NFEAT inputs, one hidden
 * layer, one linear output. SQL never spells the feature count.
 */
PG_FUNCTION_INFO_V1(bundle_scorer_init);

Datum
bundle_scorer_init(PG_FUNCTION_ARGS)
{
	return RecsysScorerInit(RS_BUNDLE_NFEAT, PG_GETARG_INT32(0), PG_GETARG_INT64(1));
}
