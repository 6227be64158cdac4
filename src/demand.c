/*
 * demand.c — recsys.demand_fit and recsys.demand_predict: the daily sales of every item, category or bundle read
 * from the prepared events into one dense matrix, the global forecast model of core/rs_demand.h fitted on it,
 * and its forecasts next to the baselines'. recsys.forecast_demand and recsys.demand_backtest (SQL) call them.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "core/rs_demand.h"
#include "nn_model.h"

/* each level's daily sales ($1: the first day, $2: the day after the last), ordered by series then day */
static const char *const LevelQueries[][2] = {
	{"item",
		"SELECT m.ext_id, x.d, x.q FROM ("
		"  SELECT e.item_idx, e.ts::date - $1 AS d, sum(e.weight)::float8 AS q FROM recsys.events_clean e"
		"   WHERE e.ts >= $1 AND e.ts < $2 GROUP BY 1, 2) x"
		"  JOIN recsys.id_map m ON m.space = 'item' AND m.idx = x.item_idx ORDER BY 1, 2"},
	{"category",
		"SELECT a.category, e.ts::date - $1, sum(e.weight)::float8 FROM recsys.events_clean e"
		"  JOIN recsys.item_attrs a ON a.item_idx = e.item_idx"
		" WHERE a.category IS NOT NULL AND e.ts >= $1 AND e.ts < $2 GROUP BY 1, 2 ORDER BY 1, 2"},
	/* a bundle sells when one basket holds every item of it */
	{"bundle",
		"SELECT m.ext_id, x.d, count(*)::float8 FROM ("
		"  SELECT bi.bundle_idx, min(e.ts)::date - $1 AS d FROM recsys.events_clean e"
		"    JOIN recsys.bundle_items bi ON bi.item_idx = e.item_idx"
		"    JOIN (SELECT bundle_idx, count(*) AS n FROM recsys.bundle_items GROUP BY 1) z ON z.bundle_idx = bi.bundle_idx"
		"   WHERE e.basket_idx IS NOT NULL AND e.ts >= $1 AND e.ts < $2"
		"   GROUP BY bi.bundle_idx, e.basket_idx HAVING count(DISTINCT e.item_idx) = min(z.n)) x"
		"  JOIN recsys.id_map m ON m.space = 'bundle' AND m.idx = x.bundle_idx GROUP BY 1, 2 ORDER BY 1, 2"},
};

/* each level's promotion days ($1: the first day): the series a promotion covers, its first and last day */
static const char *const PromoQueries[][2] = {
	{"item",
		"SELECT m.ext_id, p.starts::date - $1, (p.ends - interval '1 microsecond')::date - $1"
		"  FROM recsys.promotions p CROSS JOIN LATERAL pg_catalog.unnest(p.items) AS i(idx)"
		"  JOIN recsys.id_map m ON m.space = 'item' AND m.idx = i.idx"},
	{"category",
		"SELECT c.category, p.starts::date - $1, (p.ends - interval '1 microsecond')::date - $1"
		"  FROM recsys.promotions p CROSS JOIN LATERAL pg_catalog.unnest(p.categories) AS c(category)"},
	{"bundle",
		"SELECT DISTINCT m.ext_id, p.starts::date - $1, (p.ends - interval '1 microsecond')::date - $1"
		"  FROM recsys.promotions p JOIN recsys.bundle_items bi ON bi.item_idx = ANY (p.items)"
		"  JOIN recsys.id_map m ON m.space = 'bundle' AND m.idx = bi.bundle_idx"},
};

typedef struct DemandSeries
{
	RsDemandData d;				/* the history: days first .. origin */
	float	   *y;				/* n x (T + ahead): the history, then the days after the origin */
	int			ahead;
	char	  **keys;
} DemandSeries;

static const char *
LevelQuery(const char *level)
{
	for (int i = 0; i < lengthof(LevelQueries); i++)
		if (strcmp(LevelQueries[i][0], level) == 0)
			return LevelQueries[i][1];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown forecast level \"%s\"", level),
			 errhint("The levels are item, category and bundle.")));
	return NULL;
}

/* weekday (0 Sunday) and day of year of a date */
static void
DateCalendar(DateADT day, int *dow, int *doy)
{
	int			y,
				m,
				d;

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	*dow = j2day(day + POSTGRES_EPOCH_JDATE);
	*doy = date2j(y, m, d) - date2j(y, 1, 1) + 1;
}

/*
 * every series of a level over the T days ending at origin and the ahead days after it (zeros where nothing
 * sold), in CurrentMemoryContext; series with no sale in the history are left out
 */
