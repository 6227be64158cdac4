/*
 * baskets.c — the prepared baskets as arrays and an inverted index (see baskets.h).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"

#include "baskets.h"
#include "prepared.h"

/* one raw basket: sort key (its customer) and its distinct items */
typedef struct RawBasket
{
	int32		user;
	int64		start;
	int32		n;
} RawBasket;

static int
RawBasketCmp(const void *x, const void *y)
{
	const RawBasket *a = x,
			   *b = y;

	if (a->user != b->user)
		return a->user < b->user ? -1 : 1;
	return (a->start > b->start) - (a->start < b->start);
}

int
BasketsInt32Cmp(const void *x, const void *y)
{
	int32		a = *(const int32 *) x,
				b = *(const int32 *) y;

	return (a > b) - (a < b);
}

/* the baskets as read: their items end to end, and where each kept one starts */
typedef struct RawReader
{
	int32	   *raw;
	int64	   *raw_ts;			/* parallel to raw when times are kept */
	int64		nraw,
				cap_raw;
	RawBasket  *rb;
	int64		nrb,
				cap_rb;
	int32		user;			/* the smallest customer among the current basket's rows */
	int64		start;			/* where its items start in raw */
	int			max_basket;
	bool		with_ts;
	int64		groups;			/* every basket read, whatever its size */
	int64	   *item_groups;	/* per item: the baskets of any size holding it */
	MemoryContext mcxt;			/* where the arrays live: SPI calls switch to their own context */
} RawReader;

/* the current basket ends: kept when it holds 2..max_basket distinct items, else its items are dropped */
static void
RawBasketEnd(RawReader *rd)
{
	int64		n = rd->nraw - rd->start;

	if (n > 0)
		rd->groups++;
	for (int64 q = rd->start; q < rd->nraw; q++)
		rd->item_groups[rd->raw[q]]++;
	if (n >= 2 && n <= rd->max_basket)
	{
		if (rd->nrb == rd->cap_rb)
		{
			rd->cap_rb = rd->cap_rb ? rd->cap_rb * 2 : 1024;
			rd->rb = rd->rb ? repalloc_huge(rd->rb, sizeof(RawBasket) * rd->cap_rb)
				: MemoryContextAllocExtended(rd->mcxt, sizeof(RawBasket) * rd->cap_rb, MCXT_ALLOC_HUGE);
		}
		rd->rb[rd->nrb].user = rd->user;
		rd->rb[rd->nrb].start = rd->start;
		rd->rb[rd->nrb].n = (int32) n;
		rd->nrb++;
	}
	else
		rd->nraw = rd->start;
	rd->user = PG_INT32_MAX;
	rd->start = rd->nraw;
}

