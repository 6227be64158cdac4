/*
 * ease.c — the bundle view as a closed-form model: recsys.ease_fit(lambda) over
 * the prepared user-bundle pairs, and recsys.ease_scores(weights, bundles).
 *
 * EASE is dense in the number of bundles (n x n floats), so it serves catalogues
 * of up to RECSYS_EASE_MAX_BUNDLES bundles; past that it is refused with a hint.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "core/rs_ease.h"
#include "model_io.h"
#include "nn_model.h"
#include "prepared.h"

#define RECSYS_EASE_MAX_BUNDLES 12000

typedef struct GramArgs
{
	float	   *g;
	int			n;
} GramArgs;

/* one user's row of X, added to X^T X */
static void
GramAddUser(int32 *list, int nlist, void *arg)
{
	GramArgs   *a = arg;

	for (int i = 0; i < nlist; i++)
		for (int j = 0; j < nlist; j++)
			a->g[(int64) list[i] * a->n + list[j]] += 1;
}

PG_FUNCTION_INFO_V1(ease_fit);

Datum
ease_fit(PG_FUNCTION_ARGS)
{
	double		lambda = PG_GETARG_FLOAT8(0);
	int64		n64,
				users = 0,
				pairs = 0;
	int			n,
				rc;
	float	   *g;
	RsTensorDesc desc = {.name = "ease.b",.ndim = 2};
	const float *data[1];
	char		config[256];
	bytea	   *result;
	MemoryContext outer;

	if (!(lambda > 0 && lambda < 1e9))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must be positive, got %g", lambda)));
	RecsysCoreHooks();
	/* the matrix must outlive SPI_finish(), which frees SPI's own memory */
	outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute("SELECT coalesce(max(idx) + 1, 0) FROM recsys.id_map WHERE space = 'bundle'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count bundles");
	n64 = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &(bool){false}));
	if (n64 == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys has no prepared bundles"),
				 errhint("Register bundles and bundle events, then run SELECT * FROM recsys.prepare().")));
	if (n64 > RECSYS_EASE_MAX_BUNDLES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("EASE is dense in the bundles: %lld bundles exceed its limit of %d",
						(long long) n64, RECSYS_EASE_MAX_BUNDLES)));
	n = (int) n64;
	g = MemoryContextAllocExtended(outer, sizeof(float) * (size_t) n * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	/* Gram matrix X^T X: for each user, every pair of bundles taken */
	{
		GramArgs	args = {g, n};

		users = RecsysForEachGroup("SELECT user_idx::bigint, bundle_idx FROM recsys.user_bundles ORDER BY 1, 2",
								   n, GramAddUser, &args, &pairs);
	}
	SPI_finish();

	rc = rs_ease_solve(g, n, lambda);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the regularised Gram matrix is not positive definite (LAPACK info %d)", rc),
				 errhint("Use a larger lambda.")));
	desc.dims[0] = n;
	desc.dims[1] = n;
	data[0] = g;
	snprintf(config, sizeof(config), "{\"model\": \"ease\", \"lambda\": %.9g, \"bundles\": %d, \"users\": " INT64_FORMAT
			 ", \"pairs\": " INT64_FORMAT "}", lambda, n, users, pairs);
	result = RecsysWeightsBuild(RS_KIND_BUNDLE, 1, &desc, data, config, strlen(config));
	PG_RETURN_BYTEA_P(result);
}

/* ---------- ease_scores(weights bytea, bundles int[]) RETURNS real[] ---------- */

typedef struct EaseCache
{
	RecsysWeightsKey key;
	int			n;
	float	   *b;
} EaseCache;

PG_FUNCTION_INFO_V1(ease_scores);

Datum
ease_scores(PG_FUNCTION_ARGS)
{
	ArrayType  *bundles = PG_GETARG_ARRAYTYPE_P(1);
	EaseCache  *c = (EaseCache *) fcinfo->flinfo->fn_extra;
	RecsysWeightsKey key;
	int			nrows;
	int32	   *rows;
	float	   *scores;
	Datum	   *elems;

	/* the model is parsed once per query: a table's 90 MB value is not detoasted per row */
	RecsysWeightsKeyOf(PG_GETARG_DATUM(0), &key);
	if (c == NULL || !RecsysWeightsKeyEqual(&c->key, &key))
	{
		RsFormatView view;
		RsTensorDesc d;
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		RecsysWeightsParse(PG_GETARG_WEIGHTS_P(0), &view);
		if (view.kind != RS_KIND_BUNDLE || rs_format_find(&view, "ease.b", &d) < 0 || d.ndim != 2 ||
			d.dims[0] != d.dims[1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ease_scores needs weights made by recsys.ease_fit")));
		if (c == NULL)
			c = fcinfo->flinfo->fn_extra = palloc0(sizeof(EaseCache));
		else if (c->b)
			pfree(c->b);
		c->n = (int) d.dims[0];
		c->b = palloc_extended(sizeof(float) * d.numel, MCXT_ALLOC_HUGE);
		rs_format_copy(&view, &d, c->b);
		c->key = key;
		MemoryContextSwitchTo(old);
	}
	rows = RecsysCheckItems(bundles, c->n, &nrows, "bundle");
	scores = palloc(sizeof(float) * c->n);
	rs_ease_scores(c->b, c->n, rows, nrows, scores);
	elems = palloc(sizeof(Datum) * c->n);
	for (int i = 0; i < c->n; i++)
		elems[i] = Float4GetDatum(scores[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, c->n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}
