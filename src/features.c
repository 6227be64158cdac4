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
 * The transactions are read as arrays and inverted (item -> transactions, src/baskets.c),
 * and each item's partners are counted in a dense array: memory linear in the events.
 * Transactions larger than max_basket count towards the item totals but not the
 * pairs (their pairs would be quadratic and say little).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"

#include "baskets.h"

PG_FUNCTION_INFO_V1(item_pairs);

Datum
item_pairs(PG_FUNCTION_ARGS)
{
	int32		min_count = PG_GETARG_INT32(0);
	int32		max_basket = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext outer = CurrentMemoryContext;
	int64	   *item_count;
	int64		transactions;
	int			n_items;
	Baskets		bk;
	int32	   *together;
	int32	   *touched;

	if (min_count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_count must be at least 1, got %d", min_count)));
	BasketsCheckMax(max_basket);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	/* every transaction counts towards the totals; those of 2..max_basket items are kept for the pairs */
	BasketsLoad(&bk, max_basket, false, false, outer);
	SPI_finish();
	n_items = bk.n_items;
	item_count = bk.item_groups;
	transactions = bk.groups;

	/*
	 * per item a, the items after it in its transactions, counted in a dense array: both directions of
	 * every pair seen together min_count times, in (a, b) order
	 */
	together = palloc0(sizeof(int32) * Max(n_items, 1));
	touched = palloc(sizeof(int32) * Max(n_items, 1));
	for (int32 a = 0; a < n_items; a++)
	{
		int			nt = 0;

		for (int64 p = bk.inv_start[a]; p < bk.inv_start[a + 1]; p++)
		{
			int64		t = bk.inv[p];

			/* the transaction's items ascend: those after a are at its end */
			for (int64 q = bk.start[t + 1] - 1; q >= bk.start[t] && bk.items[q] > a; q--)
			{
				int32		b = bk.items[q];

				if (together[b]++ == 0)
					touched[nt++] = b;
			}
		}
		qsort(touched, nt, sizeof(int32), BasketsInt32Cmp);
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
