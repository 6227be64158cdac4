/*
 * scorer_epochs.c — a learned scorer's epochs and validation over a version's samples held
 * in memory: recsys.scorer_epoch (one epoch, what mlp_train over the shuffled samples did)
 * and recsys.scorer_ranks (the rank of each validating customer's positives).
 *
 * The training driver runs one epoch per statement and commits between them. Through SQL,
 * each epoch sorted every sample by a per-epoch shuffle key and fed the aggregate row by
 * row: at a million customers that was 12 s an epoch, mostly the sort and the per-row
 * calls. Here the samples are read once per backend into arrays grouped by customer, and an
 * epoch is a shuffle of the customers and mini-batch steps straight through the core.
 * The cache is keyed by the version and by the transaction that wrote its samples, so a
 * version whose samples were written again, or a resumed one in another backend, reads them
 * afresh; recsys.scorer_samples_release frees it when a training ends.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "model_io.h"
#include "nn_model.h"

typedef struct ScorerSamples
{
	MemoryContext cxt;
	int64		version_id;
	char	   *writer;			/* xmin of the samples, as text */
	int			d;				/* features per row */
	int64		n;
	float	   *x;				/* n x d, grouped by customer, in a customer by item (NULL last) */
	float	   *y;
	int32	   *item;			/* -1: NULL, or no features (a validating customer's missed positive) */
	bool	   *valid;
	int32		ngroups;
	int64	   *gptr;			/* group g: rows gptr[g] .. gptr[g + 1] */
	int32	   *guser;
} ScorerSamples;

static ScorerSamples *samples_cache = NULL;

static void
SamplesRelease(void)
{
	if (samples_cache)
		MemoryContextDelete(samples_cache->cxt);
	samples_cache = NULL;
}

/* the writer of version v's samples (xmin of one row, as text), NULL when it has none */
static char *
SamplesWriter(int64 version_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(version_id)};
	char	   *w = NULL;

	if (SPI_execute_with_args("SELECT s.xmin::text FROM recsys.train_samples s WHERE s.version_id = $1 LIMIT 1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read recsys.train_samples");
	if (SPI_processed == 1)
		w = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return w;
}

typedef struct RowKey
{
	int32		user;
	int32		item;
	int64		row;
} RowKey;

static int
RowKeyCmp(const void *a, const void *b)
{
	const RowKey *x = a,
			   *y = b;

	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	if (x->item != y->item)
		return (uint32) x->item < (uint32) y->item ? -1 : 1;	/* -1 (NULL) last */
	return x->row < y->row ? -1 : x->row > y->row;
}

