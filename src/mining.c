/*
 * mining.c — frequent item sets of the prepared baskets, for recsys.mine_bundles:
 * recsys.mine_itemsets(min_customers, max_size, max_basket); and who took each of a list
 * of sets, for recsys.adopt_mined_bundles: recsys.basket_takers(ks, starts, items).
 *
 * The baskets come from src/baskets.c: arrays in the order of their customer, and the
 * inverted index item -> baskets. A depth-first search grows each set by larger items:
 * the baskets holding a set are those of its prefix that hold the new item, and the
 * candidates' basket and distinct-customer counts are kept in dense arrays (a basket's
 * customer is the smallest customer index among its rows; baskets come customer by
 * customer, so a customer counts once). A set is kept, and grown, when at least
 * min_customers customers hold it (the privacy floor and Apriori's rule). Memory is
 * linear in the events; the SQL Apriori it replaced joined every basket to every
 * frequent set through a GIN index.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "baskets.h"
#include "prepared.h"

typedef struct Miner
{
	Baskets    *b;
	int			min_customers;
	int			max_size;
	int32	   *set;			/* the set being grown */
	int32	   *count;			/* per candidate item: baskets, customers, the last customer seen */
	int32	   *customers;
	int32	   *last_user;
	int32	   *touched;
	int32	   *slot[5];		/* per depth: a kept item's position among the kept, else -1 */
	ReturnSetInfo *rsinfo;
	int64		found;
} Miner;

typedef struct Kept
{
	int32		item;
	int32		baskets;
	int32		customers;
} Kept;



