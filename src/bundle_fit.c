/*
 * bundle_fit.c — recsys.bundle_fit: sparse EASE over item-view-augmented user rows, with
 * one bundle held out per customer when seeded; and its data-parallel form,
 * recsys.fit_partial on each shard and recsys.fit_merge where the shards' answers meet.
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
#include "prepared.h"
#include "core/rs_ease.h"
#include "core/rs_fit.h"
#include "core/rs_lowrank.h"
#include "model_io.h"
#include "options.h"

/* the numerics (held-out split, item view, Gram, sparse solve) are the core's: core/rs_fit.h, core/rs_lowrank.h */

/* power steps of the low-rank fit's subspace iteration: each is one pass over the customers */
#define RECSYS_LOWRANK_ITERS 3

/* ---------- recsys.bundle_fit(options jsonb) RETURNS bytea ---------- */

static float *
IndexesAsFloat(const int32 *idx, int64 n)
{
	float	   *f = palloc_extended(sizeof(float) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int64 j = 0; j < n; j++)
		f[j] = (float) idx[j];
	return f;
}


/*
 * the fit's options: the customers' Gram's (beta, view_norm, holdout), the catalogue's rows'
 * (content) and the solve's (lambda, sparsity)
 */
typedef struct FitParams
{
	double		lambda,
				beta,
				view_norm,
				content;
	int			keep_b,
				keep_m,
				dense_max,
				rank;
	bool		holdout;
	uint64		seed;
} FitParams;

static void
FitParamsRead(Jsonb *opts, FitParams *p)
{
	RecsysOptionsCheckKeys(opts, "bundle_fit");
	p->lambda = RecsysOptionGetNumber(opts, "bundle_fit", "lambda");
	p->beta = RecsysOptionGetNumber(opts, "bundle_fit", "beta");
	p->view_norm = RecsysOptionGetNumber(opts, "bundle_fit", "view_norm");
	p->content = RecsysOptionGetNumber(opts, "bundle_fit", "content");
	p->keep_b = (int) RecsysOptionGetInt(opts, "bundle_fit", "keep_b");
	p->keep_m = (int) RecsysOptionGetInt(opts, "bundle_fit", "keep_m");
	p->dense_max = (int) RecsysOptionGetInt(opts, "bundle_fit", "dense_max");
	p->rank = (int) RecsysOptionGetInt(opts, "bundle_fit", "rank");
	p->holdout = RecsysConfigGet(opts, "holdout_seed") != NULL;
	p->seed = p->holdout ? (uint64) RecsysOptionGetInt(opts, "bundle_fit", "holdout_seed") : 0;
}

/* the fit's sufficient statistics over the customers of d (core/rs_fit.h) */
static void
FitGram(const RecsysPrepared *d, const RsItemView *v, const FitParams *p, float *g, float *count, int64 *pairs,
		int64 *heldout)
{
	RsRows		ub = {d->user_bundles.ptr, d->user_bundles.idx},
				ui = {d->user_items.ptr, d->user_items.idx};

	rs_fit_gram(d->nu, d->nb, ub, ui, v, p->beta, p->view_norm, p->holdout, p->seed, g, count, pairs, heldout);
}

/* the strongest keep entries' room: nb x keep_b for B, max(ni, 1) x keep_m for M */
typedef struct FitSparse
{
	int			keep_b,
				keep_m;
	int32	   *bidx,
			   *midx;
	float	   *bval,
			   *mval;
} FitSparse;

/*
 * The servable fit from its sparse parts: the strongest keep_b entries of each row of
 * B, M = BIn' B with its strongest keep_m entries per item, log popularity, and the
 * weights value with its config. The dense and the low-rank fit write the same tensors.
 */