/* reads version v's samples (inside SPI) into a new cache */
static ScorerSamples *
SamplesLoad(int64 version_id, const char *writer)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "recsys scorer samples", ALLOCSET_DEFAULT_SIZES);
	ScorerSamples *c = MemoryContextAllocZero(cxt, sizeof(ScorerSamples));
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(version_id)};
	SPIPlanPtr	plan;
	Portal		portal;
	int64		cap = 65536,
				n = 0;
	float	   *x,
			   *y;
	int32	   *user,
			   *item;
	bool	   *valid;
	RowKey	   *keys;

	c->cxt = cxt;
	c->version_id = version_id;
	c->writer = MemoryContextStrdup(cxt, writer);
	c->d = -1;
	PG_TRY();
	{
		MemoryContext old;

		plan = SPI_prepare("SELECT s.user_idx, s.valid, s.bundle_idx, s.x, s.y FROM recsys.train_samples s "
						   "WHERE s.version_id = $1", 1, argtypes);
		if (plan == NULL)
			elog(ERROR, "could not plan the samples' read: %s", SPI_result_code_string(SPI_result));
		portal = SPI_cursor_open(NULL, plan, args, NULL, true);
		old = MemoryContextSwitchTo(cxt);
		x = NULL;				/* once the first row says how many features */
		y = palloc_extended(sizeof(float) * cap, MCXT_ALLOC_HUGE);
		user = palloc_extended(sizeof(int32) * cap, MCXT_ALLOC_HUGE);
		item = palloc_extended(sizeof(int32) * cap, MCXT_ALLOC_HUGE);
		valid = palloc_extended(sizeof(bool) * cap, MCXT_ALLOC_HUGE);
		MemoryContextSwitchTo(old);
		for (;;)
		{
			SPI_cursor_fetch(portal, true, 10000);
			if (SPI_processed == 0)
				break;
			CHECK_FOR_INTERRUPTS();
			for (uint64 r = 0; r < SPI_processed; r++)
			{
				HeapTuple	t = SPI_tuptable->vals[r];
				TupleDesc	td = SPI_tuptable->tupdesc;
				bool		isnull;
				Datum		xd;
				ArrayType  *xa;
				float4		yv;
				int			len;

				yv = DatumGetFloat4(SPI_getbinval(t, td, 5, &isnull));
				if (isnull)
					continue;
				xd = SPI_getbinval(t, td, 4, &isnull);
				if (isnull)
				{
					/* no features: a validating customer's positive missed by the candidates, a miss */
					if (!DatumGetBool(SPI_getbinval(t, td, 2, &isnull)))
						continue;
					xa = NULL;
					len = c->d;
				}
				else
				{
					xa = DatumGetArrayTypeP(xd);
					len = ARR_NDIM(xa) == 1 ? ARR_DIMS(xa)[0] : 0;
				}
				if (c->d < 0 && xa != NULL)
				{
					if (len < 1 || len > 1024)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("the samples of version " INT64_FORMAT " have %d features; a scorer takes 1 to 1024",
										version_id, len)));
					c->d = len;
					x = MemoryContextAllocExtended(cxt, sizeof(float) * cap * c->d, MCXT_ALLOC_HUGE);
				}
				if (c->d < 0)
					continue;	/* a miss before any row with features: nothing to rank it among */
				if (xa && (len != c->d || ARR_ELEMTYPE(xa) != FLOAT4OID || (ARR_HASNULL(xa) && array_contains_nulls(xa))))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("the samples of version " INT64_FORMAT " must each have %d features without NULLs",
									version_id, c->d)));
				if (isnan(yv) || yv < 0 || yv > 1)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("target %g is not usable for bce (0 to 1)", yv)));
				if (n == cap)
				{
					cap *= 2;
					x = repalloc_huge(x, sizeof(float) * cap * c->d);
					y = repalloc_huge(y, sizeof(float) * cap);
					user = repalloc_huge(user, sizeof(int32) * cap);
					item = repalloc_huge(item, sizeof(int32) * cap);
					valid = repalloc_huge(valid, sizeof(bool) * cap);
				}
				for (int f = 0; f < c->d; f++)
				{
					float		v = xa ? ((const float4 *) ARR_DATA_PTR(xa))[f] : 0;

					if (isnan(v) || isinf(v))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("x holds NaN or infinity at position %d", f + 1)));
					x[n * c->d + f] = v;
				}
				y[n] = yv;
				user[n] = DatumGetInt32(SPI_getbinval(t, td, 1, &isnull));
				valid[n] = DatumGetBool(SPI_getbinval(t, td, 2, &isnull));
				item[n] = DatumGetInt32(SPI_getbinval(t, td, 3, &isnull));
				if (isnull || xa == NULL)
					item[n] = -1;
				if (xa && (Pointer) xa != DatumGetPointer(xd))
					pfree(xa);
				n++;
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
		SPI_freeplan(plan);

		/* grouped by customer, in a customer by item: the order mlp_train was fed */
		keys = palloc_extended(sizeof(RowKey) * Max(n, 1), MCXT_ALLOC_HUGE);
		for (int64 r = 0; r < n; r++)
			keys[r] = (RowKey)
		{
			user[r], item[r], r
		};
		qsort(keys, n, sizeof(RowKey), RowKeyCmp);
		old = MemoryContextSwitchTo(cxt);
		c->n = n;
		c->x = palloc_extended(sizeof(float) * Max(n, 1) * Max(c->d, 1), MCXT_ALLOC_HUGE);
		c->y = palloc_extended(sizeof(float) * Max(n, 1), MCXT_ALLOC_HUGE);
		c->item = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);
		c->valid = palloc_extended(sizeof(bool) * Max(n, 1), MCXT_ALLOC_HUGE);
		c->ngroups = 0;
		for (int64 r = 0; r < n; r++)
			if (r == 0 || keys[r].user != keys[r - 1].user)
				c->ngroups++;
		c->gptr = palloc_extended(sizeof(int64) * (c->ngroups + 1), MCXT_ALLOC_HUGE);
		c->guser = palloc_extended(sizeof(int32) * Max(c->ngroups, 1), MCXT_ALLOC_HUGE);
		MemoryContextSwitchTo(old);
		{
			int32		g = 0;

			for (int64 r = 0; r < n; r++)
			{
				int64		s = keys[r].row;

				if (r == 0 || keys[r].user != keys[r - 1].user)
				{
					c->gptr[g] = r;
					c->guser[g++] = keys[r].user;
				}
				memcpy(c->x + r * c->d, x + s * c->d, sizeof(float) * c->d);
				c->y[r] = y[s];
				c->item[r] = item[s];
				c->valid[r] = valid[s];
			}
			c->gptr[g] = n;
		}
		pfree(keys);
		if (x)
			pfree(x);
		pfree(y);
		pfree(user);
		pfree(item);
		pfree(valid);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return c;
}

