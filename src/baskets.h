/*
 * baskets.h — the prepared baskets as arrays, for the passes that count what is bought together (item pairs,
 * mining, the takers of mined bundles): each basket's distinct items (each customer's history when no basket
 * column is registered), the baskets customer by customer, and the inverted index item -> baskets. Memory is
 * linear in the events.
 */
#ifndef RECSYS_BASKETS_H
#define RECSYS_BASKETS_H

#include "postgres.h"

typedef struct Baskets
{
	int64		n;				/* kept baskets (2..max_basket distinct items), in customer order */
	int64	   *start;			/* basket t's items: items[start[t] .. start[t + 1]) */
	int32	   *items;			/* ascending within a basket */
	int64	   *ts;				/* per item of a basket: its latest time (PG_INT64_MIN: none), when asked */
	int32	   *user;			/* the smallest customer index among the basket's rows */
	int32		n_items;
	int64	   *inv_start;		/* item i's kept baskets: inv[inv_start[i] .. inv_start[i + 1]), ascending */
	int32	   *inv;
	int64	   *item_baskets;	/* per item: the kept baskets holding it */
	int64		groups;			/* every basket read, whatever its size */
	int64	   *item_groups;	/* per item: the baskets of any size holding it */
} Baskets;

/*
 * Reads the prepared baskets into mcxt, keeping those of 2..max_basket distinct items, with each item's latest
 * time when with_ts; baskets_only: a shop without a basket column has none (false returned). Call inside SPI
 * (its calls leave CurrentMemoryContext at SPI's own, freed by SPI_finish).
 */
extern bool BasketsLoad(Baskets *bk, int max_basket, bool with_ts, bool baskets_only, MemoryContext mcxt);

/* ERRORs unless a basket bound (max_basket) is at least 2, the smallest basket with a pair */
extern void BasketsCheckMax(int max_basket);

/* qsort comparator of int32 */
extern int	BasketsInt32Cmp(const void *x, const void *y);

#endif							/* RECSYS_BASKETS_H */