static void
Emit(Miner *m, int size, int32 baskets, int32 customers)
{
	const Baskets *bk = m->b;
	Datum	   *elems = palloc(sizeof(Datum) * size);
	double		support = (double) baskets / bk->n;
	double		expected = 1;
	Datum		values[5];
	bool		nulls[5] = {false};

	for (int j = 0; j < size; j++)
	{
		elems[j] = Int32GetDatum(m->set[j]);
		expected *= (double) bk->item_baskets[m->set[j]] / bk->n;
	}
	values[0] = PointerGetDatum(construct_array(elems, size, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[1] = Int64GetDatum(baskets);
	values[2] = Int64GetDatum(customers);
	values[3] = Float8GetDatum(support);
	values[4] = Float8GetDatum(support / expected);
	tuplestore_putvalues(m->rsinfo->setResult, m->rsinfo->setDesc, values, nulls);
	pfree(DatumGetPointer(values[0]));	/* copied by the tuplestore */
	pfree(elems);
	m->found++;
}

/* grows m->set[0 .. size) (held by the baskets tx[0 .. ntx)) by each larger item enough customers share */
static void
Grow(Miner *m, int size, const int32 *tx, int64 ntx)
{
	const Baskets *bk = m->b;
	int32		top = m->set[size - 1];
	int			nt = 0;
	Kept	   *kept;
	int			nkept = 0;

	for (int64 p = 0; p < ntx; p++)
	{
		int64		t = tx[p];
		int32		u = bk->user[t];

		/* the basket's items ascend: those after the set's last are at its end */
		for (int64 q = bk->start[t + 1] - 1; q >= bk->start[t] && bk->items[q] > top; q--)
		{
			int32		c = bk->items[q];

			if (m->count[c]++ == 0)
			{
				m->touched[nt++] = c;
				m->customers[c] = 0;
				m->last_user[c] = -1;
			}
			if (m->last_user[c] != u)
			{
				m->customers[c]++;
				m->last_user[c] = u;
			}
		}
	}
	/* the counts are shared by every depth: read them out and clear them before growing further */
	kept = palloc(sizeof(Kept) * Max(nt, 1));
	for (int j = 0; j < nt; j++)
	{
		int32		c = m->touched[j];

		if (m->customers[c] >= m->min_customers)
		{
			kept[nkept].item = c;
			kept[nkept].baskets = m->count[c];
			kept[nkept].customers = m->customers[c];
			nkept++;
		}
		m->count[c] = 0;
	}
	qsort(kept, nkept, sizeof(Kept), BasketsInt32Cmp);	/* by item: the first member */
	for (int j = 0; j < nkept; j++)
	{
		m->set[size] = kept[j].item;
		Emit(m, size + 1, kept[j].baskets, kept[j].customers);
	}
	if (size + 1 < m->max_size && nkept > 0)
	{
		/*
		 * the baskets of each grown set, in one more pass over these baskets (testing each basket for each
		 * kept item would cost kept x baskets: hours for a staple in a million baskets)
		 */
		int32	   *slot = m->slot[size];
		int64	   *at = palloc(sizeof(int64) * (nkept + 1));
		int32	   *subs;

		at[0] = 0;
		for (int j = 0; j < nkept; j++)
		{
			slot[kept[j].item] = j;
			at[j + 1] = at[j] + kept[j].baskets;
		}
		subs = palloc_extended(sizeof(int32) * Max(at[nkept], 1), MCXT_ALLOC_HUGE);
		{
			int64	   *fill = palloc(sizeof(int64) * nkept);

			memcpy(fill, at, sizeof(int64) * nkept);
			for (int64 p = 0; p < ntx; p++)
			{
				int64		t = tx[p];

				for (int64 q = bk->start[t + 1] - 1; q >= bk->start[t] && bk->items[q] > top; q--)
				{
					int32		j = slot[bk->items[q]];

					if (j >= 0)
						subs[fill[j]++] = (int32) t;
				}
			}
			pfree(fill);
		}
		for (int j = 0; j < nkept; j++)
			slot[kept[j].item] = -1;
		for (int j = 0; j < nkept; j++)
		{
			m->set[size] = kept[j].item;
			Grow(m, size + 1, subs + at[j], at[j + 1] - at[j]);
			CHECK_FOR_INTERRUPTS();
		}
		pfree(subs);
		pfree(at);
	}
	pfree(kept);
}

/* ---------- recsys.mine_itemsets(min_customers, max_size, max_basket) ---------- */

PG_FUNCTION_INFO_V1(mine_itemsets);

Datum
mine_itemsets(PG_FUNCTION_ARGS)
{
	int32		min_customers = PG_GETARG_INT32(0);
	int32		max_size = PG_GETARG_INT32(1);
	int32		max_basket = PG_GETARG_INT32(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext outer = CurrentMemoryContext;
	Baskets		bk;
	Miner		m;

	if (min_customers < 2 || max_size < 2 || max_size > 5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_customers must be at least 2 and max_size from 2 to 5")));
	BasketsCheckMax(max_basket);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	/* the baskets outlive SPI_finish: read them into the caller's context */
	if (!BasketsLoad(&bk, max_basket, false, false, outer))
		elog(ERROR, "no baskets were read");
	SPI_finish();

	memset(&m, 0, sizeof(m));
	m.b = &bk;
	m.min_customers = min_customers;
	m.max_size = max_size;
	m.rsinfo = rsinfo;
	m.set = palloc(sizeof(int32) * max_size);
	m.count = palloc0(sizeof(int32) * Max(bk.n_items, 1));
	m.customers = palloc0(sizeof(int32) * Max(bk.n_items, 1));
	m.last_user = palloc(sizeof(int32) * Max(bk.n_items, 1));
	m.touched = palloc(sizeof(int32) * Max(bk.n_items, 1));
	for (int d = 0; d < max_size; d++)
	{
		m.slot[d] = palloc(sizeof(int32) * Max(bk.n_items, 1));
		memset(m.slot[d], 0xff, sizeof(int32) * Max(bk.n_items, 1));	/* -1 */
	}
	for (int32 a = 0; a < bk.n_items; a++)
	{
		int64		n = bk.inv_start[a + 1] - bk.inv_start[a];

		/* an item fewer baskets hold than the floor grows no set */
		if (n < min_customers)
			continue;
		m.set[0] = a;
		Grow(&m, 1, bk.inv + bk.inv_start[a], n);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_NULL();
}

/* ---------- recsys.basket_takers(ks, starts, items) ---------- */

/*
 * Who took each of a list of item sets (set j: k = ks[j], items[starts[j] .. starts[j + 1]), 0-based): the
 * customers with a basket holding all its items, how many such baskets and the latest time of those items in them.
 * The baskets of a set are the intersection of its items' inverted lists, the rarest first; the baskets come
 * customer by customer, so each customer's are consecutive. A shop without baskets has no takers.
 */
PG_FUNCTION_INFO_V1(basket_takers);

Datum
basket_takers(PG_FUNCTION_ARGS)
{
	ArrayType  *ks_a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *starts_a = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *items_a = PG_GETARG_ARRAYTYPE_P(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext outer = CurrentMemoryContext;
	int			nsets = ArrayGetNItems(ARR_NDIM(ks_a), ARR_DIMS(ks_a));
	int			nstarts = ArrayGetNItems(ARR_NDIM(starts_a), ARR_DIMS(starts_a));
	int			nitems = ArrayGetNItems(ARR_NDIM(items_a), ARR_DIMS(items_a));
	int32	   *ks,
			   *starts,
			   *items;
	Baskets		bk;
	bool		have;
	int32	   *cur,
			   *next;
	int64		cap;

	if (ARR_HASNULL(ks_a) || ARR_HASNULL(starts_a) || ARR_HASNULL(items_a) || ARR_ELEMTYPE(ks_a) != INT4OID ||
		ARR_ELEMTYPE(starts_a) != INT4OID || ARR_ELEMTYPE(items_a) != INT4OID || nstarts != nsets + 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("basket_takers takes n set numbers, n + 1 starts and the sets' items, without NULLs")));
	ks = (int32 *) ARR_DATA_PTR(ks_a);
	starts = (int32 *) ARR_DATA_PTR(starts_a);
	items = (int32 *) ARR_DATA_PTR(items_a);
	for (int j = 0; j < nsets; j++)
		if (starts[j] < 0 || starts[j] > starts[j + 1] || starts[j + 1] > nitems)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("set %d's starts are out of order or past the items", j + 1)));
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	have = BasketsLoad(&bk, PG_INT32_MAX, true, true, outer);
	SPI_finish();
	if (!have)
		PG_RETURN_NULL();
	cap = 1024;
	cur = palloc(sizeof(int32) * cap);
	next = palloc(sizeof(int32) * cap);
	for (int j = 0; j < nsets; j++)
	{
		int32		n = starts[j + 1] - starts[j];
		const int32 *set = items + starts[j];
		int32		rare = -1;
		int64		ncur = 0;

		for (int q = 0; q < n; q++)
			if (set[q] < 0 || set[q] >= bk.n_items)
			{
				rare = -2;		/* an item no basket can hold */
				break;
			}
			else if (rare < 0 || bk.item_baskets[set[q]] < bk.item_baskets[rare])
				rare = set[q];
		if (rare < 0)
			continue;
		/* the rarest item's baskets, kept when they hold every other item */
		if (bk.item_baskets[rare] > cap)
		{
			cap = bk.item_baskets[rare];
			cur = repalloc_huge(cur, sizeof(int32) * cap);
			next = repalloc_huge(next, sizeof(int32) * cap);
		}
		memcpy(cur, bk.inv + bk.inv_start[rare], sizeof(int32) * bk.item_baskets[rare]);
		ncur = bk.item_baskets[rare];
		for (int q = 0; q < n && ncur > 0; q++)
		{
			int64		nnext = 0,
						a = bk.inv_start[set[q]],
						end = bk.inv_start[set[q] + 1];

			if (set[q] == rare)
				continue;
			/* both ascending: a merge, galloping through the longer list */
			for (int64 p = 0; p < ncur && a < end; p++)
			{
				int32		t = cur[p];
				int64		step = 1;

				while (a + step < end && bk.inv[a + step] < t)
					step *= 2;
				{
					int64		lo = a,
								hi = Min(a + step, end - 1);

					while (lo < hi)
					{
						int64		mid = lo + (hi - lo) / 2;

						if (bk.inv[mid] < t)
							lo = mid + 1;
						else
							hi = mid;
					}
					a = lo;
				}
				if (a < end && bk.inv[a] == t)
					next[nnext++] = t;
			}
			{
				int32	   *tmp = cur;

				cur = next;
				next = tmp;
			}
			ncur = nnext;
		}
		/* per customer: the baskets and the latest time of the set's items in them */
		for (int64 p = 0; p < ncur;)
		{
			int32		u = bk.user[cur[p]];
			int64		nb = 0,
						last = PG_INT64_MIN;
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			for (; p < ncur && bk.user[cur[p]] == u; p++)
			{
				int64		t = cur[p];

				nb++;
				for (int64 x = bk.start[t]; x < bk.start[t + 1]; x++)
					for (int q = 0; q < n; q++)
						if (bk.items[x] == set[q] && bk.ts[x] > last)
							last = bk.ts[x];
			}
			values[0] = Int32GetDatum(ks[j]);
			values[1] = Int32GetDatum(u);
			values[2] = Int64GetDatum(nb);
			if (last == PG_INT64_MIN)
				nulls[3] = true;
			else
				values[3] = TimestampTzGetDatum(last);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_NULL();
}