static bytea *
FitWeights(int32 nb, int32 ni, int64 nu, const RsItemView *v, const float *count, const FitParams *p,
		   const FitSparse *s, int64 pairs, int64 heldout, const char *catalogue, const char *method)
{
	int			keep_b = s->keep_b,
				keep_m = s->keep_m;
	RsTensorDesc desc[10];
	const float *data[10];
	char		config[640];

	/* tensors */
	{
		struct
		{
			const char *name;
			int64		d0,
						d1;
			const float *p;
		}			t[] = {
			{"b.idx", nb, keep_b, IndexesAsFloat(s->bidx, (int64) nb * keep_b)},
			{"b.val", nb, keep_b, s->bval},
			{"m.idx", Max(ni, 1), keep_m, IndexesAsFloat(s->midx, (int64) Max(ni, 1) * keep_m)},
			{"m.val", Max(ni, 1), keep_m, s->mval},
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
			 "{\"model\": \"bundle\", \"fit\": {\"lambda\": %.9g, \"beta\": %.9g, \"view_norm\": %.9g, "
			 "\"content\": %.9g, \"keep_b\": %d, \"keep_m\": %d, "
			 "\"bundles\": %d, \"items\": %d, \"users\": " INT64_FORMAT ", \"pairs\": " INT64_FORMAT ", \"heldout\": " INT64_FORMAT
			 ", \"holdout_seed\": %s, \"catalogue\": \"%s\"%s}}",
			 p->lambda, p->beta, p->view_norm, p->content, keep_b, keep_m, nb, ni, nu, pairs, heldout,
			 p->holdout ? psprintf(UINT64_FORMAT, p->seed) : "null", catalogue,
			 strcmp(method, "dense") == 0 ? "" : psprintf(", \"method\": \"%s\", \"rank\": %d", method, Min(p->rank, nb)));
	return RecsysWeightsBuild(RS_KIND_BUNDLE, 10, desc, data, config, strlen(config));
}

static void
FitSparseAlloc(int32 nb, int32 ni, const FitParams *p, FitSparse *s)
{
	s->keep_b = Min(p->keep_b, nb);
	s->keep_m = Min(p->keep_m, nb);
	s->bidx = palloc_extended(sizeof(int32) * (Size) nb * s->keep_b, MCXT_ALLOC_HUGE);
	s->bval = palloc_extended(sizeof(float) * (Size) nb * s->keep_b, MCXT_ALLOC_HUGE);
	s->midx = palloc_extended(sizeof(int32) * (Size) Max(ni, 1) * s->keep_m, MCXT_ALLOC_HUGE);
	s->mval = palloc_extended(sizeof(float) * (Size) Max(ni, 1) * s->keep_m, MCXT_ALLOC_HUGE);
}

/*
 * the dense fit from the customers' statistics: the catalogue's rows added (once, also after a merge), the EASE
 * solve on g (consumed), then the sparse parts
 */
static bytea *
FitFinish(float *g, int32 nb, int32 ni, int64 nu, const RsItemView *v, float *count, const FitParams *p,
		  int64 pairs, int64 heldout, const char *catalogue)
{
	FitSparse	s;
	int			rc;

	FitSparseAlloc(nb, ni, p, &s);
	rs_fit_content(nb, ni, v, p->content, g);
	rc = rs_fit_sparse(g, nb, ni, v, p->lambda, s.keep_b, s.keep_m, s.bidx, s.bval, s.midx, s.mval, count);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the regularised Gram matrix is not positive definite (LAPACK info %d)", rc),
				 errhint("Use a larger lambda.")));
	return FitWeights(nb, ni, nu, v, count, p, &s, pairs, heldout, catalogue, "dense");
}

/* the statistics of a fit over this node's prepared data, and what finishing it needs */
typedef struct FitStats
{
	FitParams	p;
	RecsysPrepared		d;
	RsItemView	v;
	float	   *g,
			   *count;
	int64		pairs,
				heldout;
} FitStats;

/* the options, this node's prepared data and the catalogue's item view */
static void
FitLoad(Jsonb *opts, FitStats *st)
{
	MemoryContext outer = CurrentMemoryContext;

	memset(st, 0, sizeof(*st));
	FitParamsRead(opts, &st->p);
	RecsysCoreHooks();
	SPI_connect();
	RecsysPreparedLoad(&st->d, outer);
	SPI_finish();
	{
		RsRows		bi = {st->d.bundle_items.ptr, st->d.bundle_items.idx};

		rs_item_view_build(st->d.nb, st->d.ni, bi, &st->v);
	}
	st->count = palloc0(sizeof(float) * st->d.nb);
}

