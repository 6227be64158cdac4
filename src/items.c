/*
 * items.c — the item model: recsys.item_samples (what the learned blend trains and
 * validates on: each customer's last basket held out) and recsys.item_rank (what
 * recommend_items serves), over a per-backend cache of the prepared baskets, the shop's
 * view of each item, the item filters and labels, and the active version of the item
 * model (an mlp over core/rs_items.h's features, with the GRU over each customer's item
 * sequence attached: recsys.item_attach), dropped with the serving caches.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "core/rs_bundle.h"
#include "core/rs_fit.h"
#include "core/rs_items.h"
#include "bundle_model.h"
#include "model_io.h"
#include "nn_model.h"
#include "prepared.h"
#include "serving.h"

/*
 * Every event with its basket key (the basket, else its day, else 0), customer by customer in time order (the
 * index's order, so no sort); LoadBaskets numbers each customer's baskets from 1 in time order in C. (A window and
 * two sorts over every event in SQL took most of the 54 s a backend's first recommend_items took on 18 M events.)
 */
#define ITEM_EVENTS_QUERY \
	"SELECT e.user_idx, e.item_idx, " \
	"       coalesce(e.basket_idx, -extract(epoch FROM date_trunc('day', e.ts))::bigint, 0), e.ts " \
	"  FROM recsys.events_clean e ORDER BY e.user_idx, e.ts"

typedef struct ItemCache
{
	MemoryContext cxt;
	uint64		generation;
	char		model[NAMEDATALEN];
	int64		version_id;		/* 0: no trained version, the default blend */
	int32		ni,
				nu;
	RecsysCsr	baskets;		/* user -> items, parallel bno */
	int32	   *bno;
	RsItemStats stats;
	char	  **ext;			/* item ids */
	char	  **label;			/* names, NULL: "item <id>" */
	char	  **category;		/* NULL: none */
	int32	   *by_buyers;		/* every item, most bought first (the fill after the candidates) */
	float	   *price;			/* NaN: none */
	bool	   *in_stock;
	bool		has_scorer;
	RecsysNet	scorer;
	bool		has_encoder;	/* the GRU of feature RS_ITEM_FEAT_SEQ */
	RecsysNet	encoder;
	struct ItemNeighbours *nbr;	/* similar_items and complete_bundle's data, loaded on first use */
	/* scratch */
	int32	   *slot;
	RsItemHistory hist;
	int32	   *cand;
	float	   *x,
			   *score;
	uint8	   *seen;
	int32		seq[RS_ITEM_SEQ_TAIL];
} ItemCache;

static ItemCache *item_cache = NULL;

static struct ItemNeighbours *NeighboursGet(ItemCache *c);
static void ItemCooc(ItemCache *c, int m);

/* one event of a customer while their baskets are numbered */
typedef struct BasketRow
{
	int32		item;
	int32		bno;
	int64		bk;				/* basket key */
	TimestampTz ts;
	bool		has_ts;
	TimestampTz first;			/* the basket's first time (has_first: any) */
	bool		has_first;
} BasketRow;

static int
BasketRowByKey(const void *a, const void *b)
{
	const BasketRow *x = a,
			   *y = b;

	return x->bk < y->bk ? -1 : x->bk > y->bk;
}

/* baskets in time order: without a time first, then by their first time, then by key */
static int
BasketRowByBasket(const void *a, const void *b)
{
	const BasketRow *x = a,
			   *y = b;

	if (x->has_first != y->has_first)
		return x->has_first ? 1 : -1;
	if (x->has_first && x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->bk < y->bk ? -1 : x->bk > y->bk;
}

static int
BasketRowByPair(const void *a, const void *b)
{
	const BasketRow *x = a,
			   *y = b;

	if (x->bno != y->bno)
		return x->bno < y->bno ? -1 : 1;
	return x->item < y->item ? -1 : x->item > y->item;
}

/*
 * Numbers one customer's n events' baskets from 1 in time order and appends their distinct (item, basket)
 * pairs, by basket then item, to the cache's arrays from *np (room grown as needed).
 */
static void
BasketsOfCustomer(ItemCache *c, BasketRow *r, int n, int64 *np, int64 *cap)
{
	int			bno = 0;

	qsort(r, n, sizeof(BasketRow), BasketRowByKey);
	for (int i = 0, j; i < n; i = j)
	{
		bool		has = false;
		TimestampTz first = 0;

		for (j = i; j < n && r[j].bk == r[i].bk; j++)
			if (r[j].has_ts && (!has || r[j].ts < first))
				first = r[j].ts, has = true;
		for (int q = i; q < j; q++)
			r[q].first = first, r[q].has_first = has;
	}
	qsort(r, n, sizeof(BasketRow), BasketRowByBasket);
	for (int i = 0; i < n; i++)
		r[i].bno = (i > 0 && r[i].bk == r[i - 1].bk) ? bno : ++bno;
	qsort(r, n, sizeof(BasketRow), BasketRowByPair);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && r[i].bno == r[i - 1].bno && r[i].item == r[i - 1].item)
			continue;
		if (*np == *cap)
		{
			if (*cap >= PG_INT32_MAX / 2)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many (item, basket) pairs for the item cache: more than %d", PG_INT32_MAX / 2)));
			*cap *= 2;
			c->baskets.idx = repalloc_huge(c->baskets.idx, sizeof(int32) * *cap);
			c->bno = repalloc_huge(c->bno, sizeof(int32) * *cap);
		}
		c->baskets.idx[*np] = r[i].item;
		c->bno[(*np)++] = r[i].bno;
	}
}

static void
LoadBaskets(ItemCache *c)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, ITEM_EVENTS_QUERY, 0, NULL, NULL, NULL, true, 0);
	int64		n = 0,
				cap = 1024;
	int			rcap = 256,
				nr = 0;
	BasketRow  *rows = palloc(sizeof(BasketRow) * rcap);
	int32		cur = -1;

	c->baskets.nrows = c->nu;
	c->baskets.ptr = MemoryContextAllocZero(c->cxt, sizeof(int32) * ((Size) c->nu + 1));
	c->baskets.idx = MemoryContextAllocExtended(c->cxt, sizeof(int32) * cap, MCXT_ALLOC_HUGE);
	c->bno = MemoryContextAllocExtended(c->cxt, sizeof(int32) * cap, MCXT_ALLOC_HUGE);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	t = SPI_tuptable->vals[k];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		u = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull)),
						item = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));

			/* appended after the counts were read: ignored, like new ids in serving */
			if (u < 0 || u >= c->nu || item < 0 || item >= c->ni)
				continue;
			if (u != cur && cur >= 0)
			{
				BasketsOfCustomer(c, rows, nr, &n, &cap);
				c->baskets.ptr[cur + 1] = (int32) n;
				nr = 0;
			}
			cur = u;
			if (nr == rcap)
			{
				rcap *= 2;
				rows = repalloc_huge(rows, sizeof(BasketRow) * rcap);
			}
			rows[nr].item = item;
			rows[nr].bk = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
			rows[nr].ts = DatumGetTimestampTz(SPI_getbinval(t, d, 4, &isnull));
			rows[nr].has_ts = !isnull;
			nr++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (cur >= 0)
	{
		BasketsOfCustomer(c, rows, nr, &n, &cap);
		c->baskets.ptr[cur + 1] = (int32) n;
	}
	pfree(rows);
	/* customers without events keep empty ranges: each start is the previous end */
	for (int32 u = 0; u < c->nu; u++)
		if (c->baskets.ptr[u + 1] < c->baskets.ptr[u])
			c->baskets.ptr[u + 1] = c->baskets.ptr[u];
}

