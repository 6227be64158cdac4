/*
 * bundle_model.c — the bundle ranker: recsys.bundle_fit (sparse EASE over
 * item-view-augmented user rows), recsys.bundle_samples (held-out pairs and their
 * candidates, the scorer's training data), recsys.bundle_attach (one weights value
 * holding the fit, the learned scorer and the GRU), and the loader serving uses.
 */
#include "postgres.h"

#include <math.h>

#include <cblas.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "bundle_model.h"
#include "core/rs_ease.h"
#include "model_io.h"

/* indexes travel as float32 tensors: exact below 2^24 */
#define RECSYS_BUNDLE_MAX_INDEX (1 << 24)
#define RECSYS_BUNDLE_MAX_BUNDLES 12000
#define GRAM_BLOCK 256

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

/* ---------- the held-out split ---------- */

int
RecsysHoldoutPick(uint64 seed, int32 user, const int32 *bundles, int n)
{
	int			best = -1;
	uint64		best_h = 0;

	if (n < 2)
		return -1;
	for (int j = 0; j < n; j++)
	{
		uint64		h = hash_uint32_extended((uint32) bundles[j],
											 hash_combine64(seed, hash_uint32_extended((uint32) user, seed)));

		if (best < 0 || h < best_h)
		{
			best = j;
			best_h = h;
		}
	}
	return best;
}

bool
RecsysHoldoutValid(uint64 seed, int32 user)
{
	return hash_uint32_extended((uint32) user, seed + 1) % 5 == 0;
}

/* ---------- prepared data for a fit ---------- */

typedef struct FitData
{
	int32		nb,
				ni,
				nu;
	RecsysCsr	bundle_items,
				user_bundles,
				user_items;
	char	   *catalogue;		/* RecsysCatalogue of the indexes fitted */
} FitData;

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

static void
FitDataLoad(FitData *d, MemoryContext mcxt)
{
	d->nb = RecsysSpaceCount("bundle");
	d->ni = RecsysSpaceCount("item");
	d->nu = RecsysSpaceCount("user");
	if (d->nb == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys has no prepared bundles"),
				 errhint("Register bundles and bundle events, then run SELECT * FROM recsys.prepare().")));
	if (d->nb > RECSYS_BUNDLE_MAX_BUNDLES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the bundle model is dense in the bundles while fitting: %d bundles exceed its limit of %d",
						d->nb, RECSYS_BUNDLE_MAX_BUNDLES)));
	RecsysCsrLoad("SELECT bundle_idx::bigint, item_idx FROM recsys.bundle_items ORDER BY 1, 2",
				  d->nb, d->ni, &d->bundle_items, mcxt);
	RecsysCsrLoad("SELECT user_idx::bigint, bundle_idx FROM recsys.user_bundles ORDER BY 1, 2",
				  d->nu, d->nb, &d->user_bundles, mcxt);
	RecsysCsrLoad("SELECT user_idx::bigint, item_idx FROM recsys.user_items ORDER BY 1, 2",
				  d->nu, d->ni, &d->user_items, mcxt);
	d->catalogue = MemoryContextStrdup(mcxt, RecsysCatalogue(d->nb, d->ni));
}

/* item -> bundles index with weights 1/sqrt|b|, idf and mass per item */
typedef struct ItemView
{
	int32	   *ib_ptr,
			   *ib_idx;
	float	   *ib_w,
			   *idf,
			   *mass;
} ItemView;

static void
ItemViewBuild(const FitData *d, ItemView *v)
{
	const RecsysCsr *bi = &d->bundle_items;
	int32		nnz = bi->ptr[d->nb];
	int32	   *fill;

	v->ib_ptr = palloc0(sizeof(int32) * ((Size) d->ni + 1));
	v->ib_idx = palloc(sizeof(int32) * Max(nnz, 1));
	v->ib_w = palloc(sizeof(float) * Max(nnz, 1));
	v->idf = palloc0(sizeof(float) * Max(d->ni, 1));
	v->mass = palloc0(sizeof(float) * Max(d->ni, 1));
	for (int32 p = 0; p < nnz; p++)
		v->ib_ptr[bi->idx[p] + 1]++;
	for (int32 i = 0; i < d->ni; i++)
		v->ib_ptr[i + 1] += v->ib_ptr[i];
	fill = palloc(sizeof(int32) * ((Size) d->ni + 1));
	memcpy(fill, v->ib_ptr, sizeof(int32) * ((Size) d->ni + 1));
	for (int32 b = 0; b < d->nb; b++)
	{
		int32		size = bi->ptr[b + 1] - bi->ptr[b];

		for (int32 p = bi->ptr[b]; p < bi->ptr[b + 1]; p++)
		{
			int32		q = fill[bi->idx[p]]++;

			v->ib_idx[q] = b;
			v->ib_w[q] = 1.0f / sqrtf((float) size);
		}
	}
	pfree(fill);
	for (int32 i = 0; i < d->ni; i++)
	{
		int32		df = v->ib_ptr[i + 1] - v->ib_ptr[i];
		double		c = 0;

		/* rarer items say more about a bundle; never negative */
		v->idf[i] = df > 0 ? (float) Max(log((double) d->nb / (df + 1.0)), 0.0) : 0;
		for (int32 p = v->ib_ptr[i]; p < v->ib_ptr[i + 1]; p++)
			c += v->ib_w[p];
		v->mass[i] = (float) (v->idf[i] * c);
	}
}

/* ---------- recsys.bundle_fit(options jsonb) RETURNS bytea ---------- */

