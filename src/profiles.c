/*
 * profiles.c — feature extraction over the prepared events, in one pass each:
 *   recsys.user_sequences(max_len)   each customer's most recent items, in time order;
 *   recsys.item_profiles(window)     popularity, trend, category, price band, content vector;
 *   recsys.user_profiles(window)     recency, frequency, monetary value, category affinity.
 * Reads go through SPI cursors into compressed rows (bundle_model.c), so memory is
 * the size of the prepared data, not of a sort.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "bundle_model.h"

#define PRICE_BANDS 5

static void
CheckWindow(int32 days)
{
	if (days < 1 || days > 36500)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_days must be from 1 to 36500, got %d", days)));
}

/* ---------- recsys.user_sequences(max_len integer) ---------- */

PG_FUNCTION_INFO_V1(user_sequences);

Datum
user_sequences(PG_FUNCTION_ARGS)
{
	int32		max_len = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecsysCsr	ev;
	int64	   *ts;
	int32		nu,
				ni;
	MemoryContext row_cxt;

	if (max_len < 1 || max_len > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_len must be from 1 to 10000, got %d", max_len)));
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	nu = RecsysSpaceCount("user");
	ni = RecsysSpaceCount("item");
	/* events without a time come first, in basket and item order: a stable, documented tie-break */
	RecsysCsrLoadWith("SELECT user_idx::bigint, item_idx, ts FROM recsys.events_clean "
					  "ORDER BY user_idx, ts NULLS FIRST, basket_idx NULLS FIRST, item_idx",
					  nu, ni, &ev, 1, &ts, CurrentMemoryContext);
	/* a row's arrays live until the tuplestore has copied them */
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys sequence row", ALLOCSET_DEFAULT_SIZES);
	for (int32 u = 0; u < nu; u++)
	{
		int32		end = ev.ptr[u + 1],
					start = Max(ev.ptr[u], end - max_len),
					n = end - start;
		Datum	   *items,
				   *times;
		bool	   *tnull;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int			dims[1];
		int			lbs[1] = {1};
		MemoryContext outer_row;

		if (n == 0)
			continue;
		outer_row = MemoryContextSwitchTo(row_cxt);
		items = palloc(sizeof(Datum) * n);
		times = palloc(sizeof(Datum) * n);
		tnull = palloc(sizeof(bool) * n);
		for (int32 j = 0; j < n; j++)
		{
			items[j] = Int32GetDatum(ev.idx[start + j]);
			tnull[j] = ts[start + j] == PG_INT64_MIN;
			times[j] = TimestampTzGetDatum(ts[start + j]);
		}
		dims[0] = n;
		values[0] = Int32GetDatum(u);
		values[1] = PointerGetDatum(construct_array(items, n, INT4OID, 4, true, TYPALIGN_INT));
		values[2] = PointerGetDatum(construct_md_array(times, tnull, 1, dims, lbs, TIMESTAMPTZOID, 8,
													   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(outer_row);
		MemoryContextReset(row_cxt);
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---------- shared: the catalogue ---------- */

typedef struct Catalogue
{
	int32		ni;
	int32		ncat;
	int32	   *cat;			/* category index per item, -1: none */
	char	  **cat_names;		/* sorted */
	double	   *price;			/* NaN: unknown */
	int32	   *band;			/* price band 0..PRICE_BANDS-1, -1: unknown */
} Catalogue;

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static void
CatalogueLoad(Catalogue *c, int32 ni)
{
	double	   *known;
	int			nknown = 0;
	double		cuts[PRICE_BANDS - 1];

	c->ni = ni;
	c->cat = palloc(sizeof(int32) * Max(ni, 1));
	c->price = palloc(sizeof(double) * Max(ni, 1));
	c->band = palloc(sizeof(int32) * Max(ni, 1));
	for (int32 i = 0; i < ni; i++)
	{
		c->cat[i] = -1;
		c->price[i] = NAN;
		c->band[i] = -1;
	}
	/* categories numbered in name order, so content vectors are stable across runs */
	if (SPI_execute("SELECT DISTINCT category FROM recsys.item_attrs WHERE category IS NOT NULL ORDER BY 1", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read categories");
	c->ncat = (int32) SPI_processed;
	c->cat_names = palloc(sizeof(char *) * Max(c->ncat, 1));
	for (int32 j = 0; j < c->ncat; j++)
		c->cat_names[j] = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1);
	if (SPI_execute("SELECT a.item_idx, c.n - 1, a.price FROM recsys.item_attrs a "
					"LEFT JOIN (SELECT category, row_number() OVER (ORDER BY category) AS n FROM "
					"(SELECT DISTINCT category FROM recsys.item_attrs WHERE category IS NOT NULL) d) c USING (category)",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read recsys.item_attrs");
	known = palloc(sizeof(double) * (SPI_processed + 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		i = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		Datum		cat = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
		bool		catnull = isnull;
		Datum		price = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull);

		if (i < 0 || i >= ni)
			continue;
		if (!catnull)
			c->cat[i] = (int32) DatumGetInt64(cat);
		if (!isnull)
		{
			c->price[i] = DatumGetFloat8(price);
			known[nknown++] = c->price[i];
		}
	}
	/* price bands: quintiles of the catalogue's known prices */
	if (nknown > 0)
	{
		qsort(known, nknown, sizeof(double), CmpDouble);
		for (int b = 0; b < PRICE_BANDS - 1; b++)
			cuts[b] = known[(int64) nknown * (b + 1) / PRICE_BANDS];
		for (int32 i = 0; i < ni; i++)
		{
			if (isnan(c->price[i]))
				continue;
			c->band[i] = 0;
			while (c->band[i] < PRICE_BANDS - 1 && c->price[i] >= cuts[c->band[i]])
				c->band[i]++;
		}
	}
}

/* ---------- recsys.item_profiles(window_days integer) ---------- */

PG_FUNCTION_INFO_V1(item_profiles);

Datum
item_profiles(PG_FUNCTION_ARGS)
{
	int32		window = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecsysCsr	ui;
	int64	   *last;
	int32		nu,
				ni;
	Catalogue	cat;
	int64	   *buyers,
			   *recent;
	int64		max_ts = PG_INT64_MIN,
				all_buyers = 0,
				all_recent = 0;
	int32		dim;
	MemoryContext row_cxt;

	CheckWindow(window);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	nu = RecsysSpaceCount("user");
	ni = RecsysSpaceCount("item");
	CatalogueLoad(&cat, ni);
	RecsysCsrLoadWith("SELECT item_idx::bigint, user_idx, last_ts FROM recsys.user_items", ni, nu, &ui, 1, &last,
					  CurrentMemoryContext);
	buyers = palloc0(sizeof(int64) * Max(ni, 1));
	recent = palloc0(sizeof(int64) * Max(ni, 1));
	for (int32 p = 0; p < ui.ptr[ni]; p++)
		max_ts = Max(max_ts, last[p]);
	for (int32 i = 0; i < ni; i++)
		for (int32 p = ui.ptr[i]; p < ui.ptr[i + 1]; p++)
		{
			buyers[i]++;
			if (max_ts != PG_INT64_MIN && last[p] != PG_INT64_MIN && last[p] > max_ts - (int64) window * USECS_PER_DAY)
				recent[i]++;
		}
	for (int32 i = 0; i < ni; i++)
	{
		all_buyers += buyers[i];
		all_recent += recent[i];
	}
	dim = cat.ncat + PRICE_BANDS;
	/* a row's text and array live until the tuplestore has copied them */
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys item profile row", ALLOCSET_DEFAULT_SIZES);
	for (int32 i = 0; i < ni; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};
		MemoryContext outer_row = MemoryContextSwitchTo(row_cxt);
		Datum	   *content = palloc0(sizeof(Datum) * Max(dim, 1));
		double		trend;

		for (int32 j = 0; j < dim; j++)
			content[j] = Float4GetDatum(0);
		if (cat.cat[i] >= 0)
			content[cat.cat[i]] = Float4GetDatum(1);
		if (cat.band[i] >= 0)
			content[cat.ncat + cat.band[i]] = Float4GetDatum(1);
		/* trend: the item's share of recent buyers over its share of all buyers (1 = steady), smoothed */
		trend = all_recent > 0
			? ((recent[i] + 1.0) / (all_recent + ni)) / ((buyers[i] + 1.0) / (all_buyers + ni))
			: 1.0;
		values[0] = Int32GetDatum(i);
		values[1] = Int64GetDatum(buyers[i]);
		values[2] = Int64GetDatum(recent[i]);
		values[3] = Float8GetDatum(trend);
		if (cat.cat[i] >= 0)
			values[4] = CStringGetTextDatum(cat.cat_names[cat.cat[i]]);
		else
			nulls[4] = true;
		if (!isnan(cat.price[i]))
			values[5] = Float8GetDatum(cat.price[i]);
		else
			nulls[5] = true;
		if (cat.band[i] >= 0)
			values[6] = Int32GetDatum(cat.band[i]);
		else
			nulls[6] = true;
		values[7] = PointerGetDatum(construct_array(content, dim, FLOAT4OID, 4, true, TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(outer_row);
		MemoryContextReset(row_cxt);
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---------- recsys.user_profiles(window_days integer) ---------- */

PG_FUNCTION_INFO_V1(user_profiles);

Datum
user_profiles(PG_FUNCTION_ARGS)
{
	int32		window = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecsysCsr	ev;
	int64	   *ts;
	int64	   *basket,
			   *weight;
	int32		nu,
				ni;
	Catalogue	cat;
	int64		max_ts = PG_INT64_MIN;
	double	   *share;
	MemoryContext row_cxt;

	CheckWindow(window);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	nu = RecsysSpaceCount("user");
	ni = RecsysSpaceCount("item");
	CatalogueLoad(&cat, ni);
	/* one scan: time, basket and quantity ride along with each event */
	{
		int64	   *cols[3];

		RecsysCsrLoadWith("SELECT user_idx::bigint, item_idx, ts, coalesce(basket_idx, -1), round(weight * 1000)::bigint "
						  "FROM recsys.events_clean ORDER BY user_idx, ts, basket_idx, item_idx",
						  nu, ni, &ev, 3, cols, CurrentMemoryContext);
		ts = cols[0];
		basket = cols[1];
		weight = cols[2];
	}
	for (int32 p = 0; p < ev.ptr[nu]; p++)
		max_ts = Max(max_ts, ts[p]);
	share = palloc(sizeof(double) * Max(cat.ncat, 1));
	/* a row's text and jsonb live until the tuplestore has copied them: a million customers leaked gigabytes */
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys user profile row", ALLOCSET_DEFAULT_SIZES);
	for (int32 u = 0; u < nu; u++)
	{
		MemoryContext outer_row;

		int32		n = ev.ptr[u + 1] - ev.ptr[u];
		int64		last = PG_INT64_MIN;
		int64		freq = 0,
					recent = 0,
					prev_basket = PG_INT64_MIN;
		double		monetary = 0;
		bool		priced = false;
		int32		top = -1;
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};
		StringInfoData aff;

		if (n == 0)
			continue;
		outer_row = MemoryContextSwitchTo(row_cxt);
		memset(share, 0, sizeof(double) * Max(cat.ncat, 1));
		for (int32 p = ev.ptr[u]; p < ev.ptr[u + 1]; p++)
		{
			int32		i = ev.idx[p];

			last = Max(last, ts[p]);
			/* an order is a basket; events without one count one each */
			if (basket[p] < 0 || basket[p] != prev_basket)
				freq++;
			prev_basket = basket[p];
			if (max_ts != PG_INT64_MIN && ts[p] != PG_INT64_MIN && ts[p] > max_ts - (int64) window * USECS_PER_DAY)
				recent++;
			if (!isnan(cat.price[i]))
			{
				monetary += cat.price[i] * weight[p] / 1000.0;
				priced = true;
			}
			if (cat.cat[i] >= 0)
				share[cat.cat[i]] += 1.0 / n;
		}
		initStringInfo(&aff);
		appendStringInfoChar(&aff, '{');
		for (int32 j = 0; j < cat.ncat; j++)
			if (share[j] > 0)
			{
				if (aff.len > 1)
					appendStringInfoString(&aff, ", ");
				escape_json(&aff, cat.cat_names[j]);
				appendStringInfo(&aff, ": %.4f", share[j]);
				if (top < 0 || share[j] > share[top])
					top = j;
			}
		appendStringInfoChar(&aff, '}');
		values[0] = Int32GetDatum(u);
		if (last != PG_INT64_MIN)
			values[1] = Float8GetDatum((double) (max_ts - last) / USECS_PER_DAY);
		else
			nulls[1] = true;
		values[2] = Int64GetDatum(freq);
		values[3] = Int64GetDatum(n);
		values[4] = Int64GetDatum(recent);
		if (priced)
			values[5] = Float8GetDatum(monetary);
		else
			nulls[5] = true;
		if (top >= 0)
			values[6] = CStringGetTextDatum(cat.cat_names[top]);
		else
			nulls[6] = true;
		values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(aff.data));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(outer_row);
		MemoryContextReset(row_cxt);
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}
