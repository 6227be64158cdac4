/*
 * serving.c — recommend_bundles in C: the ranking tiers (the model's candidates reranked
 * by the learned scorer, the fit's order past them, bundles newer than the model and
 * popularity to reach k; the GRU over a visitor's session), business filters applied
 * before the cut, and the SRF with what served each row. The cache, the options and the
 * reasons are their own files (serving.h).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "serving.h"

/* ---------- ranking ---------- */

static bool
BundleHas(ServingCache *c, int32 b, int32 item)
{
	for (int32 p = c->bundle_items.ptr[b]; p < c->bundle_items.ptr[b + 1]; p++)
		if (c->bundle_items.idx[p] == item)
			return true;
	return false;
}

/* skip[b] = 1 for every bundle the options or the user's history rule out */
static uint8 *
SkipMask(ServingCache *c, ServeOptions *o, int32 user)
{
	uint8	   *skip = c->scratch_skip;

	memset(skip, 0, Max(c->nb, 1));

	if (user >= 0 && o->exclude_taken)
	{
		TimestampTz now = GetCurrentTransactionStartTimestamp();

		for (int32 p = c->user_bundles.ptr[user]; p < c->user_bundles.ptr[user + 1]; p++)
		{
			/* with a repurchase window, what was bought long enough ago may come back */
			if (o->repurchase_days >= 0 && c->ub_ts[p] != PG_INT64_MIN &&
				c->ub_ts[p] < now - (int64) (o->repurchase_days * USECS_PER_DAY))
				continue;
			skip[c->user_bundles.idx[p]] = 1;
		}
	}
	if (!o->filters)
		return skip;
	for (int32 b = 0; b < c->nb; b++)
	{
		if (skip[b])
			continue;
		if ((o->in_stock && !c->bundle_in_stock[b]) ||
			(o->max_price >= 0 && !(c->bundle_price[b] <= o->max_price)) ||
			(o->min_categories > 0 && c->bundle_ncat[b] < o->min_categories) ||
			o->ninclude < 0)
		{
			skip[b] = 1;
			continue;
		}
		for (int j = 0; j < o->ninclude && !skip[b]; j++)
			skip[b] = !BundleHas(c, b, o->include[j]);
		for (int j = 0; j < o->nexclude && !skip[b]; j++)
			skip[b] = BundleHas(c, b, o->exclude[j]);
	}
	return skip;
}

static int
RankedCmp(const void *a, const void *b)
{
	const Ranked *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->bundle < y->bundle ? -1 : x->bundle > y->bundle;
}

/* GRU over the session: the highest next-item logit among each candidate's items */
static void
SessionRerank(ServingCache *c, const int32 *session, int nsession, Ranked *r, int n)
{
	RsSeq	   *seq = &c->bm.encoder.u.seq;
	rs_real    *h;
	int32	   *ids = palloc(sizeof(int32) * nsession);
	int			len = 0;
	MemoryContext old;

	/* the most recent items only: the encoder's workspace lives in the cache and grows with the length */
	for (int j = Max(0, nsession - RECSYS_SESSION_TAIL); j < nsession; j++)
		if (session[j] < seq->vocab)
			ids[len++] = session[j];
	if (len == 0)
		return;
	old = MemoryContextSwitchTo(c->cxt);
	h = rs_seq_encode(seq, ids, &len, 1, len);
	MemoryContextSwitchTo(old);
	for (int j = 0; j < n; j++)
	{
		int32		b = r[j].bundle;
		float		best = -INFINITY;
		double		mass = 0;

		/* log of the bundle's share of the next-item distribution (up to the shared normaliser) */
		for (int pass = 0; pass < 2; pass++)
			for (int32 p = c->bundle_items.ptr[b]; p < c->bundle_items.ptr[b + 1]; p++)
			{
				int32		i = c->bundle_items.idx[p];
				float		logit;

				if (i >= seq->vocab)
					continue;
				logit = seq->p[RS_SEQ_OUTB][i];
				for (int d = 0; d < seq->hidden; d++)
					logit += seq->p[RS_SEQ_OUT][(int64) i * seq->hidden + d] * h[d];
				if (pass == 0)
					best = Max(best, logit);
				else
					mass += exp(logit - best);
			}
		r[j].score = isfinite(best) ? (float) (best + log(mass)) : -1e30f;
	}
	/* scores 0..1 like the other tiers': the softmax of the bundles' log-masses over the candidates */
	{
		float		top = -INFINITY;
		double		z = 0;

		for (int j = 0; j < n; j++)
			top = Max(top, r[j].score);
		for (int j = 0; j < n; j++)
			z += exp((double) r[j].score - top);
		for (int j = 0; j < n; j++)
			r[j].score = (float) (exp((double) r[j].score - top) / z);
	}
	qsort(r, n, sizeof(Ranked), RankedCmp);
}