static float *
IndexesAsFloat(const int32 *idx, int64 n)
{
	float	   *f = palloc_extended(sizeof(float) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int64 j = 0; j < n; j++)
		f[j] = (float) idx[j];
	return f;
}

static int32 *IndexesFromFloat(const float *f, int64 n, int64 limit, const char *name);
static Jsonb *SubConfig(Jsonb *config, const char *key);
static char *ConfigText(const RsFormatView *view);
static int64 TensorLen(const RsFormatView *view, const char *name);

/* the fit's options: the Gram's (beta, holdout) and the solve's (lambda, sparsity) */
typedef struct FitParams
{
	double		lambda,
				beta;
	int			keep_b,
				keep_m;
	bool		holdout;
	uint64		seed;
} FitParams;

static void
FitParamsRead(Jsonb *opts, FitParams *p)
{
	static const char *const keys[] = {"lambda", "beta", "keep_b", "keep_m", "holdout_seed", NULL};

	RecsysConfigOnlyKeys(opts, keys);
	p->lambda = RecsysConfigFloat(opts, "lambda", 500, 1e-6, 1e9);
	p->beta = RecsysConfigFloat(opts, "beta", 8, 0, 1e6);
	p->keep_b = RecsysConfigInt(opts, "keep_b", 256, 1, RECSYS_BUNDLE_MAX_BUNDLES);
	p->keep_m = RecsysConfigInt(opts, "keep_m", 64, 1, RECSYS_BUNDLE_MAX_BUNDLES);
	p->holdout = RecsysConfigGet(opts, "holdout_seed") != NULL;
	p->seed = p->holdout ? (uint64) RecsysJsonInt(RecsysConfigGet(opts, "holdout_seed"), "holdout_seed", 0, RECSYS_MAX_EXACT_INT) : 0;
}

/*
 * The fit's sufficient statistics over the customers in d: the upper triangle of
 * the Gram matrix of X + beta * IVr (nb x nb, row-major, zeroed by the caller),
 * a block of customers at a time through ssyrk, and each bundle's taker count.
 * Both are sums over customers, which is what lets shards fit in parallel.
 */
static void
FitGram(const FitData *d, const ItemView *v, const FitParams *p, float *g, float *count, int64 *pairs, int64 *heldout)
{
	int32		nb = d->nb;
	float	   *block = palloc_extended(sizeof(float) * (Size) GRAM_BLOCK * nb, MCXT_ALLOC_HUGE);

	for (int32 u0 = 0; u0 < d->nu; u0 += GRAM_BLOCK)
	{
		int			rows = Min(GRAM_BLOCK, d->nu - u0);

		memset(block, 0, sizeof(float) * (Size) rows * nb);
		for (int r = 0; r < rows; r++)
		{
			int32		u = u0 + r;
			float	   *x = block + (Size) r * nb;
			const int32 *taken = d->user_bundles.idx + d->user_bundles.ptr[u];
			int			ntaken = d->user_bundles.ptr[u + 1] - d->user_bundles.ptr[u];
			int			skip = p->holdout ? RecsysHoldoutPick(p->seed, u, taken, ntaken) : -1;
			double		z = 0;

			for (int t = 0; t < ntaken; t++)
				if (t != skip)
				{
					x[taken[t]] += 1;
					count[taken[t]] += 1;
					(*pairs)++;
				}
			*heldout += skip >= 0;
			for (int32 q = d->user_items.ptr[u]; q < d->user_items.ptr[u + 1]; q++)
				z += v->mass[d->user_items.idx[q]];
			if (z <= 0 || p->beta == 0)
				continue;
			for (int32 q = d->user_items.ptr[u]; q < d->user_items.ptr[u + 1]; q++)
			{
				int32		i = d->user_items.idx[q];
				float		w = (float) (p->beta * v->idf[i] / z);

				for (int32 e = v->ib_ptr[i]; e < v->ib_ptr[i + 1]; e++)
					x[v->ib_idx[e]] += w * v->ib_w[e];
			}
		}
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, nb, rows, 1.0f, block, nb, 1.0f, g, nb);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(block);
}

/*
 * From the statistics to the servable fit: the EASE solve on g (consumed), the
 * strongest keep_b entries of each row of B, M = BIn' B with its strongest keep_m
 * entries per item, log popularity, and the weights value with its config.
 */