static int
KeyCmp(const void *a, const void *b)
{
	return strcmp(**(char *const *const *) a, **(char *const *const *) b);
}

/* marks the days each series' promotions run, over T + horizon days from first (after the series are read) */
static void
DemandPromotions(DemandSeries *s, const char *level, DateADT first, int width)
{
	const char *query = NULL;
	char	 ***sorted;
	uint8	   *promo;
	Oid			types[1] = {DATEOID};
	Datum		args[1] = {DateADTGetDatum(first)};
	MemoryContext outer = CurrentMemoryContext;

	for (int i = 0; i < lengthof(PromoQueries); i++)
		if (strcmp(PromoQueries[i][0], level) == 0)
			query = PromoQueries[i][1];
	if (query == NULL || s->d.n == 0)
		return;
	/* the series' keys in strcmp order, to find a promotion's series by binary search */
	sorted = palloc(sizeof(char **) * s->d.n);
	for (int i = 0; i < s->d.n; i++)
		sorted[i] = &s->keys[i];
	qsort(sorted, s->d.n, sizeof(char **), KeyCmp);
	promo = MemoryContextAllocExtended(outer, (Size) s->d.n * width, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	SPI_connect();
	if (SPI_execute_with_args(query, 1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the promotions");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		null1,
					null2;
		char	   *key = SPI_getvalue(tup, desc, 1);
		int32		from = DatumGetInt32(SPI_getbinval(tup, desc, 2, &null1)),
					to = DatumGetInt32(SPI_getbinval(tup, desc, 3, &null2));
		char	  **k = &key,
				 ***hit;

		if (key == NULL || null1 || null2)
			continue;
		hit = bsearch(&k, sorted, s->d.n, sizeof(char **), KeyCmp);
		if (hit == NULL)
			continue;
		for (int t = Max(from, 0); t <= Min(to, width - 1); t++)
			promo[(Size) (*hit - s->keys) * width + t] = 1;
	}
	SPI_finish();
	s->d.promo = promo;
	s->d.promo_width = width;
}

static void
DemandRead(DemandSeries *s, const char *level, DateADT origin, int T, int ahead, int horizon)
{
	const char *query = LevelQuery(level);
	MemoryContext outer = CurrentMemoryContext;
	DateADT		first = origin - T + 1;
	int			width = T + ahead,
				cap = 1024,
				n = 0;
	Oid			types[2] = {DATEOID, DATEOID};
	Datum		args[2] = {DateADTGetDatum(first), DateADTGetDatum(origin + ahead + 1)};
	Portal		portal;
	char	   *prev = NULL;

	s->keys = palloc(sizeof(char *) * cap);
	s->y = MemoryContextAllocExtended(outer, sizeof(float) * (Size) cap * width, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, query, 2, types, args, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *key = SPI_getvalue(tup, desc, 1);
			int32		day = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
			double		q = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));

			if (key == NULL || day < 0 || day >= width)
				continue;
			if (prev == NULL || strcmp(prev, key) != 0)
			{
				if (n == cap)
				{
					MemoryContext old = MemoryContextSwitchTo(outer);

					cap *= 2;
					s->keys = repalloc(s->keys, sizeof(char *) * cap);
					s->y = repalloc_huge(s->y, sizeof(float) * (Size) cap * width);
					memset(s->y + (Size) n * width, 0, sizeof(float) * (Size) (cap - n) * width);
					MemoryContextSwitchTo(old);
				}
				s->keys[n++] = MemoryContextStrdup(outer, key);
				prev = s->keys[n - 1];
			}
			s->y[(Size) (n - 1) * width + day] += (float) (isnull ? 0 : q);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();

	/* the history alone as the model's matrix (n x T); series that sold nothing in it are dropped */
	{
		int			kept = 0;
		float	   *hist = MemoryContextAllocExtended(outer, sizeof(float) * (Size) Max(n, 1) * T, MCXT_ALLOC_HUGE);

		for (int i = 0; i < n; i++)
		{
			float	   *row = s->y + (Size) i * width;
			double		sum = 0;

			for (int t = 0; t < T; t++)
				sum += row[t];
			if (sum <= 0)
				continue;
			memcpy(hist + (Size) kept * T, row, sizeof(float) * T);
			if (kept != i)
			{
				memmove(s->y + (Size) kept * width, row, sizeof(float) * width);
				s->keys[kept] = s->keys[i];
			}
			kept++;
		}
		s->d.y = hist;
		s->d.n = kept;
	}
	s->d.T = T;
	s->ahead = ahead;
	s->d.promo = NULL;
	s->d.promo_width = 0;
	DateCalendar(first, &s->d.dow0, &s->d.doy0);
	DemandPromotions(s, level, first, T + horizon);
}

static double
OptionNumber(Jsonb *o, const char *key, double dflt)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&o->root, key, strlen(key), NULL);

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type == jbvBool)
		return v->val.boolean ? 1 : 0;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