/* version v's samples as written now: the cache when it still holds them, else read afresh */
static ScorerSamples *
SamplesGet(int64 version_id)
{
	char	   *writer;

	SPI_connect();
	writer = SamplesWriter(version_id);
	if (samples_cache && (samples_cache->version_id != version_id || writer == NULL ||
						  strcmp(samples_cache->writer, writer) != 0))
		SamplesRelease();
	if (writer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("version " INT64_FORMAT " has no training samples", version_id),
				 errhint("Its training stores them first (CALL recsys.train).")));
	if (samples_cache == NULL)
		samples_cache = SamplesLoad(version_id, writer);
	SPI_finish();
	return samples_cache;
}

/* a scorer's weights as a net of one output over d features */
static void
ScorerLoad(bytea *weights, int d, RecsysNet *net)
{
	const RsKindOps *ops;

	RecsysCoreHooks();
	RecsysNetLoad(net, weights);
	ops = rs_kind_ops(net->kind);
	if (ops->input != RS_INPUT_ROWS || ops->out_width(net) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a scorer must be weights of one output over rows of features, got kind %s",
						rs_kind_name(net->kind))));
	if (ops->in_width(net) != d)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d features but the model takes %d", d, ops->in_width(net))));
}

/* a scorer in training: the net, its optimiser and moments, the epoch's tally */
typedef struct ScorerTrainer
{
	RecsysNet	net;
	const RsKindOps *ops;
	RsOptim		opt;
	int			loss_kind;
	rs_real    *grads,
			   *m,
			   *v;
	int64		samples,
				updates;
	double		loss_sum;
} ScorerTrainer;

/*
 * one optimiser step over the n buffered rows (none: nothing), in ngroups customers' groups (listwise);
 * returns 0, the rows left buffered
 */
static int
ScorerStep(ScorerTrainer *t, const float *x, const float *y, int n, const int32 *gptr, int ngroups)
{
	RsBatch		b = {.n = n, .x = x, .y = y, .loss = t->loss_kind, .gptr = gptr, .ngroups = ngroups};
	double		l;

	if (n == 0)
		return 0;
	l = t->ops->train_step(&t->net, &t->opt, t->grads, t->m, t->v, &b);
	RecsysCheckLoss(l, t->samples);
	t->loss_sum += l * n;
	t->samples += n;
	t->updates++;
	return 0;
}