static bytea *
FitFinish(float *g, int32 nb, int32 ni, int64 nu, const ItemView *v, float *count, const FitParams *p,
		  int64 pairs, int64 heldout, const char *catalogue)
{
	int			keep_b = Min(p->keep_b, nb),
				keep_m = Min(p->keep_m, nb),
				rc;
	float	   *row,
			   *bval,
			   *mval;
	int32	   *work,
			   *bidx,
			   *midx;
	RsTensorDesc desc[10];
	const float *data[10];
	char		config[512];

	rc = rs_ease_solve(g, nb, p->lambda);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the regularised Gram matrix is not positive definite (LAPACK info %d)", rc),
				 errhint("Use a larger lambda.")));

	/* sparse B: the strongest keep_b entries of each row */
	work = palloc(sizeof(int32) * nb);
	bidx = palloc_extended(sizeof(int32) * (Size) nb * keep_b, MCXT_ALLOC_HUGE);
	bval = palloc_extended(sizeof(float) * (Size) nb * keep_b, MCXT_ALLOC_HUGE);
	for (int32 b = 0; b < nb; b++)
		rs_top_abs(g + (Size) b * nb, nb, keep_b, bidx + (Size) b * keep_b, bval + (Size) b * keep_b, work);
	CHECK_FOR_INTERRUPTS();

	/* M = BIn' B per item (dense B), then its strongest keep_m entries */
	row = palloc(sizeof(float) * nb);
	midx = palloc_extended(sizeof(int32) * (Size) Max(ni, 1) * keep_m, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	mval = palloc_extended(sizeof(float) * (Size) Max(ni, 1) * keep_m, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int32 i = 0; i < ni; i++)
	{
		memset(row, 0, sizeof(float) * nb);
		for (int32 q = v->ib_ptr[i]; q < v->ib_ptr[i + 1]; q++)
			cblas_saxpy(nb, v->ib_w[q], g + (Size) v->ib_idx[q] * nb, 1, row, 1);
		rs_top_abs(row, nb, keep_m, midx + (Size) i * keep_m, mval + (Size) i * keep_m, work);
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (int32 b = 0; b < nb; b++)
		count[b] = logf(1.0f + count[b]);

	/* tensors */
	{
		struct
		{
			const char *name;
			int64		d0,
						d1;
			const float *p;
		}			t[] = {
			{"b.idx", nb, keep_b, IndexesAsFloat(bidx, (int64) nb * keep_b)},
			{"b.val", nb, keep_b, bval},
			{"m.idx", Max(ni, 1), keep_m, IndexesAsFloat(midx, (int64) Max(ni, 1) * keep_m)},
			{"m.val", Max(ni, 1), keep_m, mval},
			{"item.idf", Max(ni, 1), 0, v->idf},
			{"item.mass", Max(ni, 1), 0, v->mass},
			{"bundle.pop", nb, 0, count},
			{"ib.ptr", (int64) ni + 1, 0, IndexesAsFloat(v->ib_ptr, (int64) ni + 1)},
			{"ib.idx", Max(v->ib_ptr[ni], 1), 0, IndexesAsFloat(v->ib_idx, Max(v->ib_ptr[ni], 1))},
			{"ib.w", Max(v->ib_ptr[ni], 1), 0, v->ib_w},
		};

		for (int j = 0; j < 10; j++)
		{
			memset(&desc[j], 0, sizeof(RsTensorDesc));
			strlcpy(desc[j].name, t[j].name, RS_NAME_LEN);
			desc[j].ndim = t[j].d1 ? 2 : 1;
			desc[j].dims[0] = t[j].d0;
			desc[j].dims[1] = t[j].d1;
			data[j] = t[j].p;
		}
	}
	snprintf(config, sizeof(config),
			 "{\"model\": \"bundle\", \"fit\": {\"lambda\": %.9g, \"beta\": %.9g, \"keep_b\": %d, \"keep_m\": %d, "
			 "\"bundles\": %d, \"items\": %d, \"users\": " INT64_FORMAT ", \"pairs\": " INT64_FORMAT ", \"heldout\": " INT64_FORMAT
			 ", \"holdout_seed\": %s, \"catalogue\": \"%s\"}}",
			 p->lambda, p->beta, keep_b, keep_m, nb, ni, nu, pairs, heldout,
			 p->holdout ? psprintf(UINT64_FORMAT, p->seed) : "null", catalogue);
	return RecsysWeightsBuild(RS_KIND_BUNDLE, 10, desc, data, config, strlen(config));
}

/* the statistics of a fit over this node's prepared data, and what finishing it needs */
typedef struct FitStats
{
	FitParams	p;
	FitData		d;
	ItemView	v;
	float	   *g,
			   *count;
	int64		pairs,
				heldout;
} FitStats;

static void
FitStatsCompute(Jsonb *opts, FitStats *st)
{
	MemoryContext outer = CurrentMemoryContext;

	memset(st, 0, sizeof(*st));
	FitParamsRead(opts, &st->p);
	RecsysCoreHooks();
	SPI_connect();
	FitDataLoad(&st->d, outer);
	SPI_finish();
	ItemViewBuild(&st->d, &st->v);
	st->g = palloc_extended(sizeof(float) * (Size) st->d.nb * st->d.nb, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->count = palloc0(sizeof(float) * st->d.nb);
	FitGram(&st->d, &st->v, &st->p, st->g, st->count, &st->pairs, &st->heldout);
}

PG_FUNCTION_INFO_V1(bundle_fit);

Datum
bundle_fit(PG_FUNCTION_ARGS)
{
	FitStats	st;

	FitStatsCompute(PG_GETARG_JSONB_P(0), &st);
	PG_RETURN_BYTEA_P(FitFinish(st.g, st.d.nb, st.d.ni, st.d.nu, &st.v, st.count, &st.p, st.pairs, st.heldout,
								st.d.catalogue));
}

/*
 * ---------- data-parallel fitting: recsys.fit_partial(options) on each shard,
 * recsys.fit_merge(partials[], options) where the shards' answers meet ----------
 *
 * A partial holds a shard's sufficient statistics: the packed upper triangle of
 * its Gram matrix and its bundle taker counts (sums over its customers), plus the
 * item view of the catalogue, which every shard must share. Merging sums them and
 * finishes exactly as bundle_fit does on one node, so the merged fit is the
 * single-node fit up to float summation order.
 */
#define PARTIAL_NT 7

PG_FUNCTION_INFO_V1(fit_partial);

Datum
fit_partial(PG_FUNCTION_ARGS)
{
	FitStats	st;
	float	   *packed;
	int64		npacked;
	RsTensorDesc desc[PARTIAL_NT];
	const float *data[PARTIAL_NT];
	char		config[512];

	FitStatsCompute(PG_GETARG_JSONB_P(0), &st);
	/* ship the upper triangle only: half the bytes */
	npacked = (int64) st.d.nb * (st.d.nb + 1) / 2;
	/* in place: row i's packed start never passes its own diagonal */
	packed = st.g;
	for (int64 i = 0, k = 0; i < st.d.nb; i++)
	{
		memmove(packed + k, st.g + i * st.d.nb + i, sizeof(float) * (st.d.nb - i));
		k += st.d.nb - i;
	}
	{
		struct
		{
			const char *name;
			int64		d0;
			const float *p;
		}			t[PARTIAL_NT] = {
			{"gram.upper", npacked, packed},
			{"bundle.count", st.d.nb, st.count},
			{"item.idf", Max(st.d.ni, 1), st.v.idf},
			{"item.mass", Max(st.d.ni, 1), st.v.mass},
			{"ib.ptr", (int64) st.d.ni + 1, IndexesAsFloat(st.v.ib_ptr, (int64) st.d.ni + 1)},
			{"ib.idx", Max(st.v.ib_ptr[st.d.ni], 1), IndexesAsFloat(st.v.ib_idx, Max(st.v.ib_ptr[st.d.ni], 1))},
			{"ib.w", Max(st.v.ib_ptr[st.d.ni], 1), st.v.ib_w},
		};

		for (int j = 0; j < PARTIAL_NT; j++)
		{
			memset(&desc[j], 0, sizeof(RsTensorDesc));
			strlcpy(desc[j].name, t[j].name, RS_NAME_LEN);
			desc[j].ndim = 1;
			desc[j].dims[0] = t[j].d0;
			data[j] = t[j].p;
		}
	}
	snprintf(config, sizeof(config),
			 "{\"model\": \"bundle_partial\", \"partial\": {\"beta\": %.9g, \"bundles\": %d, \"items\": %d, "
			 "\"users\": %d, \"pairs\": " INT64_FORMAT ", \"heldout\": " INT64_FORMAT ", \"holdout_seed\": %s, "
			 "\"catalogue\": \"%s\"}}",
			 st.p.beta, st.d.nb, st.d.ni, st.d.nu, st.pairs, st.heldout, st.p.holdout ? psprintf(UINT64_FORMAT, st.p.seed) : "null",
			 st.d.catalogue);
	PG_RETURN_BYTEA_P(RecsysWeightsBuild(RS_KIND_BUNDLE, PARTIAL_NT, desc, data, config, strlen(config)));
}

/* a partial's tensor of exactly n floats, or an error naming the argument */
static const float *
PartialTensor(const RsFormatView *view, const char *name, int64 n, int elem)
{
	RsTensorDesc t;

	if (rs_format_find(view, name, &t) < 0 || t.ndim != 1 || t.dims[0] != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partials[%d] has no tensor \"%s\" of %lld values", elem, name, (long long) n),
				 errhint("Pass values made by recsys.fit_partial on shards with the same catalogue.")));
	return (const float *) (view->buf + t.offset);
}