static void
LoadAttrs(ItemCache *c)
{
	Portal		portal = SPI_cursor_open_with_args(NULL,
												   "SELECT m.idx, m.ext_id, a.name, a.price, a.in_stock, a.category FROM recsys.id_map m "
												   "LEFT JOIN recsys.item_attrs a ON a.item_idx = m.idx WHERE m.space = 'item'",
												   0, NULL, NULL, NULL, true, 0);

	c->ext = MemoryContextAllocZero(c->cxt, sizeof(char *) * Max(c->ni, 1));
	c->label = MemoryContextAllocZero(c->cxt, sizeof(char *) * Max(c->ni, 1));
	c->category = MemoryContextAllocZero(c->cxt, sizeof(char *) * Max(c->ni, 1));
	c->price = MemoryContextAlloc(c->cxt, sizeof(float) * Max(c->ni, 1));
	c->in_stock = MemoryContextAlloc(c->cxt, sizeof(bool) * Max(c->ni, 1));
	for (int32 i = 0; i < c->ni; i++)
		c->price[i] = NAN, c->in_stock[i] = true;
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		i = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
			Datum		v;

			if (i < 0 || i >= c->ni)
				continue;
			c->ext[i] = MemoryContextStrdup(c->cxt, SPI_getvalue(t, d, 2));
			if (SPI_getvalue(t, d, 3))
				c->label[i] = MemoryContextStrdup(c->cxt, SPI_getvalue(t, d, 3));
			v = SPI_getbinval(t, d, 4, &isnull);
			if (!isnull)
				c->price[i] = (float) DatumGetFloat8(v);
			v = SPI_getbinval(t, d, 5, &isnull);
			if (!isnull)
				c->in_stock[i] = DatumGetBool(v);
			if (SPI_getvalue(t, d, 6))
				c->category[i] = MemoryContextStrdup(c->cxt, SPI_getvalue(t, d, 6));
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
}

/* the GRU attached to item model weights (recsys.item_attach), when they hold one */
static void
ItemEncoderLoad(bytea *weights, RecsysNet *encoder, bool *has)
{
	RsFormatView view;
	Jsonb	   *en;

	*has = false;
	RecsysWeightsParse(weights, &view);
	en = RecsysSubConfig(RecsysViewConfig(&view), "encoder");
	if (en == NULL)
		return;
	RecsysNetLoadView(encoder, &view, RS_KIND_GRU, en, "gru.");
	*has = true;
}

/* the active (or asked-for) version's scorer of the item model, when it has one */
static void
LoadScorer(ItemCache *c, const char *model)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(model)};
	bool		isnull;

	if (SPI_execute_with_args("SELECT v.version_id, v.weights FROM recsys.model_versions v "
							  "WHERE v.model = $1 AND v.status = 'active' AND v.weights IS NOT NULL",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read recsys.model_versions");
	if (SPI_processed == 0)
		return;
	c->version_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	{
		Datum		w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		MemoryContext old = MemoryContextSwitchTo(c->cxt);
		const RsKindOps *ops;

		RecsysNetLoad(&c->scorer, (bytea *) PG_DETOAST_DATUM_COPY(w));
		ops = rs_kind_ops(c->scorer.kind);
		if (ops->input != RS_INPUT_ROWS || ops->in_width(&c->scorer) != RS_ITEM_NFEAT || ops->out_width(&c->scorer) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the active version of item model \"%s\" is not a scorer of %d features", model, RS_ITEM_NFEAT),
					 errhint("Retrain it with CALL recsys.train().")));
		c->has_scorer = true;
		ItemEncoderLoad((bytea *) PG_DETOAST_DATUM(w), &c->encoder, &c->has_encoder);
		MemoryContextSwitchTo(old);
	}
}

