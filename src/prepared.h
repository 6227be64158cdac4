/*
 * prepared.h — the one reader of recsys's prepared data (id map counts, histories and
 * bundle membership as compressed rows or groups, the catalogue fingerprint), with one
 * rule for indexes: item and bundle indexes are dense up to their space's mark (an id
 * missing there is corruption, an ERROR), and a row whose index lies outside the counts
 * read before it is skipped (a row appended by a concurrent recsys.prepare() since).
 */
#ifndef RECSYS_PREPARED_H
#define RECSYS_PREPARED_H

#include "postgres.h"

/* indexes travel as float32 tensors: exact below 2^24 */
#define RECSYS_BUNDLE_MAX_INDEX (1 << 24)
/* the dense fit holds a bundle x bundle matrix (576 MB at the bound); past it the fit is low-rank */
#define RECSYS_BUNDLE_MAX_DENSE 12000

/* compressed rows: members of row r are idx[ptr[r] .. ptr[r + 1]) */
typedef struct RecsysCsr
{
	int32		nrows;
	int32	   *ptr;
	int32	   *idx;
} RecsysCsr;

/*
 * Reads (row bigint, member integer) pairs, rows in 0..nrows-1 and members in
 * 0..limit-1, into a CSR in CurrentMemoryContext. Call between SPI_connect and
 * SPI_finish; the arrays are allocated in mcxt.
 */
extern void RecsysCsrLoad(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, MemoryContext mcxt);
/* the same, with nextra (at most 4) more columns (bigint or timestamptz; NULL -> PG_INT64_MIN), each kept
 * parallel to idx in extra[c]: one scan where several values per member are needed */
extern void RecsysCsrLoadWith(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, int nextra, int64 **extra,
							  MemoryContext mcxt);

/* the number of indexes of a space of recsys.id_map (user, item, bundle); ERRORs when bundles or items pass
 * the weights' index limit (2^24). Call between SPI_connect and SPI_finish. */
extern int32 RecsysSpaceCount(const char *space);
/* md5 of the ids of bundles 0..nb-1 and items 0..ni-1 (inside SPI) */
extern char *RecsysCatalogue(int32 nb, int32 ni);

typedef void (*RecsysGroupFn) (int32 *members, int n, void *arg);

/*
 * Reads (group key, member index) rows through an SPI cursor and hands each group's
 * members to fn (users' bundles; baskets go through src/baskets.c). query returns a bigint group key and
 * an integer member in 0..limit-1, ordered by the key; members outside are skipped, as
 * in the compressed rows. Call between SPI_connect and SPI_finish.
 * Returns the number of groups; *rows gets the number of rows read.
 */
extern int64 RecsysForEachGroup(const char *query, int32 limit, RecsysGroupFn fn, void *arg, int64 *rows);

/* what a fit and its samples read: the counts, three histories as compressed rows, the catalogue */
typedef struct RecsysPrepared
{
	int32		nb,
				ni,
				nu;
	RecsysCsr	bundle_items,
				user_bundles,
				user_items;
	char	   *catalogue;		/* RecsysCatalogue of the indexes fitted */
} RecsysPrepared;

/* reads it (inside SPI) into mcxt; errors when there are no bundles or more than the dense fit holds */
extern void RecsysPreparedLoad(RecsysPrepared *d, MemoryContext mcxt);

#endif
