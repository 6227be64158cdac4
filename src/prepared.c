/*
 * prepared.c — the one reader of recsys's prepared data: compressed rows from SPI, the
 * id map's counts with the rule every reader relies on, the catalogue fingerprint, and
 * the data a fit reads.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"

#include "prepared.h"

/* ---------- CSR from SPI ---------- */

#define CSR_MAX_EXTRA 4

void
RecsysCsrLoad(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, MemoryContext mcxt)
{
	RecsysCsrLoadWith(query, nrows, limit, csr, 0, NULL, mcxt);
}

void
RecsysCsrLoadWith(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, int nextra, int64 **extra,
				  MemoryContext mcxt)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
	int64		n = 0,
				cap = 1024;
	int32	   *rows = palloc(sizeof(int32) * cap),
			   *members = palloc(sizeof(int32) * cap);
	int64	   *vals[CSR_MAX_EXTRA];
	int32	   *fill;

	Assert(nextra >= 0 && nextra <= CSR_MAX_EXTRA);
	for (int c = 0; c < nextra; c++)
		vals[c] = palloc(sizeof(int64) * cap);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		row = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			int32		member = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

			if (row < 0 || row >= nrows || member < 0 || member >= limit)
				continue;		/* appended after the counts were read: ignored, like new ids in serving */
			if (n == cap)
			{
				cap *= 2;
				rows = repalloc_huge(rows, sizeof(int32) * cap);
				members = repalloc_huge(members, sizeof(int32) * cap);
				for (int c = 0; c < nextra; c++)
					vals[c] = repalloc_huge(vals[c], sizeof(int64) * cap);
			}
			for (int c = 0; c < nextra; c++)
			{
				Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3 + c, &isnull);

				vals[c][n] = isnull ? PG_INT64_MIN : DatumGetInt64(d);
			}
			rows[n] = (int32) row;
			members[n++] = member;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (n >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows for one index: %lld", (long long) n)));
	csr->nrows = nrows;
	csr->ptr = MemoryContextAllocZero(mcxt, sizeof(int32) * ((Size) nrows + 1));
	csr->idx = MemoryContextAllocExtended(mcxt, sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);
	for (int64 j = 0; j < n; j++)
		csr->ptr[rows[j] + 1]++;
	for (int32 r = 0; r < nrows; r++)
		csr->ptr[r + 1] += csr->ptr[r];
	fill = palloc_extended(sizeof(int32) * ((Size) nrows + 1), MCXT_ALLOC_HUGE);
	memcpy(fill, csr->ptr, sizeof(int32) * ((Size) nrows + 1));
	for (int c = 0; c < nextra; c++)
		extra[c] = MemoryContextAllocExtended(mcxt, sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
	/* a stable scatter keeps the query's member order within a row */
	for (int64 j = 0; j < n; j++)
	{
		int32		at = fill[rows[j]]++;

		csr->idx[at] = members[j];
		for (int c = 0; c < nextra; c++)
			extra[c][at] = vals[c][j];
	}
	pfree(fill);
	pfree(rows);
	pfree(members);
	for (int c = 0; c < nextra; c++)
		pfree(vals[c]);
}

/* ---------- prepared data for a fit ---------- */


/*
 * A fingerprint of the catalogue a fit indexes: the md5 of the ids of bundles 0..nb-1
 * and items 0..ni-1 in index order. Weights carry it (fit.catalogue) and serving
 * compares it, so a model never serves after the id map it was trained on was rebuilt.
 */
char *
RecsysCatalogue(int32 nb, int32 ni)
{
	char		q[320];

	snprintf(q, sizeof(q), "SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(m.ext_id, E'\\n' ORDER BY m.space, m.idx), '')) "
			 "FROM recsys.id_map m WHERE (m.space = 'bundle' AND m.idx < %d) OR (m.space = 'item' AND m.idx < %d)", nb, ni);
	if (SPI_execute(q, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read recsys.id_map");
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * The number of indexes of a space (its largest + 1), with the one rule every reader of
 * prepared data relies on: item and bundle indexes are dense (0..n-1, each with an id),
 * and no index lies past the space's high-water mark (recsys.id_spaces, which only
 * recsys.map_append moves). User indexes may have holes: recsys.forget_user leaves them.
 * Anything else was written by hand, and is reported as corruption before it can reach
 * an array.
 */
int32
RecsysSpaceCount(const char *space)
{
	char		q[384];
	int64		n,
				count,
				mark;
	bool		nomark;
	HeapTuple	t;
	TupleDesc	d;

	/* recsys.id_spaces came with 0.2.0: a database still at 0.1.0 has no marks */
	bool		marks = OidIsValid(get_relname_relid("id_spaces", get_namespace_oid("recsys", false)));

	snprintf(q, sizeof(q), "SELECT coalesce(max(m.idx) + 1, 0)::bigint, count(*)::bigint, %s "
			 "FROM recsys.id_map m WHERE m.space = '%s'",
			 marks ? psprintf("(SELECT s.next_idx::bigint FROM recsys.id_spaces s WHERE s.space = '%s')", space) : "NULL::bigint",
			 space);
	if (SPI_execute(q, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count %s indexes", space);
	t = SPI_tuptable->vals[0];
	d = SPI_tuptable->tupdesc;
	n = DatumGetInt64(SPI_getbinval(t, d, 1, &(bool) {false}));
	count = DatumGetInt64(SPI_getbinval(t, d, 2, &(bool) {false}));
	mark = DatumGetInt64(SPI_getbinval(t, d, 3, &nomark));
	/* item and bundle indexes are never deleted: every one up to the mark has its id */
	if (strcmp(space, "user") != 0 && !nomark && count == n && n < mark)
		count = -1;
	/* no mark yet: ids from before marks existed (a restored dump); recsys.map_append sets one */
	if (!nomark && n > mark)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("recsys.id_map holds %s index %lld, past the last one recsys.prepare() appended (%lld)",
						space, (long long) n - 1, (long long) mark - 1),
				 errhint("The id map is append-only and written by recsys.prepare() alone; restore recsys.id_map from a backup.")));
	if (strcmp(space, "user") != 0 && count != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("recsys.id_map lacks %s ids: indexes 0 to %lld were handed out, %lld ids remain",
						space, (long long) (nomark ? n : mark) - 1, (long long) (count < 0 ? n : count)),
				 errhint("Item and bundle indexes are dense and never deleted; restore recsys.id_map from a backup.")));
	/* bundle and item indexes travel in weights as float32; user indexes never do */
	if (strcmp(space, "user") != 0 && n >= RECSYS_BUNDLE_MAX_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the bundle model indexes at most %d %ss, got %lld", RECSYS_BUNDLE_MAX_INDEX, space,
						(long long) n)));
	return (int32) n;
}