static void
CheckArgs(const char *level, int horizon, int history)
{
	LevelQuery(level);
	if (horizon < 1 || horizon > RS_DEMAND_MAX_HORIZON)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be from 1 to %d days, got %d", RS_DEMAND_MAX_HORIZON, horizon)));
	if (history < RS_DEMAND_MIN_HISTORY || history > 3650)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("history_days must be from %d to 3650, got %d", RS_DEMAND_MIN_HISTORY, history)));
}

/* ---------- recsys.demand_fit(weights bytea, level text, origin date, horizon int, options jsonb) ---------- */

PG_FUNCTION_INFO_V1(demand_fit);

Datum
demand_fit(PG_FUNCTION_ARGS)
{
	bytea	   *weights = PG_GETARG_BYTEA_PP(0);
	char	   *level = text_to_cstring(PG_GETARG_TEXT_PP(1));
	DateADT		origin = PG_GETARG_DATEADT(2);
	int			horizon = PG_GETARG_INT32(3);
	Jsonb	   *o = PG_GETARG_JSONB_P(4);
	int			history = (int) OptionNumber(o, "history_days", 364);
	RsDemandTrain cfg;
	DemandSeries s;
	RecsysNet	net;
	rs_real    *grads;
	char	   *extra;

	CheckArgs(level, horizon, history);
	if (DATE_NOT_FINITE(origin))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("origin must be a finite date")));
	RecsysCoreHooks();
	RecsysNetLoad(&net, weights);
	if (net.kind != RS_KIND_MLP || net.u.mlp.dims[0] != RS_DEMAND_NFEAT || net.u.mlp.dims[net.u.mlp.nlayers] != 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("demand weights must be an mlp from %d features to 3 quantiles", RS_DEMAND_NFEAT)));
	memset(&cfg, 0, sizeof(cfg));
	cfg.horizon = horizon;
	cfg.epochs = (int) OptionNumber(o, "epochs", 20);
	cfg.max_samples = (int64) OptionNumber(o, "max_samples", 400000);
	cfg.lr = OptionNumber(o, "lr", 0.003);
	cfg.coverage = OptionNumber(o, "coverage", 0.8);
	cfg.seed = (uint64) (int64) OptionNumber(o, "seed", 42);
	if (cfg.epochs < 1 || cfg.max_samples < 1 || !(cfg.lr > 0) || !(cfg.coverage > 0 && cfg.coverage < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epochs, max_samples and lr must be positive and coverage between 0 and 1")));

	DemandRead(&s, level, origin, history, 0, horizon);
	if (s.d.n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no %s sold in the %d days up to %s", level, history,
						DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(origin)))),
				 errhint("Run recsys.prepare() over events with times, or pick another origin.")));
	grads = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(rs_real) * net.nparams, MCXT_ALLOC_HUGE);
	RecsysNetBind(&net, net.params, grads);
	if (rs_demand_fit(&net.u.mlp, net.params, net.nparams, &s.d, &cfg) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%d days of history are too few to learn %d-day forecasts", history, horizon),
				 errhint("The model needs %d days plus the horizon twice: raise history_days or shorten the horizon.",
						 RS_DEMAND_MIN_HISTORY)));
	extra = psprintf("{\"demand\": {\"level\": \"%s\", \"origin\": \"%s\", \"horizon\": %d, \"history_days\": %d, "
					 "\"series\": %d, \"coverage\": %g, \"samples\": " INT64_FORMAT ", \"valid_samples\": " INT64_FORMAT
					 ", \"epochs\": %d, \"best_epoch\": %d, \"train_loss\": %.6g, \"valid_loss\": %.6g}}",
					 level, DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(origin))), horizon, history,
					 s.d.n, cfg.coverage, cfg.samples, cfg.valid_samples, cfg.epochs_run, cfg.best_epoch,
					 cfg.train_loss, cfg.valid_loss);
	RecsysNetFreeWork(&net);
	PG_RETURN_BYTEA_P(RecsysNetSave(&net, extra));
}

/* ---------- recsys.demand_predict(weights bytea, level text, origin date, horizon int, options jsonb) ---------- */

PG_FUNCTION_INFO_V1(demand_predict);