void
BasketsCheckMax(int max_basket)
{
	if (max_basket < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_basket must be at least 2, got %d", max_basket)));
}

bool
BasketsLoad(Baskets *bk, int max_basket, bool with_ts, bool baskets_only, MemoryContext mcxt)
{
	bool		by_basket;
	Portal		portal;
	RawReader	rd;
	int32	   *raw;
	RawBasket  *rb;
	int64		nrb;
	int64		cur = PG_INT64_MIN;

	memset(&rd, 0, sizeof(rd));
	memset(bk, 0, sizeof(Baskets));
	rd.user = PG_INT32_MAX;
	rd.max_basket = max_basket;
	rd.with_ts = with_ts;
	rd.mcxt = mcxt;
	bk->n_items = RecsysSpaceCount("item");
	bk->item_groups = MemoryContextAllocZero(mcxt, sizeof(int64) * Max(bk->n_items, 1));
	rd.item_groups = bk->item_groups;
	if (SPI_execute("SELECT EXISTS (SELECT 1 FROM recsys.events_clean WHERE basket_idx IS NOT NULL)", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the prepared events");
	{
		bool		isnull;

		by_basket = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (!by_basket && baskets_only)
		return false;
	portal = SPI_cursor_open_with_args(NULL, by_basket
									   ? "SELECT basket_idx, user_idx, item_idx, ts FROM recsys.events_clean WHERE basket_idx IS NOT NULL ORDER BY 1, 3"
									   : "SELECT user_idx::bigint, user_idx, item_idx, ts FROM recsys.events_clean ORDER BY 1, 3",
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			int32		user = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
			int32		item = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull));
			int64		ts = PG_INT64_MIN;

			if (with_ts)
			{
				Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 4, &isnull);

				if (!isnull)
					ts = DatumGetInt64(d);
			}

			if (key != cur && cur != PG_INT64_MIN)
				RawBasketEnd(&rd);
			cur = key;
			rd.user = Min(rd.user, user);
			/* the rule of prepared.h: an item appended since the count was read is skipped */
			if (item < 0 || item >= bk->n_items)
				continue;
			if (rd.nraw > rd.start && rd.raw[rd.nraw - 1] == item)
			{
				/* ordered by item: a repeat, whose time may be later */
				if (with_ts && ts > rd.raw_ts[rd.nraw - 1])
					rd.raw_ts[rd.nraw - 1] = ts;
				continue;
			}
			if (rd.nraw == rd.cap_raw)
			{
				rd.cap_raw = rd.cap_raw ? rd.cap_raw * 2 : 4096;
				rd.raw = rd.raw ? repalloc_huge(rd.raw, sizeof(int32) * rd.cap_raw)
					: MemoryContextAllocExtended(rd.mcxt, sizeof(int32) * rd.cap_raw, MCXT_ALLOC_HUGE);
				if (with_ts)
					rd.raw_ts = rd.raw_ts ? repalloc_huge(rd.raw_ts, sizeof(int64) * rd.cap_raw)
						: MemoryContextAllocExtended(rd.mcxt, sizeof(int64) * rd.cap_raw, MCXT_ALLOC_HUGE);
			}
			if (with_ts)
				rd.raw_ts[rd.nraw] = ts;
			rd.raw[rd.nraw++] = item;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(mcxt);
	if (cur != PG_INT64_MIN)
		RawBasketEnd(&rd);
	raw = rd.raw;
	rb = rd.rb;
	nrb = rd.nrb;
	bk->groups = rd.groups;

	/* customer order (stable within a customer), so each candidate counts a customer once */
	if (nrb > 1)
		qsort(rb, nrb, sizeof(RawBasket), RawBasketCmp);
	bk->n = nrb;
	bk->start = palloc_extended(sizeof(int64) * (nrb + 1), MCXT_ALLOC_HUGE);
	bk->user = palloc_extended(sizeof(int32) * Max(nrb, 1), MCXT_ALLOC_HUGE);
	bk->items = palloc_extended(sizeof(int32) * Max(rd.nraw, 1), MCXT_ALLOC_HUGE);
	if (with_ts)
		bk->ts = palloc_extended(sizeof(int64) * Max(rd.nraw, 1), MCXT_ALLOC_HUGE);
	bk->start[0] = 0;
	for (int64 t = 0; t < nrb; t++)
	{
		memcpy(bk->items + bk->start[t], raw + rb[t].start, sizeof(int32) * rb[t].n);
		if (with_ts)
			memcpy(bk->ts + bk->start[t], rd.raw_ts + rb[t].start, sizeof(int64) * rb[t].n);
		bk->start[t + 1] = bk->start[t] + rb[t].n;
		bk->user[t] = rb[t].user;
	}
	if (raw)
		pfree(raw);
	if (rd.raw_ts)
		pfree(rd.raw_ts);
	if (rb)
		pfree(rb);

	/* item -> baskets, ascending (counting sort) */
	bk->inv_start = palloc0(sizeof(int64) * (bk->n_items + 1));
	for (int64 q = 0; q < bk->start[nrb]; q++)
		bk->inv_start[bk->items[q] + 1]++;
	bk->item_baskets = palloc(sizeof(int64) * Max(bk->n_items, 1));
	for (int32 i = 0; i < bk->n_items; i++)
	{
		bk->item_baskets[i] = bk->inv_start[i + 1];
		bk->inv_start[i + 1] += bk->inv_start[i];
	}
	bk->inv = palloc_extended(sizeof(int32) * Max(bk->start[nrb], 1), MCXT_ALLOC_HUGE);
	{
		int64	   *fill = palloc(sizeof(int64) * Max(bk->n_items, 1));

		memcpy(fill, bk->inv_start, sizeof(int64) * Max(bk->n_items, 1));
		for (int64 t = 0; t < nrb; t++)
			for (int64 q = bk->start[t]; q < bk->start[t + 1]; q++)
				bk->inv[fill[bk->items[q]]++] = (int32) t;
		pfree(fill);
	}
	return true;
}