void
RecsysPreparedLoad(RecsysPrepared *d, MemoryContext mcxt)
{
	d->nb = RecsysSpaceCount("bundle");
	d->ni = RecsysSpaceCount("item");
	d->nu = RecsysSpaceCount("user");
	if (d->nb == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys has no prepared bundles"),
				 errhint("Register bundles and bundle events, then run SELECT * FROM recsys.prepare().")));
	RecsysCsrLoad("SELECT bundle_idx::bigint, item_idx FROM recsys.bundle_items ORDER BY 1, 2",
				  d->nb, d->ni, &d->bundle_items, mcxt);
	/* bundle ids outlive their bundles (ids are never deleted): none left with items is none prepared */
	if (d->bundle_items.ptr[d->nb] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys has no prepared bundles"),
				 errdetail("%d bundle ids are known, but no prepared bundle holds an item.", d->nb),
				 errhint("Register bundles whose items are in the catalogue, or events with baskets to mine bundles from, then run SELECT * FROM recsys.prepare().")));
	RecsysCsrLoad("SELECT user_idx::bigint, bundle_idx FROM recsys.user_bundles ORDER BY 1, 2",
				  d->nu, d->nb, &d->user_bundles, mcxt);
	RecsysCsrLoad("SELECT user_idx::bigint, item_idx FROM recsys.user_items ORDER BY 1, 2",
				  d->nu, d->ni, &d->user_items, mcxt);
	d->catalogue = MemoryContextStrdup(mcxt, RecsysCatalogue(d->nb, d->ni));
}

/* ---------- groups from SPI (users' bundles, baskets' items) ---------- */

int64
RecsysForEachGroup(const char *query, int32 limit, RecsysGroupFn fn, void *arg, int64 *rows)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
	int32	   *buf = NULL;
	int			nbuf = 0,
				cap = 0;
	int64		cur = 0,
				groups = 0;

	*rows = 0;
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		key = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			int32		member = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

			if (key != cur && nbuf > 0)
			{
				fn(buf, nbuf, arg);
				groups++;
				nbuf = 0;
			}
			cur = key;
			if (member < 0 || member >= limit)
				continue;		/* the rule of prepared.h: appended since the counts were read */
			if (nbuf == cap)
			{
				cap = cap ? cap * 2 : 64;
				buf = buf ? repalloc(buf, sizeof(int32) * cap) : palloc(sizeof(int32) * cap);
			}
			buf[nbuf++] = member;
			(*rows)++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	if (nbuf > 0)
	{
		fn(buf, nbuf, arg);
		groups++;
	}
	SPI_cursor_close(portal);
	return groups;
}