/* a view's config as jsonb ("{}" when it has none) */
static Jsonb *
ViewConfig(const RsFormatView *view)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(ConfigText(view))));
}

/* the same tensor, byte for byte, in two weights values */
static bool
SameTensor(const RsFormatView *a, const RsFormatView *b, const char *name)
{
	RsTensorDesc ta,
				tb;

	return rs_format_find(a, name, &ta) >= 0 && rs_format_find(b, name, &tb) >= 0 && ta.numel == tb.numel &&
		memcmp(a->buf + ta.offset, b->buf + tb.offset, sizeof(float) * ta.numel) == 0;
}

/* a partial's holdout seed, -1 when it was fitted without one */
static double
PartialSeed(Jsonb *part)
{
	JsonbValue *sv = RecsysConfigGet(part, "holdout_seed");

	return (sv && sv->type == jbvNumeric) ? RecsysConfigFloat(part, "holdout_seed", 0, 0, 9007199254740991.0) : -1;
}

/* a partial's catalogue fingerprint ("" from a partial made before fingerprints) */
static const char *
PartialCatalogue(Jsonb *part)
{
	JsonbValue *v = RecsysConfigGet(part, "catalogue");

	if (v == NULL || v->type != jbvString || v->val.string.len != 32)
		return "";
	return pnstrdup(v->val.string.val, v->val.string.len);
}

PG_FUNCTION_INFO_V1(fit_merge);