/*
 * RETURNS TABLE (method text, key text, day date, forecast real, lo real, hi real, actual real, scale real):
 * the model's forecasts (weights not NULL) and the two baselines' for every series, with the days' actual sales
 * when the data reaches them (option actuals) and each series' MASE scale
 */
Datum
demand_predict(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		have_model = !PG_ARGISNULL(0);
	char	   *level;
	DateADT		origin;
	int			horizon,
				history;
	bool		actuals;
	Jsonb	   *o;
	DemandSeries s;
	RecsysNet	net;
	float	   *lo = NULL,
			   *mid = NULL,
			   *hi = NULL,
			   *naive,
			   *ets;
	static const char *const methods[] = {"model", "seasonal_naive", "ets"};

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	level = text_to_cstring(PG_GETARG_TEXT_PP(1));
	origin = PG_GETARG_DATEADT(2);
	horizon = PG_GETARG_INT32(3);
	o = PG_GETARG_JSONB_P(4);
	history = (int) OptionNumber(o, "history_days", 364);
	actuals = OptionNumber(o, "actuals", 0) != 0;
	CheckArgs(level, horizon, history);
	if (DATE_NOT_FINITE(origin))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("origin must be a finite date")));
	RecsysCoreHooks();
	if (have_model)
	{
		RecsysNetLoad(&net, PG_GETARG_BYTEA_PP(0));
		if (net.kind != RS_KIND_MLP || net.u.mlp.dims[0] != RS_DEMAND_NFEAT || net.u.mlp.dims[net.u.mlp.nlayers] != 3)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("demand weights must be an mlp from %d features to 3 quantiles", RS_DEMAND_NFEAT)));
	}
	InitMaterializedSRF(fcinfo, 0);
	DemandRead(&s, level, origin, history, actuals ? horizon : 0, horizon);
	if (s.d.n == 0)
		return (Datum) 0;
	naive = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(float) * (Size) s.d.n * horizon, MCXT_ALLOC_HUGE);
	ets = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(float) * (Size) s.d.n * horizon, MCXT_ALLOC_HUGE);
	rs_demand_seasonal_naive(&s.d, horizon, naive);
	rs_demand_ets(&s.d, horizon, ets);
	if (have_model)
	{
		lo = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(float) * (Size) s.d.n * horizon, MCXT_ALLOC_HUGE);
		mid = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(float) * (Size) s.d.n * horizon, MCXT_ALLOC_HUGE);
		hi = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(float) * (Size) s.d.n * horizon, MCXT_ALLOC_HUGE);
		rs_demand_predict(&net.u.mlp, &s.d, horizon, lo, mid, hi);
	}
	for (int i = 0; i < s.d.n; i++)
	{
		double		scale = rs_demand_scale(&s.d, i);
		text	   *key = cstring_to_text(s.keys[i]);

		for (int h = 1; h <= horizon; h++)
		{
			Size		at = (Size) i * horizon + h - 1;

			for (int m = have_model ? 0 : 1; m < lengthof(methods); m++)
			{
				Datum		values[8];
				bool		nulls[8] = {0};

				values[0] = CStringGetTextDatum(methods[m]);
				values[1] = PointerGetDatum(key);
				values[2] = DateADTGetDatum(origin + h);
				values[3] = Float4GetDatum(m == 0 ? mid[at] : m == 1 ? naive[at] : ets[at]);
				values[4] = Float4GetDatum(m == 0 ? lo[at] : 0);
				values[5] = Float4GetDatum(m == 0 ? hi[at] : 0);
				nulls[4] = nulls[5] = m != 0;
				values[6] = Float4GetDatum(actuals ? s.y[(Size) i * (history + horizon) + history + h - 1] : 0);
				nulls[6] = !actuals;
				values[7] = Float4GetDatum((float) scale);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
		CHECK_FOR_INTERRUPTS();
	}
	return (Datum) 0;
}

/* ---------- recsys.demand_init(hidden int, seed bigint) ---------- */

/* the forecast model's shape lives here, next to its features: SQL never spells their count */
PG_FUNCTION_INFO_V1(demand_init);

Datum
demand_init(PG_FUNCTION_ARGS)
{
	int32		hidden = PG_GETARG_INT32(0);
	char	   *config;

	if (hidden < 1 || hidden > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hidden must be from 1 to 1024, got %d", hidden)));
	config = psprintf("{\"layers\": [%d, %d, 3], \"output\": \"linear\"}", RS_DEMAND_NFEAT, hidden);
	return DirectFunctionCall3(model_init, CStringGetTextDatum("mlp"),
							   DirectFunctionCall1(jsonb_in, CStringGetDatum(config)), PG_GETARG_DATUM(1));
}