/* the dense fit's statistics: the bundles x bundles Gram matrix, bounded in memory */
static void
FitStatsCompute(FitStats *st)
{
	if (st->d.nb > RECSYS_BUNDLE_MAX_DENSE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the dense bundle fit holds at most %d bundles, got %d", RECSYS_BUNDLE_MAX_DENSE, st->d.nb),
				 errhint("Fit on one node with recsys.bundle_fit, which fits past dense_max bundles at low rank.")));
	st->g = palloc_extended(sizeof(float) * (Size) st->d.nb * st->d.nb, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	FitGram(&st->d, &st->v, &st->p, st->g, st->count, &st->pairs, &st->heldout);
}

/*
 * The low-rank fit (core/rs_lowrank.h): (bundles + items) x rank floats and passes over
 * the customers instead of a bundles x bundles matrix and its inverse.
 */
static bytea *
FitLowrank(FitStats *st)
{
	RsFitRows	rows;
	FitSparse	s;
	int			rc;

	rows.nu = st->d.nu;
	rows.nb = st->d.nb;
	rows.ni = st->d.ni;
	rows.user_bundles = (RsRows) {st->d.user_bundles.ptr, st->d.user_bundles.idx};
	rows.user_items = (RsRows) {st->d.user_items.ptr, st->d.user_items.idx};
	rows.v = &st->v;
	rows.beta = st->p.beta;
	rows.view_norm = st->p.view_norm;
	rows.content = st->p.content;
	rows.holdout = st->p.holdout;
	rows.seed = st->p.seed;
	FitSparseAlloc(st->d.nb, st->d.ni, &st->p, &s);
	rc = rs_fit_lowrank(&rows, st->p.rank, RECSYS_LOWRANK_ITERS, st->p.seed, st->p.lambda, s.keep_b, s.keep_m,
						s.bidx, s.bval, s.midx, s.mval, st->count, &st->pairs, &st->heldout);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the low-rank bundle fit failed (LAPACK info %d)", rc),
				 errhint("Use another rank or a larger lambda.")));
	return FitWeights(st->d.nb, st->d.ni, st->d.nu, &st->v, st->count, &st->p, &s, st->pairs, st->heldout,
					  st->d.catalogue, "lowrank");
}

PG_FUNCTION_INFO_V1(bundle_fit);

