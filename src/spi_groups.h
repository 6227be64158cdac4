/*
 * spi_groups.h — read (group key, member index) rows through an SPI cursor and
 * hand each group's members to a callback: users' bundles, baskets' items.
 */
#ifndef RECSYS_SPI_GROUPS_H
#define RECSYS_SPI_GROUPS_H

#include "postgres.h"

typedef void (*RecsysGroupFn) (int32 *members, int n, void *arg);

/*
 * query returns two columns, a bigint group key and an integer member in
 * 0..limit-1, ordered by the key. Call between SPI_connect and SPI_finish.
 * Returns the number of groups; *rows gets the number of rows read.
 */
extern int64 RecsysForEachGroup(const char *query, int32 limit, RecsysGroupFn fn, void *arg, int64 *rows);

#endif
