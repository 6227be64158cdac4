/*
 * fit_bench.c — the bundle fit at catalogue scale, on the core alone: the low-rank fit
 * (core/rs_lowrank.c) over a generated shop, its time per stage and the memory it holds.
 *
 *   fit_bench CUSTOMERS ITEMS BUNDLES [RANK]     (bench/fit_bench.sh builds and runs it)
 *
 * The shop: bundles of 2 to 5 items from one of 200 categories; each customer has a home
 * category, takes 1 to 5 bundles (most from home, some popular ones) and buys about 20
 * items (most from home). 1 thread, as in a backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rs_core.h"
#include "core/rs_lowrank.h"
#include "core_host.h"

extern void openblas_set_num_threads(int);

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
cmp_int32(const void *a, const void *b)
{
	int32_t		x = *(const int32_t *) a,
				y = *(const int32_t *) b;

	return (x > y) - (x < y);
}

/* sorts each row and drops repeats, in place; returns the new nnz */
static int64_t
dedupe_rows(int32_t n, int32_t *ptr, int32_t *idx)
{
	int64_t		out = 0;
	int32_t		start = 0;

	for (int32_t r = 0; r < n; r++)
	{
		int32_t		end = ptr[r + 1];

		qsort(idx + start, end - start, sizeof(int32_t), cmp_int32);
		ptr[r] = (int32_t) out;
		for (int32_t p = start; p < end; p++)
			if (p == start || idx[p] != idx[p - 1])
				idx[out++] = idx[p];
		start = end;
	}
	ptr[n] = (int32_t) out;
	return out;
}

int
main(int argc, char **argv)
{
	int32_t		nu,
				ni,
				nb,
				ncat = 200;
	int			rank = argc > 4 ? atoi(argv[4]) : 256,
				keep_b = 256,
				keep_m = 64;
	RsRng		rng;
	int32_t    *bi_ptr,
			   *bi_idx,
			   *ub_ptr,
			   *ub_idx,
			   *ui_ptr,
			   *ui_idx;
	RsItemView	v;
	RsFitRows	rows;
	int32_t    *bidx,
			   *midx;
	float	   *bval,
			   *mval,
			   *count;
	int64_t		pairs,
				heldout;
	double		t0,
				t1;

	if (argc < 4)
	{
		fprintf(stderr, "usage: fit_bench CUSTOMERS ITEMS BUNDLES [RANK]\n");
		return 2;
	}
	nu = atoi(argv[1]);
	ni = atoi(argv[2]);
	nb = atoi(argv[3]);
	/* categories: at most 200, and every one holds items and bundles */
	if (ncat > nb)
		ncat = nb;
	if (ncat > ni)
		ncat = ni;
	if (nu < 1 || ncat < 1)
	{
		fprintf(stderr, "fit_bench: CUSTOMERS, ITEMS and BUNDLES must be positive\n");
		return 2;
	}
	rs_core_use_postgres();
	openblas_set_num_threads(1);
	rs_rng_seed(&rng, 42);

	/* bundles: 2 to 5 items of one category (items are laid out by category) */
	bi_ptr = malloc(sizeof(int32_t) * (nb + 1));
	bi_idx = malloc(sizeof(int32_t) * nb * 5);
	bi_ptr[0] = 0;
	for (int32_t b = 0; b < nb; b++)
	{
		int32_t		cat = b % ncat,
					per = ni / ncat,
					size = 2 + rs_rng_below(&rng, 4);

		bi_ptr[b + 1] = bi_ptr[b] + size;
		for (int k = 0; k < size; k++)
			bi_idx[bi_ptr[b] + k] = cat * per + rs_rng_below(&rng, per);
	}
	dedupe_rows(nb, bi_ptr, bi_idx);
	/* customers */
	ub_ptr = malloc(sizeof(int32_t) * (nu + 1));
	ub_idx = malloc(sizeof(int32_t) * (size_t) nu * 5);
	ui_ptr = malloc(sizeof(int32_t) * (nu + 1));
	ui_idx = malloc(sizeof(int32_t) * (size_t) nu * 30);
	ub_ptr[0] = ui_ptr[0] = 0;
	for (int32_t u = 0; u < nu; u++)
	{
		int32_t		home = rs_rng_below(&rng, ncat),
					per = ni / ncat,
					nbu = 1 + rs_rng_below(&rng, 5),
					niu = 10 + rs_rng_below(&rng, 21);

		ub_ptr[u + 1] = ub_ptr[u] + nbu;
		for (int k = 0; k < nbu; k++)
			ub_idx[ub_ptr[u] + k] = rs_rng_below(&rng, 4) == 0 ? rs_rng_below(&rng, nb < 100 ? nb : 100)
				: home + ncat * rs_rng_below(&rng, (nb - home + ncat - 1) / ncat);
		ui_ptr[u + 1] = ui_ptr[u] + niu;
		for (int k = 0; k < niu; k++)
			ui_idx[ui_ptr[u] + k] = rs_rng_below(&rng, 5) == 0 ? rs_rng_below(&rng, ni) : home * per + rs_rng_below(&rng, per);
	}
	dedupe_rows(nu, ub_ptr, ub_idx);
	dedupe_rows(nu, ui_ptr, ui_idx);
	printf("shop: %d customers, %d items, %d bundles; %d bundle events, %d item events; rank %d\n",
		   nu, ni, nb, ub_ptr[nu], ui_ptr[nu], rank);

	t0 = now();
	rs_item_view_build(nb, ni, (RsRows) {bi_ptr, bi_idx}, &v);
	rows = (RsFitRows) {.nu = nu,.nb = nb,.ni = ni,.user_bundles = {ub_ptr, ub_idx},.user_items = {ui_ptr, ui_idx},
	.v = &v,.beta = 3.2,.view_norm = 0.75,.content = 3,.holdout = 1,.seed = 42};
	bidx = malloc(sizeof(int32_t) * (size_t) nb * keep_b);
	bval = malloc(sizeof(float) * (size_t) nb * keep_b);
	midx = malloc(sizeof(int32_t) * (size_t) ni * keep_m);
	mval = malloc(sizeof(float) * (size_t) ni * keep_m);
	count = malloc(sizeof(float) * nb);
	t1 = now();
	if (rs_fit_lowrank(&rows, rank, 3, 42, 500, keep_b, keep_m, bidx, bval, midx, mval, count, &pairs, &heldout) != 0)
	{
		fprintf(stderr, "fit failed\n");
		return 1;
	}
	printf("low-rank fit: %.1f s (item view %.2f s); %lld pairs, %lld customers with one held out\n",
		   now() - t1, t1 - t0, (long long) pairs, (long long) heldout);
	return 0;
}