/* groups by their epoch's key, then by index */
static int
GroupKeyCmp(const void *a, const void *b, void *arg)
{
	const int32 *keys = arg;
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	if (keys[x] != keys[y])
		return keys[x] < keys[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* ---------- recsys.scorer_epoch(version_id bigint, scorer bytea, epoch integer, options jsonb) ---------- */

PG_FUNCTION_INFO_V1(scorer_epoch);

Datum
scorer_epoch(PG_FUNCTION_ARGS)
{
	int64		version_id = PG_GETARG_INT64(0);
	bytea	   *weights = PG_GETARG_BYTEA_P(1);
	int32		epoch = PG_GETARG_INT32(2);
	Jsonb	   *options = PG_GETARG_JSONB_P(3);
	ScorerSamples *c;
	ScorerTrainer t = {0};
	int			batch;
	float	   *xb,
			   *yb;
	int32	   *order,
			   *keys,
			   *gptr;
	int			pending = 0,
				ngroups = 0;
	int64		widest = 0;
	bool		listwise;

	RecsysMlpTrainOptions(options, &t.opt, &batch, &t.loss_kind);
	c = SamplesGet(version_id);
	if (c->ngroups == 0)
		PG_RETURN_NULL();
	ScorerLoad(weights, c->d, &t.net);
	t.ops = rs_kind_ops(t.net.kind);
	t.grads = palloc_extended(sizeof(rs_real) * t.net.nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	t.m = palloc_extended(sizeof(rs_real) * t.net.nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	t.v = palloc_extended(sizeof(rs_real) * t.net.nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	/*
	 * Listwise, a mini-batch holds whole customers (a softmax over each one's candidates): at least batch rows, so
	 * up to one customer's rows more
	 */
	listwise = t.loss_kind == RS_LOSS_LISTWISE;	/* one output per row: ScorerLoad checked it */
	for (int32 g = 0; listwise && g < c->ngroups; g++)
		widest = Max(widest, c->gptr[g + 1] - c->gptr[g]);
	if (widest > MaxAllocSize / sizeof(float) / c->d - batch)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a customer has too many samples for a listwise batch: " INT64_FORMAT, widest)));
	xb = palloc(sizeof(float) * (batch + widest) * c->d);
	yb = palloc(sizeof(float) * (batch + widest));
	gptr = palloc(sizeof(int32) * (batch + widest + 1));
	gptr[0] = 0;

	/*
	 * The customers in a fresh order each epoch, each one's rows together: the order the SQL epoch sorted them
	 * in (hashint8(user * 1000 + epoch), as int4), so a training takes the same steps as it did through mlp_train
	 */
	order = palloc_extended(sizeof(int32) * c->ngroups, MCXT_ALLOC_HUGE);
	keys = palloc_extended(sizeof(int32) * c->ngroups, MCXT_ALLOC_HUGE);
	for (int32 g = 0; g < c->ngroups; g++)
	{
		order[g] = g;
		keys[g] = DatumGetInt32(DirectFunctionCall1(hashint8, Int64GetDatum((int64) c->guser[g] * 1000 + epoch)));
	}
	qsort_arg(order, c->ngroups, sizeof(int32), GroupKeyCmp, keys);
	for (int32 q = 0; q < c->ngroups; q++)
	{
		int32		g = order[q];

		if ((q & 255) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int64 r = c->gptr[g]; r < c->gptr[g + 1]; r++)
		{
			if (c->valid[r] || c->item[r] < 0)
				continue;
			memcpy(xb + (int64) pending * c->d, c->x + r * c->d, sizeof(float) * c->d);
			yb[pending++] = c->y[r];
			if (!listwise && pending == batch)
				pending = ScorerStep(&t, xb, yb, pending, NULL, 0);
		}
		if (listwise && pending > gptr[ngroups])
		{
			gptr[++ngroups] = pending;
			if (pending >= batch)
				ngroups = pending = ScorerStep(&t, xb, yb, pending, gptr, ngroups);
		}
	}
	ScorerStep(&t, xb, yb, pending, gptr, ngroups);
	if (t.samples == 0)
		PG_RETURN_NULL();			/* every customer validates: the scorer stays as it was */
	{
		StringInfoData extra;

		initStringInfo(&extra);
		appendStringInfo(&extra, "{\"train\": {\"samples\": " INT64_FORMAT ", \"steps\": " INT64_FORMAT
						 ", \"merged_parts\": 1, \"mean_loss\": %.9g, \"optimizer\": \"%s\", \"lr\": %.9g, \"batch\": %d}}",
						 t.samples, t.updates, t.loss_sum / t.samples, rs_optim_name(t.opt.kind), t.opt.lr, batch);
		PG_RETURN_BYTEA_P(RecsysNetSave(&t.net, extra.data));
	}
}

/* ---------- recsys.scorer_ranks(version_id bigint, scorer bytea) ---------- */

/*
 * Per validating customer, the rank of each positive (y > 0, an item) among their scored rows
 * (by score, then item, as the SQL validation ranked); one row with rank NULL for a
 * customer without one.
 */
PG_FUNCTION_INFO_V1(scorer_ranks);

Datum
scorer_ranks(PG_FUNCTION_ARGS)
{
	int64		version_id = PG_GETARG_INT64(0);
	bytea	   *weights = PG_GETARG_BYTEA_P(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ScorerSamples *c;
	RecsysNet	net;
	const RsKindOps *ops;
	float	   *score;
	float	   *xb;
	int64	   *rows;
	const int	chunk = 4096;
	int			pending = 0;

	InitMaterializedSRF(fcinfo, 0);
	c = SamplesGet(version_id);
	if (c->ngroups == 0)
		return (Datum) 0;
	ScorerLoad(weights, c->d, &net);
	ops = rs_kind_ops(net.kind);
	score = palloc_extended(sizeof(float) * c->n, MCXT_ALLOC_HUGE);
	xb = palloc(sizeof(float) * chunk * c->d);
	rows = palloc(sizeof(int64) * chunk);
	/* the validating rows' scores, a chunk at a time */
	for (int64 r = 0; r <= c->n; r++)
	{
		if (r < c->n && c->valid[r] && c->item[r] >= 0)
		{
			memcpy(xb + (int64) pending * c->d, c->x + r * c->d, sizeof(float) * c->d);
			rows[pending++] = r;
		}
		if (pending == chunk || (r == c->n && pending > 0))
		{
			RsBatch		b = {.n = pending, .x = xb};
			const rs_real *out = ops->forward(&net, &b);

			CHECK_FOR_INTERRUPTS();
			for (int j = 0; j < pending; j++)
				score[rows[j]] = out[j];
			pending = 0;
		}
	}
	for (int32 g = 0; g < c->ngroups; g++)
	{
		int64		r0 = c->gptr[g],
					r1 = c->gptr[g + 1];
		bool		validating = false,
					positive = false;
		Datum		values[3];
		bool		nulls[3] = {false};

		for (int64 r = r0; r < r1; r++)
			validating |= c->valid[r];
		if (!validating)
			continue;
		values[0] = Int32GetDatum(c->guser[g]);
		for (int64 r = r0; r < r1; r++)
		{
			int32		rk = 1;

			if (!c->valid[r] || c->item[r] < 0 || !(c->y[r] > 0))
				continue;
			for (int64 q = r0; q < r1; q++)
				if (q != r && c->valid[q] && c->item[q] >= 0 &&
					(score[q] > score[r] || (score[q] == score[r] && c->item[q] < c->item[r])))
					rk++;
			values[1] = Float4GetDatum(c->y[r]);
			values[2] = Int32GetDatum(rk);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			positive = true;
		}
		if (!positive)
		{
			nulls[1] = nulls[2] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* ---------- recsys.scorer_samples_release() ---------- */

PG_FUNCTION_INFO_V1(scorer_samples_release);

Datum
scorer_samples_release(PG_FUNCTION_ARGS)
{
	bool		held = samples_cache != NULL;

	SamplesRelease();
	PG_RETURN_BOOL(held);
}
