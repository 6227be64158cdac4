/*
 * spi_groups.c — grouped reads of prepared data for the feature and model builders.
 * Rows come in batches from a cursor, so memory stays bounded whatever the table size.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"

#include "spi_groups.h"

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
				elog(ERROR, "index %d outside 0..%d", member, limit - 1);
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