static ItemCache *
ItemCacheGet(const char *model)
{
	uint64		generation = ServingGeneration();
	ItemCache  *c;
	MemoryContext cxt;

	if (item_cache && item_cache->generation == generation && strcmp(item_cache->model, model) == 0)
		return item_cache;
	if (item_cache)
	{
		MemoryContextDelete(item_cache->cxt);
		item_cache = NULL;
	}
	cxt = AllocSetContextCreate(TopMemoryContext, "recsys item cache", ALLOCSET_DEFAULT_SIZES);
	c = MemoryContextAllocZero(cxt, sizeof(ItemCache));
	c->cxt = cxt;
	c->generation = generation;
	strlcpy(c->model, model, NAMEDATALEN);
	PG_TRY();
	{
		int			pinned = ServingPinSearchPath();
		MemoryContext old;
		int32		widest = 0;

		SPI_connect();
		PushActiveSnapshot(GetLatestSnapshot());
		c->ni = RecsysSpaceCount("item");
		c->nu = RecsysSpaceCount("user");
		LoadBaskets(c);
		LoadAttrs(c);
		LoadScorer(c, model);
		PopActiveSnapshot();
		SPI_finish();
		ServingUnpinSearchPath(pinned);
		old = MemoryContextSwitchTo(c->cxt);
		RecsysCoreHooks();
		rs_items_stats(c->nu, c->ni, c->baskets.ptr, c->baskets.idx, &c->stats);
		for (int32 u = 0; u < c->nu; u++)
			widest = Max(widest, c->baskets.ptr[u + 1] - c->baskets.ptr[u]);
		c->slot = palloc(sizeof(int32) * Max(c->ni, 1));
		memset(c->slot, -1, sizeof(int32) * Max(c->ni, 1));
		c->hist.item = palloc(sizeof(int32) * Max(widest, 1));
		c->hist.count = palloc(sizeof(int32) * Max(widest, 1));
		c->hist.last = palloc(sizeof(int32) * Max(widest, 1));
		c->hist.decayed = palloc(sizeof(float) * Max(widest, 1));
		c->cand = palloc(sizeof(int32) * (Max(widest, 1) + RS_ITEM_POPULAR));
		c->x = palloc(sizeof(float) * RS_ITEM_NFEAT * (Max(widest, 1) + RS_ITEM_POPULAR));
		c->score = palloc(sizeof(float) * (Max(widest, 1) + RS_ITEM_POPULAR));
		c->seen = palloc0(Max(c->ni, 1));
		{
			float	   *b = palloc(sizeof(float) * Max(c->ni, 1));

			for (int32 i = 0; i < c->ni; i++)
				b[i] = (float) c->stats.buyers[i] + 1;	/* never-bought items too, last */
			c->by_buyers = palloc(sizeof(int32) * Max(c->ni, 1));
			rs_top_n(b, c->ni, NULL, c->ni, c->by_buyers);
			pfree(b);
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	item_cache = c;
	return c;
}

/*
 * The candidates of customer u up to basket upto (0: all): their items (history entry j
 * at candidate j), then the popular items they lack; features into c->x. Returns how many.
 */
static int
ItemCandidates(ItemCache *c, int32 u, int upto)
{
	int32		p0 = u >= 0 ? c->baskets.ptr[u] : 0,
				n = u >= 0 ? c->baskets.ptr[u + 1] - p0 : 0;
	int			m;

	rs_items_history(c->baskets.idx + p0, c->bno + p0, n, upto, c->slot, &c->hist);
	m = c->hist.n;
	for (int j = 0; j < m; j++)
	{
		c->cand[j] = c->hist.item[j];
		c->seen[c->hist.item[j]] = 1;
	}
	for (int j = 0; j < c->stats.npopular; j++)
		if (!c->seen[c->stats.popular[j]])
			c->cand[m++] = c->stats.popular[j];
	for (int j = 0; j < c->hist.n; j++)
		c->seen[c->hist.item[j]] = 0;
	for (int j = 0; j < m; j++)
		rs_items_features(&c->hist, j < c->hist.n ? j : -1, c->cand[j], &c->stats, c->x + (int64) j * RS_ITEM_NFEAT);
	ItemCooc(c, m);
	return m;
}

/*
 * Customer u's items up to basket upto (0: all) that enc knows, oldest first (in a basket by
 * index), the last RS_ITEM_SEQ_TAIL of them, into c->seq; returns how many.
 */
static int
ItemSequence(ItemCache *c, int32 u, int upto, int vocab)
{
	int			n = 0;

	if (u < 0)
		return 0;
	for (int32 p = c->baskets.ptr[u + 1] - 1; p >= c->baskets.ptr[u] && n < RS_ITEM_SEQ_TAIL; p--)
		if ((upto <= 0 || c->bno[p] <= upto) && c->baskets.idx[p] < vocab)
			c->seq[n++] = c->baskets.idx[p];
	for (int j = 0; j < n / 2; j++)
	{
		int32		t = c->seq[j];

		c->seq[j] = c->seq[n - 1 - j];
		c->seq[n - 1 - j] = t;
	}
	return n;
}

/*
 * Feature RS_ITEM_FEAT_SEQ of the m candidates in c->x: the GRU over customer u's sequence up to basket upto
 * (a customer without one: the zero state, so the encoder's item biases). The encoder's workspace grows in
 * work, with the encoder.
 */
static void
ItemSeqFeature(ItemCache *c, RecsysNet *enc, MemoryContext work, int32 u, int upto, int m)
{
	RsSeq	   *seq = &enc->u.seq;
	int			len = ItemSequence(c, u, upto, seq->vocab);
	const rs_real *h;
	MemoryContext old = MemoryContextSwitchTo(work);

	if (len > 0)
		h = rs_seq_encode(seq, c->seq, &len, 1, len);
	else
	{
		/* the zero state: h_all's first row, which encoding zeroes too */
		h = rs_seq_encode(seq, c->seq, &len, 1, 1);
	}
	MemoryContextSwitchTo(old);
	rs_items_seq(seq, h, c->cand, m, c->x);
}

/* ---------- recsys.item_samples(holdout_seed bigint, max_customers integer, encoder bytea) ---------- */

PG_FUNCTION_INFO_V1(item_samples);

Datum
item_samples(PG_FUNCTION_ARGS)
{
	uint64		seed;
	int32		max_customers;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ItemCache  *c;
	uint8	   *last;
	Datum	   *xs;
	MemoryContext rowcxt;
	RecsysNet	enc;
	bool		has_enc = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("holdout_seed and max_customers must not be NULL")));
	seed = (uint64) PG_GETARG_INT64(0);
	max_customers = PG_GETARG_INT32(1);
	InitMaterializedSRF(fcinfo, 0);
	RecsysCoreHooks();
	if (!PG_ARGISNULL(2))
	{
		RecsysNetLoad(&enc, PG_GETARG_BYTEA_P(2));
		if (enc.kind != RS_KIND_GRU)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("encoder must be gru weights, got kind %s", rs_kind_name(enc.kind))));
		has_enc = true;
	}
	/* the data as prepared now, without a model's scorer (features only) */
	c = ItemCacheGet("");
	NeighboursGet(c);
	last = palloc0(Max(c->ni, 1));
	xs = palloc(sizeof(Datum) * RS_ITEM_NFEAT);
	/* each customer's arrays are copied into the tuplestore: they go with a context reset per customer */
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "recsys item samples", ALLOCSET_DEFAULT_SIZES);
	for (int32 u = 0; u < c->nu; u++)
	{
		int32		p0 = c->baskets.ptr[u],
					p1 = c->baskets.ptr[u + 1];
		int			nb = p1 > p0 ? c->bno[p1 - 1] : 0,
					m;
		bool		valid = rs_holdout_valid(seed, u);
		MemoryContext old;

		if (nb < 2 || !rs_customer_sampled(seed, u, c->nu, max_customers))
			continue;
		CHECK_FOR_INTERRUPTS();
		m = ItemCandidates(c, u, nb - 1);
		for (int32 p = p0; p < p1; p++)
			if (c->bno[p] == nb)
				last[c->baskets.idx[p]] = 1;
		if (has_enc)
			ItemSeqFeature(c, &enc, CurrentMemoryContext, u, nb - 1, m);
		old = MemoryContextSwitchTo(rowcxt);
		for (int j = 0; j < m; j++)
		{
			Datum		values[5];
			bool		nulls[5] = {false};

			for (int f = 0; f < RS_ITEM_NFEAT; f++)
				xs[f] = Float4GetDatum(c->x[(int64) j * RS_ITEM_NFEAT + f]);
			values[0] = Int32GetDatum(u);
			values[1] = BoolGetDatum(valid);
			values[2] = Int32GetDatum(c->cand[j]);
			values[3] = PointerGetDatum(construct_array(xs, RS_ITEM_NFEAT, FLOAT4OID, sizeof(float4), true,
														TYPALIGN_INT));
			values[4] = Float4GetDatum(last[c->cand[j]] ? 1.0f : 0.0f);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		for (int32 p = p0; p < p1; p++)
			last[c->baskets.idx[p]] = 0;
	}
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/* ---------- recsys.item_rank(user_id text, k integer, options jsonb) ---------- */

typedef struct ItemRanked
{
	int32		cand;			/* index into the candidates */
	float		score;
} ItemRanked;

static int
ItemRankedCmp(const void *a, const void *b)
{
	const ItemRanked *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->cand - y->cand;
}

static bool
OptBool(Jsonb *o, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&o->root, key, strlen(key), NULL);

	return v && v->type == jbvBool && v->val.boolean;
}