Datum
fit_merge(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Jsonb	   *opts = PG_GETARG_JSONB_P(1);
	static const char *const catalogue[] = {"item.idf", "item.mass", "ib.ptr", "ib.idx", "ib.w"};
	FitParams	p;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				used = 0;
	int32		nb = 0,
				ni = 0;
	int64		npacked = 0,
				users = 0,
				pairs = 0,
				heldout = 0,
				nnz;
	double		beta = 0,
				seed = -1;
	const char *fingerprint = "";
	double	   *sum = NULL;
	float	   *count = NULL,
			   *g;
	RsFormatView first;
	ItemView	v;

	FitParamsRead(opts, &p);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("partials must be a one-dimensional array")));
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	RecsysCoreHooks();
	for (int e = 0; e < n; e++)
	{
		RsFormatView view;
		Jsonb	   *part;
		const float *gp,
				   *cp;

		if (nulls[e])
			continue;
		RecsysWeightsParse(DatumGetByteaPP(elems[e]), &view);
		part = SubConfig(ViewConfig(&view), "partial");
		if (view.kind != RS_KIND_BUNDLE || part == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("partials[%d] is not a partial fit", e + 1),
					 errhint("Pass values made by recsys.fit_partial.")));
		if (used == 0)
		{
			first = view;
			nb = RecsysConfigInt(part, "bundles", -1, 1, RECSYS_BUNDLE_MAX_BUNDLES);
			ni = RecsysConfigInt(part, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1);
			beta = RecsysConfigFloat(part, "beta", -1, 0, 1e6);
			seed = PartialSeed(part);
			fingerprint = PartialCatalogue(part);
			npacked = (int64) nb * (nb + 1) / 2;
			sum = palloc_extended(sizeof(double) * npacked, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			count = palloc0(sizeof(float) * nb);
		}
		else
		{
			/* every shard must have fitted the same catalogue with the same options */
			bool		same = RecsysConfigInt(part, "bundles", -1, 1, RECSYS_BUNDLE_MAX_BUNDLES) == nb &&
				RecsysConfigInt(part, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1) == ni &&
				RecsysConfigFloat(part, "beta", -1, 0, 1e6) == beta && PartialSeed(part) == seed &&
				strcmp(PartialCatalogue(part), fingerprint) == 0;

			for (int t = 0; same && t < lengthof(catalogue); t++)
				same = SameTensor(&view, &first, catalogue[t]);
			if (!same)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("partials[%d] was fitted on another catalogue or with other options than the first partial", e + 1),
						 errdetail("Bundles, items, their membership, beta and holdout_seed must agree."),
						 errhint("Prepare every shard from the same catalogue and call recsys.fit_partial with the same options.")));
		}
		gp = PartialTensor(&view, "gram.upper", npacked, e + 1);
		cp = PartialTensor(&view, "bundle.count", nb, e + 1);
		for (int64 k = 0; k < npacked; k++)
			sum[k] += gp[k];
		for (int32 b = 0; b < nb; b++)
			count[b] += cp[b];
		users += RecsysConfigInt(part, "users", 0, 0, PG_INT32_MAX);
		pairs += (int64) RecsysConfigFloat(part, "pairs", 0, 0, 1e15);
		heldout += (int64) RecsysConfigFloat(part, "heldout", 0, 0, 1e15);
		used++;
		CHECK_FOR_INTERRUPTS();
	}
	if (used == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partials holds no partial fit"),
				 errhint("Pass the values recsys.fit_partial returned on each shard.")));
	/* the merge's own beta and holdout_seed options, if given, must be the partials' */
	if ((RecsysConfigGet(opts, "beta") && p.beta != beta) || (p.holdout && (double) p.seed != seed))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options beta and holdout_seed must match the partials' (beta %g, holdout_seed %s)",
						beta, seed < 0 ? "null" : psprintf("%.0f", seed))));
	p.beta = beta;
	p.holdout = seed >= 0;
	p.seed = p.holdout ? (uint64) seed : 0;

	/* the catalogue's item view, as the first partial carries it (every other one agrees) */
	v.idf = (float *) PartialTensor(&first, "item.idf", Max(ni, 1), 1);
	v.mass = (float *) PartialTensor(&first, "item.mass", Max(ni, 1), 1);
	nnz = TensorLen(&first, "ib.idx");
	v.ib_ptr = IndexesFromFloat(PartialTensor(&first, "ib.ptr", (int64) ni + 1, 1), (int64) ni + 1, nnz + 1, "ib.ptr");
	for (int32 i = 0; i < ni; i++)
		if (v.ib_ptr[i] > v.ib_ptr[i + 1])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid partial: tensor \"ib.ptr\" is not monotone")));
	v.ib_idx = IndexesFromFloat(PartialTensor(&first, "ib.idx", nnz, 1), nnz, nb, "ib.idx");
	v.ib_w = (float *) PartialTensor(&first, "ib.w", nnz, 1);

	g = palloc_extended(sizeof(float) * (Size) nb * nb, MCXT_ALLOC_HUGE);
	for (int64 i = 0, k = 0; i < nb; i++)
		for (int64 j = i; j < nb; j++)
			g[i * nb + j] = (float) sum[k++];
	pfree(sum);
	PG_RETURN_BYTEA_P(FitFinish(g, nb, ni, users, &v, count, &p, pairs, heldout, fingerprint));
}

/* ---------- loading ---------- */

static const float *
TensorPtr(const RsFormatView *view, const char *name, int64 d0, int64 d1)
{
	RsTensorDesc t;

	if (rs_format_find(view, name, &t) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack tensor \"%s\"", name),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	if (t.dims[0] != d0 || (d1 >= 0 && (t.ndim != 2 || t.dims[1] != d1)) || (d1 < 0 && t.ndim != 1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid recsys weights: tensor \"%s\" has the wrong shape", name)));
	return (const float *) (view->buf + t.offset);
}

static int64
TensorLen(const RsFormatView *view, const char *name)
{
	RsTensorDesc t;

	if (rs_format_find(view, name, &t) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack tensor \"%s\"", name)));
	return t.numel;
}

static int32 *
IndexesFromFloat(const float *f, int64 n, int64 limit, const char *name)
{
	int32	   *idx = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int64 j = 0; j < n; j++)
	{
		if (!(f[j] >= 0 && f[j] < limit) || f[j] != floorf(f[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: tensor \"%s\" holds index %g outside 0..%lld", name, f[j],
							(long long) limit - 1)));
		idx[j] = (int32) f[j];
	}
	return idx;
}

static Jsonb *
SubConfig(Jsonb *config, const char *key)
{
	JsonbValue *v = RecsysConfigGet(config, key);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return JsonbValueToJsonb(v);
}