/* ---------- recommend_bundles(user_id text|bigint, k integer, options jsonb) ---------- */

static void
CheckK(int32 k)
{
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1, got %d", k)));
	if (k > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k must be at most 10000, got %d", k)));
}

/*
 * What served a request: the model version (0: the baseline ranker), the experiment and
 * the variant (NULL when none). recsys.recommend_bundles_traced returns them as columns
 * beside each row, and recsys.recommend_bundles_logged logs them from there: per request,
 * no state left in the backend between calls.
 */
typedef struct ServeTrace
{
	int64		version;
	const char *experiment;
	const char *variant;
} ServeTrace;

#define SERVE_TRACED_COLUMNS 8

static void
PutRow(ReturnSetInfo *rsinfo, Datum *values, bool *nulls, const ServeTrace *trace)
{
	/* values and nulls have room for the traced columns; the plain forms return the first five */
	if (rsinfo->setDesc->natts >= SERVE_TRACED_COLUMNS)
	{
		values[5] = Int64GetDatum(trace->version);
		nulls[5] = trace->version == 0;
		values[6] = trace->experiment ? CStringGetTextDatum(trace->experiment) : (Datum) 0;
		nulls[6] = trace->experiment == NULL;
		values[7] = trace->variant ? CStringGetTextDatum(trace->variant) : (Datum) 0;
		nulls[7] = trace->variant == NULL;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* without an active model: the SQL baseline (which knows only exclude_taken) */
static void
ServeBaseline(FunctionCallInfo fcinfo, const char *user, int32 k, bool exclude_taken, bool bigint_form,
			  const ServeTrace *trace)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[3] = {TEXTOID, INT4OID, JSONBOID};
	Datum		args[3] = {CStringGetTextDatum(user), Int32GetDatum(k),
		DirectFunctionCall1(jsonb_in, CStringGetDatum(exclude_taken ? "{\"exclude_taken\": true}" : "{\"exclude_taken\": false}"))};
	const char *q = bigint_form
		? "SELECT rank, bundle_id::bigint, items::bigint[], score, reason FROM recsys.recommend_bundles_baseline($1, $2, $3)"
		: "SELECT rank, bundle_id, items, score, reason FROM recsys.recommend_bundles_baseline($1, $2, $3)";

	int			pinned = ServingPinSearchPath();

	SPI_connect();
	if (bigint_form)
	{
		bool		isnull;

		/* what ParseInt64 accepts: int8out's own text of a value (mined bundles' ids are 19-digit hashes) */
		if (SPI_execute("SELECT EXISTS (SELECT 1 FROM recsys.id_map WHERE space IN ('bundle', 'item') "
						"AND CASE WHEN ext_id ~ '^(0|-?[1-9][0-9]{0,18})$' "
						"THEN ext_id::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 ELSE true END)",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read recsys.id_map");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("bundle or item ids are not integers, so they cannot be returned as bigint"),
					 errhint("Call recommend_bundles(user_id::text, k), which returns ids as text.")));
	}
	if (SPI_execute_with_args(q, 3, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run the baseline ranker");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[SERVE_TRACED_COLUMNS];
		bool		nulls[SERVE_TRACED_COLUMNS];

		heap_deform_tuple(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, values, nulls);
		PutRow(rsinfo, values, nulls, trace);
	}
	SPI_finish();
	ServingUnpinSearchPath(pinned);
}

/* a bundle's items as text[] or bigint[], built once per cache */
static Datum
BundleItemsArray(ServingCache *c, int32 b, bool bigint_form)
{
	Datum	  **slot = bigint_form ? &c->items_int : &c->items_text;

	if (*slot == NULL)
		*slot = MemoryContextAllocZero(c->cxt, sizeof(Datum) * Max(c->nb, 1));
	if ((*slot)[b] == (Datum) 0)
	{
		int32		n = c->bundle_items.ptr[b + 1] - c->bundle_items.ptr[b];
		Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
		MemoryContext old;

		for (int32 p = 0; p < n; p++)
		{
			int32		i = c->bundle_items.idx[c->bundle_items.ptr[b] + p];

			elems[p] = bigint_form ? Int64GetDatum(c->item_ext_int[i]) : CStringGetTextDatum(c->item_ext[i]);
		}
		old = MemoryContextSwitchTo(c->cxt);
		(*slot)[b] = PointerGetDatum(bigint_form
									 ? construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)
									 : construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
		MemoryContextSwitchTo(old);
	}
	return (*slot)[b];
}

/*
 * offers[j]: the running offer on the items of the j-th ranked bundle that adds the most margin for the customer
 * (recsys.bundle_offers, from recommend_promotions' ranking), or NULL; one query for the whole answer, and only
 * when the option asks: the cached path runs none
 */
static char **
BundleOffers(ServingCache *c, const char *user_id, const char *at, const Ranked *ranked, int n)
{
	char	  **offers = palloc0(sizeof(char *) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', at ? ' ' : 'n'};
	int			level;
	MemoryContext outer = CurrentMemoryContext;

	for (int j = 0; j < n; j++)
		ids[j] = CStringGetTextDatum(c->bundle_ext[ranked[j].bundle]);
	args[0] = CStringGetTextDatum(user_id);
	args[1] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = at ? CStringGetTextDatum(at) : (Datum) 0;
	level = ServingPinSearchPath();
	SPI_connect();
	if (SPI_execute_with_args("SELECT ord, offer FROM recsys.bundle_offers($1, $2, $3::timestamptz)", 3, types, args, nulls,
							  true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the offers on the bundles");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		ord = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *offer = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

		if (ord >= 1 && ord <= n && offer)
			offers[ord - 1] = MemoryContextStrdup(outer, offer);
	}
	SPI_finish();
	ServingUnpinSearchPath(level);
	return offers;
}

PG_FUNCTION_INFO_V1(recommend_bundles);

Datum
recommend_bundles(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		bigint_form = get_fn_expr_argtype(fcinfo->flinfo, 0) == INT8OID;
	char	   *user_id;
	int32		k = PG_GETARG_INT32(1);
	Jsonb	   *opts = PG_GETARG_JSONB_P(2);
	ServeOptions o;
	ServingCache *c;
	int32		user = -1;
	const int32 *taken = NULL,
			   *items = NULL;
	int			ntaken = 0,
				nitems = 0;
	Ranked	   *ranked;
	int			nranked = 0;
	uint8	   *skip;
	bool		personal;
	bool		session_tier = false;
	double		z = 0;
	int			ntouched = 0;
	float		best_s = 0;
	ServeTrace	trace = {0, NULL, NULL};
	char	  **offers = NULL;

	user_id = bigint_form ? psprintf(INT64_FORMAT, PG_GETARG_INT64(0)) : text_to_cstring(PG_GETARG_TEXT_PP(0));
	CheckK(k);
	ServingParseOptionsModel(opts, &o);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	serving_calls++;
	/* a running experiment picks the version (or the baseline) unless a version is asked for */
	ServingAcceptInvalidations();
	ServingExperimentsLoad();
	if (o.version == 0)
	{
		ExpVariant *ev = ServingExperimentVariant(o.model, user_id);

		if (ev)
		{
			trace.experiment = pstrdup(ev->experiment);
			trace.variant = pstrdup(ev->name);
			if (ev->version == 0)
			{
				ServingParseOptions(opts, &o, NULL);
				ServeBaseline(fcinfo, user_id, k, o.exclude_taken, bigint_form, &trace);
				return (Datum) 0;
			}
			o.version = ev->version;
		}
	}
	c = ServingCacheGet(o.model, o.version);
	trace.version = c->version_id;
	if (c->version_id == 0)
	{
		/* an untrained shop serves the baseline; a model asked for by name must exist */
		if (!c->model_exists && strcmp(o.model, "default") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", o.model),
					 errhint("Train it with CALL recsys.train('%s').", o.model)));
		ServingParseOptions(opts, &o, NULL);
		if (o.filters || o.repurchase_days >= 0 || RecsysConfigGet(opts, "session"))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" has no active version, and its options need one", o.model),
					 errhint("Train one with CALL recsys.train(); without it only exclude_taken applies.")));
		ServeBaseline(fcinfo, user_id, k, o.exclude_taken, bigint_form, &trace);
		return (Datum) 0;
	}
	if (bigint_form && !c->integer_ids)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("bundle or item ids are not integers, so they cannot be returned as bigint"),
				 errhint("Call recommend_bundles(user_id::text, k), which returns ids as text.")));
	ServingParseOptions(opts, &o, c);

	{
		UserKey		key = {hash_bytes_extended((const unsigned char *) user_id, strlen(user_id), 0)};
		UserEntry  *e = hash_search(c->users, &key, HASH_FIND, NULL);

		if (e && strcmp(c->user_ext[e->idx], user_id) == 0)
		{
			user = e->idx;
			taken = c->user_bundles.idx + c->user_bundles.ptr[user];
			ntaken = c->user_bundles.ptr[user + 1] - c->user_bundles.ptr[user];
			items = c->user_items.idx + c->user_items.ptr[user];
			nitems = c->user_items.ptr[user + 1] - c->user_items.ptr[user];
		}
	}
	if (ntaken == 0 && nitems == 0 && o.nsession > 0)
	{
		/* no history, but a session: the session's items stand in for it */
		items = o.session;
		nitems = o.nsession;
		session_tier = true;
	}
	personal = ntaken > 0 || nitems > 0;
	skip = SkipMask(c, &o, user);
	ranked = c->scratch_ranked;

	if (personal)
	{
		RsBundleModel *m = &c->bm.m;
		float	   *s = c->scratch_s,
				   *iv = c->scratch_iv;
		int			want = Min(Max(k, c->bm.candidates), m->nb);
		int32	   *top = palloc(sizeof(int32) * want);
		int			got,
					nrerank;
		float	   *x,
				   *logits;

		int			npos = 0;

		if (c->scratch_dirty)
		{
			memset(s, 0, sizeof(float) * m->nb);
			memset(iv, 0, sizeof(float) * m->nb);
			memset(c->scratch_mark, 0, m->nb);
		}
		c->scratch_dirty = true;
		/* only the bundles the sparse rows reach can score above 0: select among them when enough do */
		z = rs_bundle_score_touched(m, taken, ntaken, items, nitems, s, iv, c->scratch_mark, c->scratch_touched,
									&ntouched);
		for (int t = 0; t < ntouched; t++)
			npos += s[c->scratch_touched[t]] > 0 && !skip[c->scratch_touched[t]];
		got = npos >= want ? rs_top_n_among(s, c->scratch_touched, ntouched, skip, want, top)
			: rs_top_n(s, m->nb, skip, want, top);
		nrerank = Min(got, c->bm.candidates);
		x = palloc(sizeof(float) * Max(nrerank, 1) * RS_BUNDLE_NFEAT);
		logits = palloc(sizeof(float) * Max(nrerank, 1));
		rs_bundle_features_among(m, s, iv, c->scratch_touched, ntouched, ntaken, top, nrerank, x);
		{
			MemoryContext old = MemoryContextSwitchTo(c->cxt);

			RecsysBundleRerank(&c->bm, x, nrerank, logits);
			MemoryContextSwitchTo(old);
		}
		for (int j = 0; j < got; j++)
			if (!isfinite(s[top[j]]) || (j < nrerank && !isfinite(logits[j])))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("version " INT64_FORMAT " of model \"%s\" scores bundle %s as %g",
								c->version_id, c->model, c->bundle_ext[top[j]],
								isfinite(s[top[j]]) ? (double) logits[j] : (double) s[top[j]]),
						 errhint("Its weights hold values too large to compute with; roll back to another version or retrain.")));
		/*
		 * Scores on one scale in every tier, 0..1: the scorer learned by binary cross-entropy whether a
		 * candidate is the customer's next bundle, so its sigmoid is that probability (a version without a
		 * scorer ranks by the normalised fit score, squashed the same way)
		 */
		for (int j = 0; j < nrerank; j++)
		{
			ranked[j].bundle = top[j];
			ranked[j].score = 1.0f / (1.0f + expf(-logits[j]));
			ranked[j].popular = false;
		}
		qsort(ranked, nrerank, sizeof(Ranked), RankedCmp);
		if (session_tier && c->bm.has_encoder)
			SessionRerank(c, o.session, o.nsession, ranked, nrerank);
		nranked = nrerank;
		/*
		 * past the reranked candidates, the fit's order, scored below them: the last candidate's score
		 * scaled by the fit score relative to the first of these
		 */
		if (got > nrerank)
		{
			float		base = nrerank ? ranked[nrerank - 1].score : 1.0f;
			float		first = s[top[nrerank]];

			for (int j = nrerank; j < got; j++)
			{
				float		ratio = first > 0 ? Max(s[top[j]], 0.0f) / first : 0.0f;

				ranked[nranked].bundle = top[j];
				ranked[nranked].score = base * Max(Min(ratio, 1.0f), 1e-6f) * (1.0f - (float) (j - nrerank + 1) * 1e-6f);
				ranked[nranked].popular = false;
				nranked++;
			}
		}
		/* bundles newer than the model, then the rest by popularity, if k still is not reached */
		if (nranked < k)
		{
			uint8	   *done = palloc0(Max(c->nb, 1));
			int32	   *rest = palloc(sizeof(int32) * Max(c->nb, 1));
			int			nrest;
			float		low = nranked ? ranked[nranked - 1].score : 1.0f;

			for (int j = 0; j < nranked; j++)
				done[ranked[j].bundle] = 1;
			for (int32 b = 0; b < c->nb; b++)
				done[b] |= skip[b];
			nrest = rs_top_n(c->pop_score, c->nb, done, k - nranked, rest);
			for (int j = 0; j < nrest; j++)
			{
				/* their popularity share, kept below the rows before */
				low = Min(low * (1.0f - 1e-3f), c->pop_prob[rest[j]]);
				ranked[nranked].bundle = rest[j];
				ranked[nranked].score = low;
				ranked[nranked].popular = true;
				nranked++;
			}
		}
	}
	else
	{
		int32	   *top = palloc(sizeof(int32) * Min(k, Max(c->nb, 1)));

		nranked = rs_top_n(c->pop_score, c->nb, skip, Min(k, c->nb), top);
		for (int j = 0; j < nranked; j++)
		{
			ranked[j].bundle = top[j];
			ranked[j].score = c->pop_prob[top[j]];
			ranked[j].popular = true;
		}
	}

	/* the offers on the bundles' items, asked once for the whole answer (recsys.bundle_offers) */
	if (o.promotions && nranked > 0)
		offers = BundleOffers(c, user_id, o.promotions_at, ranked, Min(k, nranked));
	/* the customer's strongest fit score, the yardstick of the reasons */
	if (personal)
		for (int t = 0; t < ntouched; t++)
			best_s = Max(best_s, c->scratch_s[c->scratch_touched[t]]);
	for (int j = 0; j < Min(k, nranked); j++)
	{
		int32		b = ranked[j].bundle;
		Datum		values[SERVE_TRACED_COLUMNS];
		bool		nulls[SERVE_TRACED_COLUMNS] = {false, false, false, false, false};
		char	   *reason;
		if (!ranked[j].popular)
		{
			float		sb = b < c->bm.m.nb ? c->scratch_s[b] : 0;

			/* a bundle the filters let through far below the customer's best matches is not "because of" anything */
			if (sb < 0.1f * best_s && c->bundle_buyers[b] > 0)
				reason = psprintf("further from your history, but popular: taken by %s", ServingCustomers(c->bundle_buyers[b]));
			else
				reason = ServingPersonalReason(c, b, taken, ntaken, items, nitems, z, session_tier, sb);
			if (session_tier)
				reason = psprintf("from your session (%s): %s", c->bm.has_encoder ? "GRU" : "items", reason);
		}
		else
			reason = ServingPopularReason(c, b, user >= 0, o.nsession_asked > 0 && o.nsession == 0);
		if (offers && offers[j])
			reason = psprintf("%s; offer: %s", reason, offers[j]);
		values[0] = Int32GetDatum(j + 1);
		values[1] = bigint_form ? Int64GetDatum(c->bundle_ext_int[b]) : CStringGetTextDatum(c->bundle_ext[b]);
		values[2] = BundleItemsArray(c, b, bigint_form);
		values[3] = Float4GetDatum(ranked[j].score);
		values[4] = CStringGetTextDatum(reason);
		PutRow(rsinfo, values, nulls, &trace);
	}
	if (personal)
	{
		rs_bundle_clear(c->scratch_s, c->scratch_iv, c->scratch_mark, c->scratch_touched, ntouched);
		c->scratch_dirty = false;
	}
	return (Datum) 0;
}

