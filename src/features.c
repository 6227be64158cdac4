/*
 * features.c — item co-occurrence with association-rule statistics:
 * recsys.item_pairs(min_count, max_basket).
 *
 * Transactions are the prepared baskets (events_clean.basket_idx); a shop that
 * registered no basket column gets each customer's history as one transaction.
 * Every item counts once per transaction. For each ordered pair a -> b seen
 * together in at least min_count transactions:
 *   support    = together / transactions
 *   confidence = together / transactions holding a
 *   lift       = confidence / (transactions holding b / transactions)
 * The transactions are kept as arrays and inverted (item -> transactions), and
 * each item's partners are counted in a dense array: memory linear in the events.
 * Transactions larger than max_basket count towards the item totals but not the
 * pairs (their pairs would be quadratic and say little).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"

#include "prepared.h"

/*
 * The transactions' items, kept to count the pairs after the scan: memory linear in the event
 * rows, where a hash of every pair seen (most seen once) grew past 5 GB on 20 M order lines
 */
typedef struct PairArgs
{
	int			max_basket;
	int64	   *item_count;
	int32	   *items;			/* each kept transaction's distinct items, ascending, end to end */
	int64		nitems,
				cap_items;
	int64	   *start;			/* transaction t's items: items[start[t] .. start[t + 1]) */
	int64		ntx,
				cap_tx;
} PairArgs;

/* one transaction's distinct items: count them, and keep them for the pairs */
static void
CountTransaction(int32 *items, int n, void *arg)
{
	PairArgs   *a = arg;
	int			m = 0;

	/* items arrive sorted by the query; drop repeats */
	for (int i = 0; i < n; i++)
		if (m == 0 || items[m - 1] != items[i])
			items[m++] = items[i];
	for (int i = 0; i < m; i++)
		a->item_count[items[i]]++;
	if (m > a->max_basket || m < 2)
		return;
	if (a->nitems + m > a->cap_items)
	{
		a->cap_items = Max(a->cap_items * 2, a->nitems + m);
		a->items = repalloc_huge(a->items, sizeof(int32) * a->cap_items);
	}
	if (a->ntx + 2 > a->cap_tx)
	{
		a->cap_tx *= 2;
		a->start = repalloc_huge(a->start, sizeof(int64) * a->cap_tx);
	}
	memcpy(a->items + a->nitems, items, sizeof(int32) * m);
	a->nitems += m;
	a->start[++a->ntx] = a->nitems;
}

static int
Int32Cmp(const void *x, const void *y)
{
	int32		a = *(const int32 *) x,
				b = *(const int32 *) y;

	return (a > b) - (a < b);
}

PG_FUNCTION_INFO_V1(item_pairs);

Datum
item_pairs(PG_FUNCTION_ARGS)
{
	int32		min_count = PG_GETARG_INT32(0);
	int32		max_basket = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext outer = CurrentMemoryContext;
	int64	   *item_count;
	int64		transactions = 0;
	int			n_items;
	bool		by_basket;
	PairArgs	args;
	int64	   *inv_start;
	int64	   *fill;
	int32	   *inv;
	int32	   *together;
	int32	   *touched;

	if (min_count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_count must be at least 1, got %d", min_count)));
	if (max_basket < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_basket must be at least 2, got %d", max_basket)));
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	if (SPI_execute("SELECT coalesce(max(idx) + 1, 0)::int, "
					"EXISTS (SELECT 1 FROM recsys.events_clean WHERE basket_idx IS NOT NULL) "
					"FROM recsys.id_map WHERE space = 'item'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the item map");
	{
		bool		isnull;

		n_items = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		by_basket = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	/* everything outlives SPI_finish: allocate in the caller's context */
	item_count = MemoryContextAllocZero(outer, sizeof(int64) * Max(n_items, 1));
	memset(&args, 0, sizeof(args));
	args.max_basket = max_basket;
	args.item_count = item_count;
	args.cap_items = 1024;
	args.items = MemoryContextAllocHuge(outer, sizeof(int32) * args.cap_items);
	args.cap_tx = 1024;
	args.start = MemoryContextAllocHuge(outer, sizeof(int64) * args.cap_tx);
	args.start[0] = 0;
	{
		int64		rows;

		transactions = RecsysForEachGroup(by_basket
										  ? "SELECT basket_idx, item_idx FROM recsys.events_clean WHERE basket_idx IS NOT NULL ORDER BY 1, 2"
										  : "SELECT user_idx::bigint, item_idx FROM recsys.events_clean ORDER BY 1, 2",
										  n_items, CountTransaction, &args, &rows);
	}
	SPI_finish();

	/* the transactions of each item (counting sort), ascending */
	inv_start = MemoryContextAllocZero(outer, sizeof(int64) * (n_items + 1));
	for (int64 q = 0; q < args.nitems; q++)
		inv_start[args.items[q] + 1]++;
	for (int i = 0; i < n_items; i++)
		inv_start[i + 1] += inv_start[i];
	fill = palloc(sizeof(int64) * Max(n_items, 1));
	memcpy(fill, inv_start, sizeof(int64) * Max(n_items, 1));
	inv = MemoryContextAllocHuge(outer, sizeof(int32) * Max(args.nitems, 1));
	for (int64 t = 0; t < args.ntx; t++)
		for (int64 q = args.start[t]; q < args.start[t + 1]; q++)
			inv[fill[args.items[q]]++] = (int32) t;
	pfree(fill);

	/*
	 * per item a, the items after it in its transactions, counted in a dense array: both directions of
	 * every pair seen together min_count times, in (a, b) order
	 */
	together = palloc0(sizeof(int32) * Max(n_items, 1));
	touched = palloc(sizeof(int32) * Max(n_items, 1));
	for (int32 a = 0; a < n_items; a++)
	{
		int			nt = 0;

		for (int64 p = inv_start[a]; p < inv_start[a + 1]; p++)
		{
			int64		t = inv[p];

			/* the transaction's items ascend: those after a are at its end */
			for (int64 q = args.start[t + 1] - 1; q >= args.start[t] && args.items[q] > a; q--)
			{
				int32		b = args.items[q];

				if (together[b]++ == 0)
					touched[nt++] = b;
			}
		}
		qsort(touched, nt, sizeof(int32), Int32Cmp);
		for (int j = 0; j < nt; j++)
		{
			int32		b = touched[j];
			int64		n = together[b];

			together[b] = 0;
			if (n < min_count)
				continue;
			for (int d = 0; d < 2; d++)
			{
				int32		x = d ? b : a,
							y = d ? a : b;
				double		support = (double) n / transactions;
				double		confidence = (double) n / item_count[x];
				double		lift = confidence / ((double) item_count[y] / transactions);
				Datum		values[6] = {Int32GetDatum(x), Int32GetDatum(y), Int64GetDatum(n),
					Float8GetDatum(support), Float8GetDatum(confidence), Float8GetDatum(lift)};
				bool		nulls[6] = {false};

				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_NULL();
}