void
RecsysBundleLoad(bytea *weights, RecsysBundle *b)
{
	RsFormatView view;
	RsBundleModel *m = &b->m;
	Jsonb	   *fit;
	int64		nnz;
	int32	   *ptr;

	memset(b, 0, sizeof(*b));
	RecsysWeightsParse(weights, &view);
	if (view.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights of kind \"%s\" are not a bundle model", rs_kind_name(view.kind)),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	b->config = ViewConfig(&view);
	fit = SubConfig(b->config, "fit");
	if (fit == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle weights lack their \"fit\" config"),
				 errhint("Use weights made by recsys.bundle_fit or recsys.train.")));
	m->nb = RecsysConfigInt(fit, "bundles", -1, 1, RECSYS_BUNDLE_MAX_BUNDLES);
	m->ni = RecsysConfigInt(fit, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1);
	m->mb = RecsysConfigInt(fit, "keep_b", -1, 1, m->nb);
	m->mm = RecsysConfigInt(fit, "keep_m", -1, 1, m->nb);
	m->beta = (float) RecsysConfigFloat(fit, "beta", 8, 0, 1e6);
	b->candidates = RecsysConfigInt(b->config, "candidates", 100, 1, 10000);
	{
		int64		ni1 = Max(m->ni, 1);

		m->bidx = IndexesFromFloat(TensorPtr(&view, "b.idx", m->nb, m->mb), (int64) m->nb * m->mb, m->nb, "b.idx");
		m->bval = TensorPtr(&view, "b.val", m->nb, m->mb);
		m->midx = IndexesFromFloat(TensorPtr(&view, "m.idx", ni1, m->mm), ni1 * m->mm, m->nb, "m.idx");
		m->mval = TensorPtr(&view, "m.val", ni1, m->mm);
		m->idf = TensorPtr(&view, "item.idf", ni1, -1);
		m->mass = TensorPtr(&view, "item.mass", ni1, -1);
		m->pop = TensorPtr(&view, "bundle.pop", m->nb, -1);
		nnz = TensorLen(&view, "ib.idx");
		ptr = IndexesFromFloat(TensorPtr(&view, "ib.ptr", (int64) m->ni + 1, -1), (int64) m->ni + 1, nnz + 1, "ib.ptr");
		for (int32 i = 0; i < m->ni; i++)
			if (ptr[i] > ptr[i + 1])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid recsys weights: tensor \"ib.ptr\" is not monotone")));
		m->ib_ptr = ptr;
		m->ib_idx = IndexesFromFloat(TensorPtr(&view, "ib.idx", nnz, -1), nnz, m->nb, "ib.idx");
		m->ib_w = TensorPtr(&view, "ib.w", nnz, -1);
	}
	{
		Jsonb	   *sc = SubConfig(b->config, "scorer");
		Jsonb	   *en = SubConfig(b->config, "encoder");

		if (sc)
		{
			RecsysNetLoadView(&b->scorer, &view, RS_KIND_MLP, sc, "scorer.");
			if (b->scorer.mlp.dims[0] != RS_BUNDLE_NFEAT || b->scorer.mlp.dims[b->scorer.mlp.nlayers] != 1)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid recsys weights: the scorer must map %d features to 1 score", RS_BUNDLE_NFEAT)));
			b->has_scorer = true;
		}
		if (en)
		{
			RecsysNetLoadView(&b->encoder, &view, RS_KIND_GRU, en, "gru.");
			b->has_encoder = true;
		}
	}
}

void
RecsysBundleRerank(RecsysBundle *b, const float *x, int ncand, float *out)
{
	if (b->has_scorer && ncand > 0)
	{
		rs_real    *logits = rs_mlp_forward(&b->scorer.mlp, x, ncand);

		memcpy(out, logits, sizeof(float) * ncand);
	}
	else
		for (int c = 0; c < ncand; c++)
			out[c] = x[(int64) c * RS_BUNDLE_NFEAT + 1];
}

/* ---------- recsys.bundle_samples(fit bytea, holdout_seed bigint, candidates int) ---------- */

PG_FUNCTION_INFO_V1(bundle_samples);

