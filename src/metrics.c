/*
 * metrics.c — SQL glue of the ranking metrics: recsys.rank_metrics(ranked, relevant,
 * k, n_items) and recsys.gini(counts). The arithmetic is in core/rs_metrics.c.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "core/rs_metrics.h"
#include "nn_model.h"

static int
CmpCString(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* the text elements of an array, NULLs refused with the argument's name */
static char **
TextElems(ArrayType *arr, const char *what, int *n)
{
	Datum	   *d;
	bool	   *nulls;
	char	  **out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &d, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULLs", what)));
		out[i] = TextDatumGetCString(d[i]);
	}
	return out;
}

static Datum
MetricDatum(double v, bool *isnull)
{
	*isnull = isnan(v);
	return Float8GetDatum(*isnull ? 0 : v);
}

PG_FUNCTION_INFO_V1(rank_metrics);

Datum
rank_metrics(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	int			nranked,
				nrel,
				ndistinct = 0;
	char	  **ranked,
			  **rel;
	uint8	   *hits,
			   *used;
	int32		k;
	int64		n_items;
	RsRankMetrics m;
	Datum		values[8];
	bool		nulls[8];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rank_metrics must return a record");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k must not be NULL")));
	k = PG_GETARG_INT32(2);
	if (k < 1 || k > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be from 1 to 1000000, got %d", k)));
	n_items = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3);
	if (n_items < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n_items must not be negative, got %lld", (long long) n_items)));
	ranked = TextElems(PG_GETARG_ARRAYTYPE_P(0), "ranked", &nranked);
	rel = TextElems(PG_GETARG_ARRAYTYPE_P(1), "relevant", &nrel);
	/* relevant ids as a sorted set: duplicates count once */
	qsort(rel, nrel, sizeof(char *), CmpCString);
	for (int i = 0; i < nrel; i++)
		if (i == 0 || strcmp(rel[i], rel[ndistinct - 1]) != 0)
			rel[ndistinct++] = rel[i];
	hits = palloc0(Max(nranked, 1));
	used = palloc0(Max(ndistinct, 1));
	for (int i = 0; i < nranked; i++)
	{
		char	  **found = ndistinct ? bsearch(&ranked[i], rel, ndistinct, sizeof(char *), CmpCString) : NULL;

		/* an id listed twice is relevant once, at its first place */
		if (found && !used[found - rel])
		{
			hits[i] = 1;
			used[found - rel] = 1;
		}
	}
	RecsysCoreHooks();
	rs_rank_metrics(hits, nranked, ndistinct, k, n_items, &m);
	values[0] = MetricDatum(m.precision, &nulls[0]);
	values[1] = MetricDatum(m.recall, &nulls[1]);
	values[2] = MetricDatum(m.f1, &nulls[2]);
	values[3] = MetricDatum(m.ndcg, &nulls[3]);
	values[4] = MetricDatum(m.ap, &nulls[4]);
	values[5] = MetricDatum(m.hit, &nulls[5]);
	values[6] = MetricDatum(m.rr, &nulls[6]);
	values[7] = MetricDatum(m.auc, &nulls[7]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

PG_FUNCTION_INFO_V1(gini);

Datum
gini(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *d;
	bool	   *nulls;
	int			n;
	double	   *v,
				g;

	deconstruct_array(arr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, &nulls, &n);
	if (n == 0)
		PG_RETURN_NULL();
	v = palloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("counts must not contain NULLs")));
		v[i] = DatumGetFloat8(d[i]);
		if (!(v[i] >= 0) || isinf(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("counts must be finite and non-negative, got %g at position %d", v[i], i + 1)));
	}
	RecsysCoreHooks();
	g = rs_gini(v, n);
	PG_RETURN_FLOAT8(g);
}

PG_FUNCTION_INFO_V1(normal_cdf);

Datum
normal_cdf(PG_FUNCTION_ARGS)
{
	double		x = PG_GETARG_FLOAT8(0);

	if (isnan(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must not be NaN")));
	/* Phi(x) = erfc(-x / sqrt 2) / 2: accurate in both tails */
	PG_RETURN_FLOAT8(0.5 * erfc(-x / M_SQRT2));
}