/* the filters every item ranking applies before the cut: in_stock, and max_price (NaN: none) */
static void
ItemFilters(Jsonb *opts, bool *in_stock, double *max_price)
{
	JsonbValue *mp = getKeyJsonValueFromContainer(&opts->root, "max_price", 9, NULL);

	*in_stock = OptBool(opts, "in_stock");
	*max_price = mp && mp->type == jbvNumeric ?
		DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(mp->val.numeric))) : NAN;
}

PG_FUNCTION_INFO_V1(item_rank);

Datum
item_rank(PG_FUNCTION_ARGS)
{
	text	   *user = PG_GETARG_TEXT_PP(0);
	int32		k = PG_GETARG_INT32(1);
	Jsonb	   *opts = PG_GETARG_JSONB_P(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JsonbValue *mv;
	bool		exclude_bought,
				in_stock;
	double		max_price;
	char	   *model;
	ItemCache  *c;
	int32		u = -1;
	int			m,
				n = 0,
				emitted = 0;
	ItemRanked *r;

	/* recommend_items checked the options (recsys.check_item_options); a direct caller gets the same rule */
	if (!JB_ROOT_IS_OBJECT(opts) || k < 1 || k > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("item_rank needs k from 1 to 10000 and options as a JSON object"),
				 errhint("Call recommend_items, which checks its options.")));
	mv = getKeyJsonValueFromContainer(&opts->root, "model", 5, NULL);
	exclude_bought = OptBool(opts, "exclude_bought");
	ItemFilters(opts, &in_stock, &max_price);
	model = mv && mv->type == jbvString ? pnstrdup(mv->val.string.val, Min(mv->val.string.len, NAMEDATALEN - 1)) : "items";
	InitMaterializedSRF(fcinfo, 0);
	c = ItemCacheGet(model);
	NeighboursGet(c);
	{
		/* the customer's index: one indexed lookup, planned once per backend */
		static SPIPlanPtr user_plan = NULL;
		Datum		args[1] = {PointerGetDatum(user)};
		int			pinned = ServingPinSearchPath();

		SPI_connect();
		if (user_plan == NULL)
		{
			Oid			argtypes[1] = {TEXTOID};
			SPIPlanPtr	plan = SPI_prepare("SELECT m.idx FROM recsys.id_map m WHERE m.space = 'user' AND m.ext_id = $1",
										   1, argtypes);

			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "could not plan the customer lookup: %s", SPI_result_code_string(SPI_result));
			user_plan = plan;
		}
		if (SPI_execute_plan(user_plan, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;

			u = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (u >= c->nu)
				u = -1;			/* mapped since the cache was loaded: served as new, as serving does */
		}
		SPI_finish();
		ServingUnpinSearchPath(pinned);
	}
	m = ItemCandidates(c, u, 0);
	if (c->has_encoder && m > 0)
		ItemSeqFeature(c, &c->encoder, c->cxt, u, 0, m);
	if (c->has_scorer && m > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(c->cxt);
		RsBatch		b = {.n = m, .x = c->x};
		const RsKindOps *ops = rs_kind_ops(c->scorer.kind);
		rs_real    *logits = ops->forward(&c->scorer, &b);

		MemoryContextSwitchTo(old);
		memcpy(c->score, logits, sizeof(float) * m);
	}
	else
		for (int j = 0; j < m; j++)
			c->score[j] = rs_items_default_score(c->x + (int64) j * RS_ITEM_NFEAT);
	r = palloc(sizeof(ItemRanked) * Max(m, 1));
	for (int j = 0; j < m; j++)
	{
		int32		i = c->cand[j];

		if (exclude_bought && j < c->hist.n)
			continue;
		if (in_stock && !c->in_stock[i])
			continue;
		if (!isnan(max_price) && !(c->price[i] <= max_price))
			continue;
		if (!isfinite(c->score[j]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the item model computed %g for item %s", (double) c->score[j], c->ext[i])));
		r[n].cand = j;
		r[n++].score = c->score[j];
	}
	qsort(r, n, sizeof(ItemRanked), ItemRankedCmp);
	for (int j = 0; j < n && emitted < k; j++)
	{
		int			cj = r[j].cand;
		int32		i = c->cand[cj];
		Datum		values[4];
		bool		nulls[4] = {false};
		char	   *why;
		char	   *name = c->label[i] ? c->label[i] : psprintf("item %s", c->ext[i] ? c->ext[i] : "?");

		if (c->ext[i] == NULL)
			continue;			/* an id erased since the cache was loaded */
		if (cj < c->hist.n)
		{
			int			ago = c->hist.nbaskets - c->hist.last[cj];

			why = psprintf("you bought %s in %d of your %d orders, %s", name, c->hist.count[cj], c->hist.nbaskets,
						   ago == 0 ? "the last one too" : ago == 1 ? "last 1 order ago" : psprintf("last %d orders ago", ago));
		}
		else if (c->has_encoder && c->hist.n > 0 &&
				 c->x[(int64) cj * RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ] > 0.2f - logf((float) m) / 5)
			/* the GRU gives it e times the candidates' even share, or more */
			why = psprintf("what customers buy after items like your last ones (GRU), bought by %d customers",
						   c->stats.buyers[i]);
		else
			why = psprintf("%s: bought by %d customers%s", u < 0 ? "popular (new customer)" : "popular",
						   c->stats.buyers[i],
						   c->stats.again[i] >= 0.3f ? psprintf(", %d%% of them again", (int) lroundf(100 * c->stats.again[i])) : "");
		values[0] = Int32GetDatum(++emitted);
		values[1] = CStringGetTextDatum(c->ext[i]);
		/*
		 * on one 0..1 scale, as recommend_bundles: the scorer learned by binary cross-entropy whether the
		 * customer buys the item in their next basket, so its sigmoid is that probability; the default blend
		 * (before training, non-negative) is squashed as d / (1 + d). Applied after the ranking: ties stay
		 */
		values[2] = Float4GetDatum(c->has_scorer ? 1.0f / (1.0f + expf(-r[j].score))
								   : Max(r[j].score, 0.0f) / (1.0f + Max(r[j].score, 0.0f)));
		values[3] = CStringGetTextDatum(why);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/*
	 * Exact k: past the candidates, items nobody bought yet in the customer's categories
	 * (content for the cold start), then every other item, most bought first.
	 */
	if (emitted < k)
	{
		for (int j = 0; j < m; j++)
			c->seen[c->cand[j]] = 1;
		for (int pass = 0; pass < 2 && emitted < k; pass++)
			for (int32 q = 0; q < c->ni && emitted < k; q++)
			{
				int32		i = c->by_buyers[q];
				bool		mine = false;
				Datum		values[4];
				bool		nulls[4] = {false};

				if ((q & 65535) == 0)
					CHECK_FOR_INTERRUPTS();
				if (c->seen[i] || c->ext[i] == NULL || (in_stock && !c->in_stock[i]) ||
					(!isnan(max_price) && !(c->price[i] <= max_price)))
					continue;
				for (int h = 0; h < c->hist.n && c->category[i] && !mine; h++)
					mine = c->category[c->hist.item[h]] && strcmp(c->category[c->hist.item[h]], c->category[i]) == 0;
				if (pass == 0 && !(mine && c->stats.buyers[i] == 0))
					continue;
				c->seen[i] = 1;
				values[0] = Int32GetDatum(++emitted);
				values[1] = CStringGetTextDatum(c->ext[i]);
				values[2] = Float4GetDatum(0);
				values[3] = CStringGetTextDatum(pass == 0 ? psprintf("new in %s, which you buy", c->category[i]) :
												c->stats.buyers[i] ? psprintf("popular: bought by %d customers", c->stats.buyers[i]) :
												psprintf("not bought yet%s%s", c->category[i] ? ": in " : "",
														 c->category[i] ? c->category[i] : ""));
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		memset(c->seen, 0, Max(c->ni, 1));
	}
	return (Datum) 0;
}

/*
 * ---------- similar_items and complete_bundle: recsys.similar_items_idx(item_idx, k) and
 * recsys.complete_bundle_idx(cart, k, options), served from the item cache ----------
 *
 * Their data, beside the item model's: the association rules (recsys.item_pair_stats), the
 * items' profiles (recsys.item_features: category, price band, buyers) and the mined bundles
 * holding each item. The SQL wrappers check the arguments and map ids; the tiers, scores,
 * reasons and order are those the SQL versions had.
 */
typedef struct ItemNeighbours
{
	/* rules a -> b, rows by a: b, confidence, lift, baskets together */
	int32	   *pr_ptr,
			   *pr_b;
	double	   *pr_conf,
			   *pr_lift;
	int64	   *pr_together;
	/* profiles: has one, buyers, category (NULL: none), price band (-1: none) */
	bool	   *has_profile;
	int64	   *buyers;
	char	  **category;
	int32	   *band;
	/* mined bundles: items, lift, customers, key; and item -> bundles */
	int32		nm;
	int32	   *mb_ptr,
			   *mb_items,
			   *im_ptr,
			   *im_bundle;
	double	   *mb_lift;
	int64	   *mb_customers;
	char	  **mb_key;
	/* scratch: per item, the best score and its reason's source per tier */
	double	   *score;
	int32	   *via;
	uint8	   *tier;
} ItemNeighbours;

/* a query's rows through a cursor, each to fn */
static void
ForEachRow(const char *query, void (*fn) (HeapTuple t, TupleDesc d, void *arg), void *arg)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
			fn(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, arg);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

typedef struct NbrLoad
{
	ItemCache  *c;
	ItemNeighbours *n;
	int64		rows,
				room,
				bundles_room;	/* mined bundles' arrays */
} NbrLoad;

static double
ColFloat8(HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	return isnull ? 0 : DatumGetFloat8(v);
}

static int64
ColInt64(HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	return isnull ? -1 : DatumGetInt64(v);
}

static void
LoadRule(HeapTuple t, TupleDesc d, void *arg)
{
	NbrLoad    *l = arg;
	ItemNeighbours *n = l->n;
	int64		a = ColInt64(t, d, 1),
				b = ColInt64(t, d, 2);

	if (a < 0 || a >= l->c->ni || b < 0 || b >= l->c->ni)
		return;
	if (l->rows == l->room)
	{
		l->room = Max(1024, l->room * 2);
		n->pr_b = repalloc_huge(n->pr_b, sizeof(int32) * l->room);
		n->pr_conf = repalloc_huge(n->pr_conf, sizeof(double) * l->room);
		n->pr_lift = repalloc_huge(n->pr_lift, sizeof(double) * l->room);
		n->pr_together = repalloc_huge(n->pr_together, sizeof(int64) * l->room);
	}
	n->pr_ptr[a + 1]++;
	n->pr_b[l->rows] = (int32) b;
	n->pr_conf[l->rows] = ColFloat8(t, d, 3);
	n->pr_lift[l->rows] = ColFloat8(t, d, 4);
	n->pr_together[l->rows] = ColInt64(t, d, 5);
	l->rows++;
}

static void
LoadProfile(HeapTuple t, TupleDesc d, void *arg)
{
	NbrLoad    *l = arg;
	ItemNeighbours *n = l->n;
	int64		i = ColInt64(t, d, 1);
	char	   *cat = SPI_getvalue(t, d, 3);

	if (i < 0 || i >= l->c->ni)
		return;
	n->has_profile[i] = true;
	n->buyers[i] = ColInt64(t, d, 2);
	n->category[i] = cat ? MemoryContextStrdup(l->c->cxt, cat) : NULL;
	n->band[i] = (int32) ColInt64(t, d, 4);
}

static void
LoadMined(HeapTuple t, TupleDesc d, void *arg)
{
	NbrLoad    *l = arg;
	ItemNeighbours *n = l->n;
	bool		isnull;
	ArrayType  *items = DatumGetArrayTypeP(SPI_getbinval(t, d, 1, &isnull));
	int			nitems = ArrayGetNItems(ARR_NDIM(items), ARR_DIMS(items));
	const int32 *it = (const int32 *) ARR_DATA_PTR(items);
	int32		b = n->nm;

	if (ARR_HASNULL(items))
		return;
	if (l->rows + nitems > l->room)
	{
		l->room = Max(1024, (l->room + nitems) * 2);
		n->mb_items = repalloc_huge(n->mb_items, sizeof(int32) * l->room);
	}
	if (b + 1 >= l->bundles_room)
	{
		/* doubling: one bundle more per row would copy the arrays quadratically often */
		l->bundles_room = Max(256, l->bundles_room * 2);
		n->mb_ptr = repalloc_huge(n->mb_ptr, sizeof(int32) * (l->bundles_room + 1));
		n->mb_lift = repalloc_huge(n->mb_lift, sizeof(double) * l->bundles_room);
		n->mb_customers = repalloc_huge(n->mb_customers, sizeof(int64) * l->bundles_room);
		n->mb_key = repalloc_huge(n->mb_key, sizeof(char *) * l->bundles_room);
	}
	for (int j = 0; j < nitems; j++)
		if (it[j] >= 0 && it[j] < l->c->ni)
			n->mb_items[l->rows++] = it[j];
	n->mb_ptr[b + 1] = (int32) l->rows;
	n->mb_lift[b] = ColFloat8(t, d, 2);
	n->mb_customers[b] = ColInt64(t, d, 3);
	n->mb_key[b] = MemoryContextStrdup(l->c->cxt, SPI_getvalue(t, d, 4));
	n->nm++;
}

static struct ItemNeighbours *
NeighboursGet(ItemCache *c)
{
	ItemNeighbours *n;
	MemoryContext old;
	NbrLoad		l = {c, NULL, 0, 0, 0};
	int			pinned;
	size_t		ni1 = Max(c->ni, 1);

	if (c->nbr)
		return c->nbr;
	old = MemoryContextSwitchTo(c->cxt);
	n = palloc0(sizeof(ItemNeighbours));
	l.n = n;
	n->pr_ptr = palloc0(sizeof(int32) * (ni1 + 1));
	n->pr_b = palloc(sizeof(int32));
	n->pr_conf = palloc(sizeof(double));
	n->pr_lift = palloc(sizeof(double));
	n->pr_together = palloc(sizeof(int64));
	n->has_profile = palloc0(sizeof(bool) * ni1);
	n->buyers = palloc0(sizeof(int64) * ni1);
	n->category = palloc0(sizeof(char *) * ni1);
	n->band = palloc(sizeof(int32) * ni1);
	n->mb_ptr = palloc0(sizeof(int32) * 2);
	n->mb_items = palloc(sizeof(int32));
	n->mb_lift = palloc(sizeof(double));
	n->mb_customers = palloc(sizeof(int64));
	n->mb_key = palloc(sizeof(char *));
	n->score = palloc(sizeof(double) * ni1);
	n->via = palloc(sizeof(int32) * ni1);
	n->tier = palloc0(ni1);
	pinned = ServingPinSearchPath();
	SPI_connect();
	PushActiveSnapshot(GetLatestSnapshot());
	ForEachRow("SELECT item_a::bigint, item_b::bigint, confidence::float8, lift::float8, together::bigint "
			   "FROM recsys.item_pair_stats ORDER BY item_a", LoadRule, &l);
	for (int32 i = 0; i < c->ni; i++)
		n->pr_ptr[i + 1] += n->pr_ptr[i];
	ForEachRow("SELECT item_idx::bigint, buyers::bigint, category, price_band::bigint FROM recsys.item_features",
			   LoadProfile, &l);
	l.rows = l.room = 0;
	ForEachRow("SELECT items, lift::float8, customers::bigint, bundle_key FROM recsys.mined_bundles", LoadMined, &l);
	PopActiveSnapshot();
	SPI_finish();
	ServingUnpinSearchPath(pinned);
	/* item -> the mined bundles holding it */
	n->im_ptr = palloc0(sizeof(int32) * (ni1 + 1));
	n->im_bundle = palloc(sizeof(int32) * Max(n->mb_ptr[n->nm], 1));
	for (int32 q = 0; q < n->mb_ptr[n->nm]; q++)
		n->im_ptr[n->mb_items[q] + 1]++;
	for (int32 i = 0; i < c->ni; i++)
		n->im_ptr[i + 1] += n->im_ptr[i];
	{
		int32	   *fill = palloc(sizeof(int32) * ni1);

		memcpy(fill, n->im_ptr, sizeof(int32) * ni1);
		for (int32 b = 0; b < n->nm; b++)
			for (int32 q = n->mb_ptr[b]; q < n->mb_ptr[b + 1]; q++)
				n->im_bundle[fill[n->mb_items[q]]++] = b;
		pfree(fill);
	}
	MemoryContextSwitchTo(old);
	c->nbr = n;
	return n;
}

/* the candidates' rule feature (core/rs_items.h: rs_items_cooc), once the rules are loaded */
static void
ItemCooc(ItemCache *c, int m)
{
	if (c->nbr)
		rs_items_cooc(&c->hist, c->nbr->pr_ptr, c->nbr->pr_b, c->nbr->pr_conf, c->cand, m, c->slot, c->x);
}

/* a value as SQL's round(x::numeric, 1) prints it: through numeric itself, as the reasons did in SQL */
static char *
Round1(double x)
{
	Datum		n = DirectFunctionCall1(float8_numeric, Float8GetDatum(x));

	return DatumGetCString(DirectFunctionCall1(numeric_out, DirectFunctionCall2(numeric_round, n, Int32GetDatum(1))));
}

static const char *
ItemName(ItemCache *c, int32 i)
{
	return c->label[i] ? c->label[i] : psprintf("item %s", c->ext[i] ? c->ext[i] : "?");
}

typedef struct NbrRanked
{
	int32		item;
	uint8		tier;
	float		score;			/* real, as the ranking compared it */
} NbrRanked;

static int
NbrRankedCmp(const void *a, const void *b)
{
	const NbrRanked *x = a,
			   *y = b;

	if (x->tier != y->tier)
		return x->tier - y->tier;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->item - y->item;
}

/* the k best of the scored items (tier > 0) that pass the filters, ranked; the scratch tiers are cleared */
static int
NbrRank(ItemCache *c, ItemNeighbours *n, int k, bool in_stock, double max_price, NbrRanked **out)
{
	NbrRanked  *r = palloc(sizeof(NbrRanked) * Max(c->ni, 1));
	int			m = 0;

	for (int32 i = 0; i < c->ni; i++)
	{
		if (n->tier[i] == 0)
			continue;
		if (c->ext[i] && !(in_stock && !c->in_stock[i]) && (isnan(max_price) || c->price[i] <= max_price))
		{
			r[m].item = i;
			r[m].tier = n->tier[i];
			r[m++].score = (float) n->score[i];
		}
		n->tier[i] = 0;
	}
	qsort(r, m, sizeof(NbrRanked), NbrRankedCmp);
	*out = r;
	return Min(m, k);
}

static void
NbrEmit(ReturnSetInfo *rsinfo, int rank, ItemCache *c, int32 i, float score, const char *why)
{
	Datum		values[4];
	bool		nulls[4] = {false};

	values[0] = Int32GetDatum(rank);
	values[1] = CStringGetTextDatum(c->ext[i]);
	values[2] = Float4GetDatum(score);
	values[3] = CStringGetTextDatum(why);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(similar_items_idx);

Datum
similar_items_idx(PG_FUNCTION_ARGS)
{
	int32		me = PG_GETARG_INT32(0),
				k = PG_GETARG_INT32(1);
	Jsonb	   *opts = PG_GETARG_JSONB_P(2);
	bool		in_stock;
	double		max_price;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ItemCache  *c;
	ItemNeighbours *n;
	NbrRanked  *r;
	int			m;

	ItemFilters(opts, &in_stock, &max_price);
	InitMaterializedSRF(fcinfo, 0);
	c = ItemCacheGet(item_cache ? item_cache->model : "items");
	n = NeighboursGet(c);
	if (me < 0 || me >= c->ni || k < 1)
		return (Datum) 0;
	/* bought together: the rules from this item, by confidence and lift */
	for (int32 q = n->pr_ptr[me]; q < n->pr_ptr[me + 1]; q++)
	{
		int32		b = n->pr_b[q];

		n->tier[b] = 1;
		n->score[b] = n->pr_conf[q] * log(1 + n->pr_lift[q]);
		n->via[b] = q;
	}
	/* then the content vector (category, price band) over every profiled item: how a new item gets neighbours */
	if (n->has_profile[me])
		for (int32 i = 0; i < c->ni; i++)
		{
			if (i == me || !n->has_profile[i] || n->tier[i] == 1)
				continue;
			n->tier[i] = 2;
			n->score[i] = (double) ((n->category[i] && n->category[me] && strcmp(n->category[i], n->category[me]) == 0) +
									(n->band[i] >= 0 && n->band[i] == n->band[me])) +
				0.001 * log(1 + (double) n->buyers[i]);
		}
	m = NbrRank(c, n, k, in_stock, max_price, &r);
	for (int j = 0; j < m; j++)
	{
		int32		i = r[j].item;
		char	   *why;

		if (r[j].tier == 1)
		{
			int64		together = n->pr_together[n->via[i]];

			why = psprintf("bought together in " INT64_FORMAT " %s (lift %s)", together, together == 1 ? "order" : "orders",
						   Round1(n->pr_lift[n->via[i]]));
		}
		else
			why = psprintf("similar product: %s%s", n->category[i] ? n->category[i] : "same kind",
						   n->band[i] >= 0 && n->band[i] == n->band[me] ? ", same price band" : "");
		NbrEmit(rsinfo, j + 1, c, i, r[j].score, why);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(complete_bundle_idx);

Datum
complete_bundle_idx(PG_FUNCTION_ARGS)
{
	ArrayType  *cart_arr = PG_GETARG_ARRAYTYPE_P(0);
	int32		k = PG_GETARG_INT32(1);
	Jsonb	   *opts = PG_GETARG_JSONB_P(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		in_stock;
	double		max_price;
	ItemCache  *c;
	ItemNeighbours *n;
	Datum	   *elems;
	bool	   *nulls;
	int			ncart,
				m;
	uint8	   *incart;
	int32	   *cart;
	NbrRanked  *r;
	double	   *best_conf;		/* tier 2: the strongest rule's confidence, its source, most together, largest lift */
	int64	   *most_together;
	double	   *max_lift;

	ItemFilters(opts, &in_stock, &max_price);
	deconstruct_array(cart_arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &ncart);
	InitMaterializedSRF(fcinfo, 0);
	c = ItemCacheGet(item_cache ? item_cache->model : "items");
	n = NeighboursGet(c);
	incart = palloc0(Max(c->ni, 1));
	cart = palloc(sizeof(int32) * Max(ncart, 1));
	{
		int			w = 0;

		for (int j = 0; j < ncart; j++)
		{
			int32		i = nulls[j] ? -1 : DatumGetInt32(elems[j]);

			if (i >= 0 && i < c->ni && !incart[i])
			{
				incart[i] = 1;
				cart[w++] = i;
			}
		}
		ncart = w;
	}
	/* mined bundles holding part of the cart: their other items complete the set (by lift x cart items held) */
	for (int j = 0; j < ncart; j++)
		for (int32 q = n->im_ptr[cart[j]]; q < n->im_ptr[cart[j] + 1]; q++)
		{
			int32		b = n->im_bundle[q];
			int			held = 0;

			for (int32 p = n->mb_ptr[b]; p < n->mb_ptr[b + 1]; p++)
				held += incart[n->mb_items[p]];
			/* each bundle once: from its first cart item */
			{
				bool		first = true;

				for (int32 p = n->mb_ptr[b]; p < n->mb_ptr[b + 1] && first; p++)
					if (incart[n->mb_items[p]] && n->mb_items[p] != cart[j])
						for (int jj = 0; jj < j && first; jj++)
							first = cart[jj] != n->mb_items[p];
				if (!first)
					continue;
			}
			for (int32 p = n->mb_ptr[b]; p < n->mb_ptr[b + 1]; p++)
			{
				int32		x = n->mb_items[p],
							v;
				double		s = n->mb_lift[b] * held;

				if (incart[x])
					continue;
				if (n->tier[x] != 1)
				{
					n->tier[x] = 1;
					n->score[x] = s;
					n->via[x] = b;
					continue;
				}
				if (s > n->score[x])
					n->score[x] = s;
				/* the reason: the bundle of largest lift, then the smallest key */
				v = n->via[x];
				if (n->mb_lift[b] > n->mb_lift[v] ||
					(n->mb_lift[b] == n->mb_lift[v] && strcmp(n->mb_key[b], n->mb_key[v]) < 0))
					n->via[x] = b;
			}
		}
	/* rules from cart items to items no mined bundle completes: summed over the cart */
	best_conf = palloc(sizeof(double) * Max(c->ni, 1));
	most_together = palloc(sizeof(int64) * Max(c->ni, 1));
	max_lift = palloc(sizeof(double) * Max(c->ni, 1));
	for (int j = 0; j < ncart; j++)
		for (int32 q = n->pr_ptr[cart[j]]; q < n->pr_ptr[cart[j] + 1]; q++)
		{
			int32		b = n->pr_b[q];

			if (incart[b] || n->tier[b] == 1)
				continue;
			if (n->tier[b] != 2)
			{
				n->tier[b] = 2;
				n->score[b] = 0;
				best_conf[b] = -1;
				most_together[b] = 0;
				max_lift[b] = -INFINITY;
			}
			n->score[b] += n->pr_conf[q] * log(1 + n->pr_lift[q]);
			if (n->pr_conf[q] > best_conf[b] || (n->pr_conf[q] == best_conf[b] && cart[j] < n->via[b]))
			{
				best_conf[b] = n->pr_conf[q];
				n->via[b] = cart[j];
			}
			most_together[b] = Max(most_together[b], n->pr_together[q]);
			max_lift[b] = Max(max_lift[b], n->pr_lift[q]);
		}
	/* then popular items */
	for (int32 i = 0; i < c->ni; i++)
		if (n->has_profile[i] && !incart[i] && n->tier[i] == 0)
		{
			n->tier[i] = 3;
			n->score[i] = log(1 + (double) n->buyers[i]);
		}
	m = NbrRank(c, n, k, in_stock, max_price, &r);
	for (int j = 0; j < m; j++)
	{
		int32		i = r[j].item;
		char	   *why;

		if (r[j].tier == 1)
		{
			int32		b = n->via[i];

			why = psprintf("completes a set bought together by " INT64_FORMAT " %s (lift %s)", n->mb_customers[b],
						   n->mb_customers[b] == 1 ? "customer" : "customers", Round1(n->mb_lift[b]));
		}
		else if (r[j].tier == 2)
			why = psprintf("bought together with %s in " INT64_FORMAT " %s (lift %s)", ItemName(c, n->via[i]),
						   most_together[i], most_together[i] == 1 ? "order" : "orders", Round1(max_lift[i]));
		else
			why = psprintf("popular: " INT64_FORMAT " buyers", n->buyers[i]);
		NbrEmit(rsinfo, j + 1, c, i, r[j].score, why);
	}
	return (Datum) 0;
}

/* ---------- recsys.item_scorer_init(hidden int, seed bigint) ---------- */

/* the item scorer's shape lives here, next to its features: SQL never spells their count */
PG_FUNCTION_INFO_V1(item_scorer_init);

Datum
item_scorer_init(PG_FUNCTION_ARGS)
{
	return RecsysScorerInit(RS_ITEM_NFEAT, PG_GETARG_INT32(0), PG_GETARG_INT64(1));
}

/* ---------- recsys.item_default_score(x real[]) ---------- */

/* the blend that serves before training, for SQL (the validation of an untrained model) from its one definition */
PG_FUNCTION_INFO_V1(item_default_score);

Datum
item_default_score(PG_FUNCTION_ARGS)
{
	ArrayType  *x = PG_GETARG_ARRAYTYPE_P(0);

	if (ARR_ELEMTYPE(x) != FLOAT4OID || ARR_NDIM(x) != 1 || ARR_DIMS(x)[0] != RS_ITEM_NFEAT ||
		(ARR_HASNULL(x) && array_contains_nulls(x)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must be the %d item features without NULLs", RS_ITEM_NFEAT)));
	PG_RETURN_FLOAT4(rs_items_default_score((const float *) ARR_DATA_PTR(x)));
}

/* ---------- recsys.item_attach(scorer bytea, encoder bytea) and recsys.item_encoder(weights bytea) ---------- */

/*
 * An item model's weights: the scorer as it is (mlp weights, so mlp_forward and the training aggregates read
 * them), the GRU of feature RS_ITEM_FEAT_SEQ beside it as tensors gru.* with its config under "encoder"; no
 * encoder (NULL): the scorer alone, without one it carried.
 */
PG_FUNCTION_INFO_V1(item_attach);

Datum
item_attach(PG_FUNCTION_ARGS)
{
	RsFormatView sc,
				en;
	RsTensorDesc desc[64];
	const float *data[64];
	int			n;
	RecsysNet	check;
	Datum		cfg;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &sc);
	if (!PG_ARGISNULL(1))
		RecsysWeightsParse(PG_GETARG_BYTEA_P(1), &en);
	if (sc.kind != RS_KIND_MLP || (!PG_ARGISNULL(1) && en.kind != RS_KIND_GRU))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("item_attach needs mlp and gru weights, got kinds %s and %s",
						rs_kind_name(sc.kind), PG_ARGISNULL(1) ? "none" : rs_kind_name(en.kind))));
	/* the scorer's own tensors and config, without an encoder it had */
	n = RecsysCopyTensors(&sc, "", NULL, "gru.", desc, data, 0);
	cfg = DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(RecsysViewConfig(&sc)), CStringGetTextDatum("encoder"));
	if (!PG_ARGISNULL(1))
	{
		n = RecsysCopyTensors(&en, "gru.", NULL, NULL, desc, data, n);
		cfg = DirectFunctionCall2(jsonb_concat, cfg,
								  DirectFunctionCall1(jsonb_in, CStringGetDatum(
																				psprintf("{\"encoder\": %s}", RecsysConfigText(&en)))));
	}
	{
		char	   *text = JsonbToCString(NULL, &DatumGetJsonbP(cfg)->root, -1);
		bytea	   *result = RecsysWeightsBuild(RS_KIND_MLP, n, desc, data, text, strlen(text));
		bool		has;

		/* what cannot be served is refused here, not on the first request */
		RecsysNetLoad(&check, result);
		ItemEncoderLoad(result, &check, &has);
		PG_RETURN_BYTEA_P(result);
	}
}

PG_FUNCTION_INFO_V1(item_encoder);

Datum
item_encoder(PG_FUNCTION_ARGS)
{
	RsFormatView view;
	bytea	   *result;

	RecsysWeightsParse(PG_GETARG_BYTEA_P(0), &view);
	result = view.kind == RS_KIND_MLP ? RecsysWeightsPart(&view, "gru.", "encoder", RS_KIND_GRU) : NULL;
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(result);
}

/* ---------- recsys.item_sequences(holdout_seed bigint, max_customers integer, max_len integer) ---------- */

/*
 * What the item model's GRU learns from: each sampled customer's items oldest first (in a basket by index), the
 * last max_len, without their last basket when they have two or more, since item_samples labels by it.
 */
PG_FUNCTION_INFO_V1(item_sequences);

Datum
item_sequences(PG_FUNCTION_ARGS)
{
	uint64		seed = (uint64) PG_GETARG_INT64(0);
	int32		max_customers = PG_GETARG_INT32(1);
	int32		max_len = PG_GETARG_INT32(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ItemCache  *c;
	Datum	   *items;

	if (max_len < 2 || max_len > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_len must be from 2 to 1000, got %d", max_len)));
	InitMaterializedSRF(fcinfo, 0);
	c = ItemCacheGet("");
	items = palloc(sizeof(Datum) * max_len);
	for (int32 u = 0; u < c->nu; u++)
	{
		int32		p0 = c->baskets.ptr[u],
					p1 = c->baskets.ptr[u + 1],
					p;
		int			nb = p1 > p0 ? c->bno[p1 - 1] : 0,
					n = 0;
		Datum		values[2];
		bool		nulls[2] = {false};

		if (p1 - p0 < 2 || !rs_customer_sampled(seed, u, c->nu, max_customers))
			continue;
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		for (p = p1; p > p0 && nb >= 2 && c->bno[p - 1] == nb; p--)
			;
		for (int32 q = Max(p0, p - max_len); q < p; q++)
			items[n++] = Int32GetDatum(c->baskets.idx[q]);
		if (n < 2)
			continue;
		values[0] = Int32GetDatum(u);
		values[1] = PointerGetDatum(construct_array(items, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(DatumGetPointer(values[1]));
	}
	return (Datum) 0;
}