Datum
bundle_samples(PG_FUNCTION_ARGS)
{
	bytea	   *w = PG_GETARG_BYTEA_P(0);
	uint64		seed = (uint64) PG_GETARG_INT64(1);
	int			ncand = PG_GETARG_INT32(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecsysBundle bm;
	FitData		d;
	float	   *s,
			   *iv,
			   *x;
	int32	   *cand,
			   *taken;
	uint8	   *skip;

	if (ncand < 1 || ncand > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidates must be from 1 to 10000, got %d", ncand)));
	InitMaterializedSRF(fcinfo, 0);
	RecsysCoreHooks();
	RecsysBundleLoad(w, &bm);
	SPI_connect();
	FitDataLoad(&d, CurrentMemoryContext);
	/* the same counts the fit saw, or the held-out pairs would not be the fit's */
	if (d.nb != bm.m.nb || d.ni != bm.m.ni)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the prepared data changed since the fit (%d bundles and %d items, the fit saw %d and %d)",
						d.nb, d.ni, bm.m.nb, bm.m.ni),
				 errhint("Fit again with recsys.bundle_fit.")));
	s = palloc(sizeof(float) * d.nb);
	iv = palloc(sizeof(float) * d.nb);
	skip = palloc0(d.nb);
	ncand = Min(ncand, d.nb);
	cand = palloc(sizeof(int32) * ncand);
	taken = palloc(sizeof(int32) * d.nb);
	x = palloc(sizeof(float) * ncand * RS_BUNDLE_NFEAT);
	for (int32 u = 0; u < d.nu; u++)
	{
		const int32 *all = d.user_bundles.idx + d.user_bundles.ptr[u];
		int			nall = d.user_bundles.ptr[u + 1] - d.user_bundles.ptr[u];
		int			pick = RecsysHoldoutPick(seed, u, all, nall);
		int			ntaken = 0,
					got,
					pos = -1;
		bool		valid;

		if (pick < 0)
			continue;
		valid = RecsysHoldoutValid(seed, u);
		for (int t = 0; t < nall; t++)
			if (t != pick)
				taken[ntaken++] = all[t];
		rs_bundle_score(&bm.m, taken, ntaken, d.user_items.idx + d.user_items.ptr[u],
						d.user_items.ptr[u + 1] - d.user_items.ptr[u], s, iv);
		for (int t = 0; t < ntaken; t++)
			skip[taken[t]] = 1;
		got = rs_top_n(s, d.nb, skip, ncand, cand);
		for (int t = 0; t < ntaken; t++)
			skip[taken[t]] = 0;
		for (int c = 0; c < got; c++)
			if (cand[c] == all[pick])
				pos = c;
		/* a training customer whose bundle is not among the candidates teaches nothing */
		if (pos < 0 && !valid)
			continue;
		rs_bundle_features(&bm.m, s, iv, ntaken, cand, got, x);
		for (int c = 0; c < got; c++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};
			Datum		feats[RS_BUNDLE_NFEAT];

			for (int f = 0; f < RS_BUNDLE_NFEAT; f++)
				feats[f] = Float4GetDatum(x[c * RS_BUNDLE_NFEAT + f]);
			values[0] = Int32GetDatum(u);
			values[1] = BoolGetDatum(valid);
			values[2] = Int32GetDatum(cand[c]);
			values[3] = PointerGetDatum(construct_array(feats, RS_BUNDLE_NFEAT, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
			values[4] = Float4GetDatum(c == pos ? 1.0f : 0.0f);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		/* a validating customer whose bundle was missed still counts, as a miss */
		if (pos < 0)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, true, true, false};

			values[0] = Int32GetDatum(u);
			values[1] = BoolGetDatum(true);
			values[2] = values[3] = (Datum) 0;
			values[4] = Float4GetDatum(1.0f);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---------- recsys.bundle_attach(fit bytea, scorer bytea, encoder bytea) RETURNS bytea ---------- */

static int
CopyTensors(const RsFormatView *view, const char *prefix, const char *const *only, RsTensorDesc *desc,
			const float **data, int n)
{
	for (int j = 0; j < view->ntensors; j++)
	{
		RsTensorDesc t;
		bool		keep = only == NULL;

		rs_format_tensor(view, j, &t);
		for (const char *const *o = only; o && *o; o++)
			keep |= strcmp(*o, t.name) == 0;
		if (!keep)
			continue;
		if (n >= 64)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many tensors to attach")));
		desc[n] = t;
		snprintf(desc[n].name, RS_NAME_LEN, "%s%s", prefix, t.name);
		data[n] = (const float *) (view->buf + t.offset);
		n++;
	}
	return n;
}

static char *
ConfigText(const RsFormatView *view)
{
	return view->config_len ? pnstrdup(view->config, view->config_len) : pstrdup("{}");
}

PG_FUNCTION_INFO_V1(bundle_attach);

Datum
bundle_attach(PG_FUNCTION_ARGS)
{
	static const char *const fit_tensors[] = {"b.idx", "b.val", "m.idx", "m.val", "item.idf", "item.mass",
	"bundle.pop", "ib.ptr", "ib.idx", "ib.w", NULL};
	RsFormatView fit,
				sc,
				en;
	RsTensorDesc desc[64];
	const float *data[64];
	int			n;
	StringInfoData cfg;
	Jsonb	   *fitcfg;
	JsonbValue *fitpart;
	int			candidates = PG_ARGISNULL(3) ? 100 : PG_GETARG_INT32(3);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("fit must not be NULL")));
	if (candidates < 1 || candidates > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidates must be from 1 to 10000, got %d", candidates)));
	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &fit);
	if (fit.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fit must be bundle weights from recsys.bundle_fit, got kind %s", rs_kind_name(fit.kind))));
	n = CopyTensors(&fit, "", fit_tensors, desc, data, 0);
	fitcfg = ViewConfig(&fit);
	fitpart = RecsysConfigGet(fitcfg, "fit");
	if (fitpart == NULL || fitpart->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fit must be bundle weights from recsys.bundle_fit")));
	initStringInfo(&cfg);
	appendStringInfo(&cfg, "{\"model\": \"bundle\", \"candidates\": %d, \"fit\": %s", candidates,
					 JsonbToCString(NULL, fitpart->val.binary.data, -1));
	if (!PG_ARGISNULL(1))
	{
		RecsysWeightsParse(PG_GETARG_BYTEA_P(1), &sc);
		if (sc.kind != RS_KIND_MLP)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("scorer must be mlp weights, got kind %s", rs_kind_name(sc.kind))));
		n = CopyTensors(&sc, "scorer.", NULL, desc, data, n);
		appendStringInfo(&cfg, ", \"scorer\": %s", ConfigText(&sc));
	}
	if (!PG_ARGISNULL(2))
	{
		RecsysWeightsParse(PG_GETARG_BYTEA_P(2), &en);
		if (en.kind != RS_KIND_GRU)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("encoder must be gru weights, got kind %s", rs_kind_name(en.kind))));
		n = CopyTensors(&en, "gru.", NULL, desc, data, n);
		appendStringInfo(&cfg, ", \"encoder\": %s", ConfigText(&en));
	}
	appendStringInfoChar(&cfg, '}');
	{
		bytea	   *result = RecsysWeightsBuild(RS_KIND_BUNDLE, n, desc, data, cfg.data, cfg.len);
		RecsysBundle check;

		/* what cannot be served is refused here, not on the first request */
		RecsysCoreHooks();
		RecsysBundleLoad(result, &check);
		PG_RETURN_BYTEA_P(result);
	}
}

