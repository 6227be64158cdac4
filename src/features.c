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
 * Pair counts live in a dynahash keyed by (a, b); transactions larger than
 * max_basket count towards the item totals but not the pairs (their pairs
 * would be quadratic and say little).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

#include "prepared.h"

typedef struct PairEntry
{
	uint64		key;			/* a << 32 | b, a < b */
	int64		together;
} PairEntry;

typedef struct PairArgs
{
	int			max_basket;
	int64	   *item_count;
	HTAB	   *pairs;
} PairArgs;

/* one transaction's distinct items: count them and their pairs */
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
	if (m > a->max_basket)
		return;
	for (int i = 0; i < m; i++)
		for (int j = i + 1; j < m; j++)
		{
			uint64		key = ((uint64) (uint32) items[i] << 32) | (uint32) items[j];
			bool		found;
			PairEntry  *e = hash_search(a->pairs, &key, HASH_ENTER, &found);

			if (!found)
				e->together = 0;
			e->together++;
		}
}

PG_FUNCTION_INFO_V1(item_pairs);

Datum
item_pairs(PG_FUNCTION_ARGS)
{
	int32		min_count = PG_GETARG_INT32(0);
	int32		max_basket = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext outer = CurrentMemoryContext;
	HASHCTL		ctl;
	HTAB	   *pairs;
	int64	   *item_count;
	int64		transactions = 0;
	int			n_items;
	bool		by_basket;
	HASH_SEQ_STATUS seq;
	PairEntry  *e;

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
	/* counts outlive SPI_finish: allocate them in the caller's context */
	item_count = MemoryContextAllocZero(outer, sizeof(int64) * Max(n_items, 1));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(PairEntry);
	ctl.hcxt = outer;
	pairs = hash_create("recsys item pairs", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	{
		PairArgs	args = {max_basket, item_count, pairs};
		int64		rows;

		transactions = RecsysForEachGroup(by_basket
										  ? "SELECT basket_idx, item_idx FROM recsys.events_clean WHERE basket_idx IS NOT NULL ORDER BY 1, 2"
										  : "SELECT user_idx::bigint, item_idx FROM recsys.events_clean ORDER BY 1, 2",
										  n_items, CountTransaction, &args, &rows);
	}
	SPI_finish();

	/* both directions of every frequent pair */
	hash_seq_init(&seq, pairs);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		int32		ab[2] = {(int32) (e->key >> 32), (int32) (e->key & 0xffffffff)};

		if (e->together < min_count)
			continue;
		for (int d = 0; d < 2; d++)
		{
			int32		a = ab[d],
						b = ab[1 - d];
			double		support = (double) e->together / transactions;
			double		confidence = (double) e->together / item_count[a];
			double		lift = confidence / ((double) item_count[b] / transactions);
			Datum		values[6] = {Int32GetDatum(a), Int32GetDatum(b), Int64GetDatum(e->together),
				Float8GetDatum(support), Float8GetDatum(confidence), Float8GetDatum(lift)};
			bool		nulls[6] = {false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	hash_destroy(pairs);
	PG_RETURN_NULL();
}