Datum
bundle_fit(PG_FUNCTION_ARGS)
{
	FitStats	st;

	FitLoad(PG_GETARG_JSONB_P(0), &st);
	/* exact where the bundles' square fits the bound; past it, memory linear in the catalogue */
	if (st.d.nb > st.p.dense_max)
		PG_RETURN_BYTEA_P(FitLowrank(&st));
	FitStatsCompute(&st);
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

	FitLoad(PG_GETARG_JSONB_P(0), &st);
	FitStatsCompute(&st);
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
			 "{\"model\": \"bundle_partial\", \"partial\": {\"beta\": %.9g, \"view_norm\": %.9g, "
			 "\"bundles\": %d, \"items\": %d, "
			 "\"users\": %d, \"pairs\": " INT64_FORMAT ", \"heldout\": " INT64_FORMAT ", \"holdout_seed\": %s, "
			 "\"catalogue\": \"%s\"}}",
			 st.p.beta, st.p.view_norm, st.d.nb, st.d.ni, st.d.nu, st.pairs, st.heldout,
			 st.p.holdout ? psprintf(UINT64_FORMAT, st.p.seed) : "null", st.d.catalogue);
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
				view_norm = 1,
				seed = -1;
	const char *fingerprint = "";
	double	   *sum = NULL;
	float	   *count = NULL,
			   *g;
	RsFormatView first;
	RsItemView	v;

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
		part = RecsysSubConfig(RecsysViewConfig(&view), "partial");
		if (view.kind != RS_KIND_BUNDLE || part == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("partials[%d] is not a partial fit", e + 1),
					 errhint("Pass values made by recsys.fit_partial.")));
		if (used == 0)
		{
			first = view;
			nb = RecsysConfigInt(part, "bundles", -1, 1, RECSYS_BUNDLE_MAX_DENSE);
			ni = RecsysConfigInt(part, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1);
			beta = RecsysConfigFloat(part, "beta", -1, 0, 1e6);
			view_norm = RecsysConfigFloat(part, "view_norm", 1, 0, 1);
			seed = PartialSeed(part);
			fingerprint = PartialCatalogue(part);
			npacked = (int64) nb * (nb + 1) / 2;
			sum = palloc_extended(sizeof(double) * npacked, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			count = palloc0(sizeof(float) * nb);
		}
		else
		{
			/* every shard must have fitted the same catalogue with the same options */
			bool		same = RecsysConfigInt(part, "bundles", -1, 1, RECSYS_BUNDLE_MAX_DENSE) == nb &&
				RecsysConfigInt(part, "items", -1, 0, RECSYS_BUNDLE_MAX_INDEX - 1) == ni &&
				RecsysConfigFloat(part, "beta", -1, 0, 1e6) == beta &&
				RecsysConfigFloat(part, "view_norm", 1, 0, 1) == view_norm && PartialSeed(part) == seed &&
				strcmp(PartialCatalogue(part), fingerprint) == 0;

			for (int t = 0; same && t < lengthof(catalogue); t++)
				same = SameTensor(&view, &first, catalogue[t]);
			if (!same)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("partials[%d] was fitted on another catalogue or with other options than the first partial", e + 1),
						 errdetail("Bundles, items, their membership, beta, view_norm and holdout_seed must agree."),
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
	/* the merge's own beta, view_norm and holdout_seed options, if given, must be the partials' */
	if ((RecsysConfigGet(opts, "beta") && p.beta != beta) ||
		(RecsysConfigGet(opts, "view_norm") && p.view_norm != view_norm) || (p.holdout && (double) p.seed != seed))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options beta, view_norm and holdout_seed must match the partials' "
						"(beta %g, view_norm %g, holdout_seed %s)",
						beta, view_norm, seed < 0 ? "null" : psprintf("%.0f", seed))));
	p.beta = beta;
	p.view_norm = view_norm;
	p.holdout = seed >= 0;
	p.seed = p.holdout ? (uint64) seed : 0;

	/* the catalogue's item view, as the first partial carries it (every other one agrees) */
	v.idf = (float *) PartialTensor(&first, "item.idf", Max(ni, 1), 1);
	v.mass = (float *) PartialTensor(&first, "item.mass", Max(ni, 1), 1);
	nnz = RecsysTensorLen(&first, "ib.idx");
	v.ib_ptr = RecsysIndexesFromFloat(PartialTensor(&first, "ib.ptr", (int64) ni + 1, 1), (int64) ni + 1, nnz + 1, "ib.ptr");
	for (int32 i = 0; i < ni; i++)
		if (v.ib_ptr[i] > v.ib_ptr[i + 1])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid partial: tensor \"ib.ptr\" is not monotone")));
	v.ib_idx = RecsysIndexesFromFloat(PartialTensor(&first, "ib.idx", nnz, 1), nnz, nb, "ib.idx");
	v.ib_w = (float *) PartialTensor(&first, "ib.w", nnz, 1);

	g = palloc_extended(sizeof(float) * (Size) nb * nb, MCXT_ALLOC_HUGE);
	for (int64 i = 0, k = 0; i < nb; i++)
		for (int64 j = i; j < nb; j++)
			g[i * nb + j] = (float) sum[k++];
	pfree(sum);
	PG_RETURN_BYTEA_P(FitFinish(g, nb, ni, users, &v, count, &p, pairs, heldout, fingerprint));
}