/* ---------- recsys.bundle_part(weights bytea, part text) RETURNS bytea ---------- */

PG_FUNCTION_INFO_V1(bundle_part);

Datum
bundle_part(PG_FUNCTION_ARGS)
{
	RsFormatView view;
	char	   *part = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *prefix;
	const char *cfgkey;
	int			kind;
	RsTensorDesc desc[64];
	const float *data[64];
	int			n = 0;
	Jsonb	   *config;
	JsonbValue *sub;
	char	   *subtext;
	size_t		plen;

	if (strcmp(part, "scorer") == 0)
		prefix = "scorer.", cfgkey = "scorer", kind = RS_KIND_MLP;
	else if (strcmp(part, "encoder") == 0)
		prefix = "gru.", cfgkey = "encoder", kind = RS_KIND_GRU;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown part \"%s\"", part),
				 errhint("Use scorer or encoder.")));
	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &view);
	if (view.kind != RS_KIND_BUNDLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights of kind \"%s\" are not a bundle model", rs_kind_name(view.kind))));
	config = ViewConfig(&view);
	sub = RecsysConfigGet(config, cfgkey);
	if (sub == NULL || sub->type != jbvBinary)
		PG_RETURN_NULL();
	subtext = JsonbToCString(NULL, sub->val.binary.data, -1);
	plen = strlen(prefix);
	for (int j = 0; j < view.ntensors; j++)
	{
		RsTensorDesc t;

		rs_format_tensor(&view, j, &t);
		if (strncmp(t.name, prefix, plen) != 0)
			continue;
		if (n >= 64)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid recsys weights: too many %s tensors", part)));
		desc[n] = t;
		strlcpy(desc[n].name, t.name + plen, RS_NAME_LEN);
		data[n] = (const float *) (view.buf + t.offset);
		n++;
	}
	PG_RETURN_BYTEA_P(RecsysWeightsBuild(kind, n, desc, data, subtext, strlen(subtext)));
}

/* ---------- recsys.bundle_features(fit bytea, user_idx integer, bundles integer[]) RETURNS real[] ---------- */

typedef struct FeatureCache
{
	RecsysWeightsKey key;
	bytea	   *weights;
	RecsysBundle bm;
} FeatureCache;

/* one column of a query about one customer, as indexes */
static int32 *
UserList(const char *query, int32 user, int *n)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(user)};
	int32	   *out;

	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read a customer's history");
	*n = (int) SPI_processed;
	out = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		out[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	return out;
}

PG_FUNCTION_INFO_V1(bundle_features);

Datum
bundle_features(PG_FUNCTION_ARGS)
{
	int32		user = PG_GETARG_INT32(1);
	ArrayType  *bundles = PG_GETARG_ARRAYTYPE_P(2);
	FeatureCache *fc = (FeatureCache *) fcinfo->flinfo->fn_extra;
	RecsysWeightsKey key;
	int32	   *want,
			   *taken,
			   *items;
	int			nwant,
				ntaken,
				nitems;
	float	   *s,
			   *iv,
			   *x;
	Datum	   *elems;
	int			dims[2],
				lbs[2] = {1, 1};
	MemoryContext old;

	/* the model is parsed once per query, as in ease_scores */
	RecsysWeightsKeyOf(PG_GETARG_DATUM(0), &key);
	if (fc == NULL || !RecsysWeightsKeyEqual(&fc->key, &key))
	{
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		if (fc == NULL)
			fc = fcinfo->flinfo->fn_extra = palloc0(sizeof(FeatureCache));
		fc->weights = PG_GETARG_BYTEA_P_COPY(0);
		RecsysCoreHooks();
		RecsysBundleLoad(fc->weights, &fc->bm);
		fc->key = key;
		MemoryContextSwitchTo(old);
	}
	want = RecsysCheckItems(bundles, fc->bm.m.nb, &nwant, "bundle");
	/* allocated before SPI_connect: SPI's memory goes at SPI_finish */
	s = palloc(sizeof(float) * fc->bm.m.nb);
	iv = palloc(sizeof(float) * fc->bm.m.nb);
	x = palloc(sizeof(float) * Max(nwant, 1) * RS_BUNDLE_NFEAT);
	SPI_connect();
	taken = UserList("SELECT bundle_idx FROM recsys.user_bundles WHERE user_idx = $1 ORDER BY 1", user, &ntaken);
	items = UserList("SELECT item_idx FROM recsys.user_items WHERE user_idx = $1 ORDER BY 1", user, &nitems);
	rs_bundle_score(&fc->bm.m, taken, ntaken, items, nitems, s, iv);
	rs_bundle_features(&fc->bm.m, s, iv, ntaken, want, nwant, x);
	SPI_finish();
	if (nwant == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT4OID));
	elems = palloc(sizeof(Datum) * nwant * RS_BUNDLE_NFEAT);
	for (int i = 0; i < nwant * RS_BUNDLE_NFEAT; i++)
		elems[i] = Float4GetDatum(x[i]);
	dims[0] = nwant;
	dims[1] = RS_BUNDLE_NFEAT;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, 2, dims, lbs, FLOAT4OID, 4, true, TYPALIGN_INT));
}
