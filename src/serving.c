/*
 * serving.c — recommend_bundles in C: a per-backend cache of the active bundle
 * model and of the prepared data it reads (histories, ids, catalogue), business
 * filters applied before the cut, reasons, and cold-start tiers.
 *
 * The cache is built on the first call and kept until a relcache invalidation of
 * recsys.model_versions arrives: recsys.activate_version and recsys.prepare send one
 * (recsys.serving_invalidate), and it reaches every backend when they commit, so a
 * newly activated version serves from the next statement on.
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

#include "bundle_model.h"

#define RECENT_DAYS 30
/* the longest item list an option may hold (a cart, a session, an exclusion list) */
#define RECSYS_MAX_OPTION_ITEMS 1000
/* the GRU reads the most recent items of a session, as many as it was trained on at most */
#define RECSYS_SESSION_TAIL 50

typedef struct UserKey
{
	uint64		hash;			/* of the external id; the id itself is compared on lookup */
} UserKey;

typedef struct UserEntry
{
	UserKey		key;
	int32		idx;
} UserEntry;

typedef struct Ranked Ranked;
struct Ranked
{
	int32		bundle;
	float		score;
	bool		popular;		/* filled in from the popularity tier */
};

typedef struct ServingCache
{
	MemoryContext cxt;
	char		model[NAMEDATALEN];
	int64		asked_version;	/* 0: the active one */
	uint64		generation;
	uint64		used;
	int64		version_id;		/* 0: no active version */
	bool		model_exists;
	RecsysBundle bm;
	/* prepared data */
	int32		nu,
				nb,
				ni;
	HTAB	   *users;
	HTAB	   *items;			/* item ids -> indexes, for options naming items */
	char	  **user_ext,
			  **bundle_ext,
			  **item_ext,
			  **item_name;
	bool		integer_ids;	/* every bundle and item id reads as a bigint */
	int64	   *bundle_ext_int,
			   *item_ext_int;
	RecsysCsr	user_bundles,
				user_items,
				bundle_items;
	int64	   *ub_ts;			/* last time per user-bundle pair */
	float	   *bundle_price;	/* NaN: some item has no price */
	bool	   *bundle_in_stock;
	int32	   *bundle_ncat;
	int32	   *bundle_buyers,
			   *bundle_recent;
	float	   *bundle_item_buyers;	/* mean distinct buyers of its items */
	float	   *pop_score;		/* the popularity tier's ranking */
	bool		has_times;		/* bundle purchases have times (trend is known) */
	Datum	   *items_text,		/* each bundle's items array, built on first use */
			   *items_int;
	/* per-request scratch, nb long: reused, as mallocs of this size would cost more than the ranking */
	float	   *scratch_s,		/* all zero between requests (only touched entries are reset) */
			   *scratch_iv;
	uint8	   *scratch_mark;
	int32	   *scratch_touched;
	bool		scratch_dirty;	/* a request stopped by an error left them unreset */
	uint8	   *scratch_skip;
	struct Ranked *scratch_ranked;
} ServingCache;

/*
 * A few caches, one per (model, version asked for; 0 = the active one): the active
 * model, and the versions an experiment or an evaluation serves next to it. An
 * invalidation bumps the generation, which retires them all at once.
 */
#define SERVING_CACHES 4
static ServingCache *caches[SERVING_CACHES];
static uint64 serving_generation = 1;
static uint64 serving_tick = 0;
static bool callback_registered = false;
static Oid	versions_relid = InvalidOid;
static int64 serving_loads = 0;
static int64 serving_calls = 0;

/* running experiments, reloaded with the caches */
typedef struct ExpVariant
{
	char		experiment[NAMEDATALEN];
	char		name[NAMEDATALEN];
	double		upto;			/* cumulative share */
	int64		version;		/* 0: the baseline ranker */
	char		model[NAMEDATALEN];
} ExpVariant;
static ExpVariant *exp_variants = NULL;
static int	exp_nvariants = 0;
static uint64 exp_generation = 0;

static void
ServingInvalCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == versions_relid)
		serving_generation++;
}

static Oid
VersionsRelid(void)
{
	Oid			nsp = get_namespace_oid("recsys", false);
	Oid			rel = get_relname_relid("model_versions", nsp);

	if (!OidIsValid(rel))
		elog(ERROR, "recsys.model_versions is missing");
	return rel;
}

PG_FUNCTION_INFO_V1(serving_invalidate);

Datum
serving_invalidate(PG_FUNCTION_ARGS)
{
	/* transactional: other backends drop their caches when this transaction commits */
	CacheInvalidateRelcacheByRelid(VersionsRelid());
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(serving_status);

Datum
serving_status(PG_FUNCTION_ARGS)
{
	ServingCache *c = NULL;
	int			valid = 0;
	StringInfoData buf;

	/* the most recently used cache speaks for the backend */
	for (int i = 0; i < SERVING_CACHES; i++)
		if (caches[i])
		{
			valid += caches[i]->generation == serving_generation;
			if (c == NULL || caches[i]->used > c->used)
				c = caches[i];
		}
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"cached\": %s, \"caches\": %d, \"model\": ",
					 c && c->generation == serving_generation ? "true" : "false", valid);
	if (c)
		escape_json(&buf, c->model);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"version_id\": " INT64_FORMAT ", \"loads\": " INT64_FORMAT ", \"calls\": " INT64_FORMAT "}",
					 c ? c->version_id : 0, serving_loads, serving_calls);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* ---------- loading ---------- */

static char **
LoadExtIds(const char *space, int32 n, MemoryContext cxt)
{
	char	   *q = psprintf("SELECT idx, ext_id FROM recsys.id_map WHERE space = '%s'", space);
	char	  **ids = MemoryContextAllocZero(cxt, sizeof(char *) * Max(n, 1));
	Portal		portal = SPI_cursor_open_with_args(NULL, q, 0, NULL, NULL, NULL, true, 0);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int32		idx = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			char	   *ext = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

			if (idx >= 0 && idx < n)
				ids[idx] = MemoryContextStrdup(cxt, ext);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	/* RecsysSpaceCount found item and bundle indexes dense: a hole now is a concurrent writer's */
	if (strcmp(space, "user") != 0)
		for (int32 i = 0; i < n; i++)
			if (ids[i] == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("recsys.id_map has no id for %s index %d", space, i),
						 errhint("Item and bundle indexes are dense and never deleted; restore recsys.id_map from a backup.")));
	return ids;
}

/*
 * An id the bigint forms can return: exactly what int8out writes for its value, so
 * text ids such as '0546' or ' +546' (which would come back as 546) do not qualify.
 */
static bool
ParseInt64(const char *s, int64 *out)
{
	char	   *end;
	long long	v;
	char		canon[32];

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	snprintf(canon, sizeof(canon), "%lld", v);
	if (strcmp(canon, s) != 0)
		return false;
	*out = v;
	return true;
}

static void
LoadData(ServingCache *c)
{
	MemoryContext cxt = c->cxt;
	HASHCTL		ctl;
	TimestampTz max_ts = PG_INT64_MIN;
	float	   *item_buyers;

	c->nu = RecsysSpaceCount("user");
	c->nb = RecsysSpaceCount("bundle");
	c->ni = RecsysSpaceCount("item");
	c->user_ext = LoadExtIds("user", c->nu, cxt);
	c->bundle_ext = LoadExtIds("bundle", c->nb, cxt);
	c->item_ext = LoadExtIds("item", c->ni, cxt);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(UserKey);
	ctl.entrysize = sizeof(UserEntry);
	ctl.hcxt = cxt;
	c->users = hash_create("recsys serving users", Max(c->nu, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int32 u = 0; u < c->nu; u++)
	{
		UserKey		key;
		UserEntry  *e;

		if (c->user_ext[u] == NULL)
			continue;
		key.hash = hash_bytes_extended((const unsigned char *) c->user_ext[u], strlen(c->user_ext[u]), 0);
		e = hash_search(c->users, &key, HASH_ENTER, NULL);
		e->idx = u;
	}

	/* ids returned by the bigint forms */
	c->integer_ids = true;
	c->bundle_ext_int = MemoryContextAllocZero(cxt, sizeof(int64) * Max(c->nb, 1));
	c->item_ext_int = MemoryContextAllocZero(cxt, sizeof(int64) * Max(c->ni, 1));
	for (int32 b = 0; b < c->nb && c->integer_ids; b++)
		c->integer_ids = ParseInt64(c->bundle_ext[b], &c->bundle_ext_int[b]);
	for (int32 i = 0; i < c->ni && c->integer_ids; i++)
		c->integer_ids = ParseInt64(c->item_ext[i], &c->item_ext_int[i]);

	RecsysCsrLoadWith("SELECT user_idx::bigint, bundle_idx, last_ts FROM recsys.user_bundles ORDER BY 1, 2",
					  c->nu, c->nb, &c->user_bundles, 1, &c->ub_ts, cxt);
	RecsysCsrLoad("SELECT user_idx::bigint, item_idx FROM recsys.user_items ORDER BY 1, 2",
				  c->nu, c->ni, &c->user_items, cxt);
	RecsysCsrLoad("SELECT bundle_idx::bigint, item_idx FROM recsys.bundle_items ORDER BY 1, 2",
				  c->nb, c->ni, &c->bundle_items, cxt);

	/* catalogue: names, prices, stock and categories per item, summed per bundle */
	{
		float	   *price = palloc(sizeof(float) * Max(c->ni, 1));
		bool	   *stock = palloc(sizeof(bool) * Max(c->ni, 1));
		uint32	   *cat = palloc0(sizeof(uint32) * Max(c->ni, 1));

		c->item_name = MemoryContextAllocZero(cxt, sizeof(char *) * Max(c->ni, 1));
		for (int32 i = 0; i < c->ni; i++)
		{
			price[i] = NAN;
			stock[i] = true;
		}
		if (SPI_execute("SELECT item_idx, name, price::float4, in_stock, category FROM recsys.item_attrs", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read recsys.item_attrs");
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		i = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
			char	   *name = SPI_getvalue(t, d, 2);
			char	   *category = SPI_getvalue(t, d, 5);
			Datum		v;

			if (i < 0 || i >= c->ni)
				continue;
			if (name)
				c->item_name[i] = MemoryContextStrdup(cxt, name);
			v = SPI_getbinval(t, d, 3, &isnull);
			if (!isnull)
				price[i] = DatumGetFloat4(v);
			v = SPI_getbinval(t, d, 4, &isnull);
			if (!isnull)
				stock[i] = DatumGetBool(v);
			if (category)
				cat[i] = hash_bytes((const unsigned char *) category, strlen(category)) | 1;	/* 0: none */
		}
		c->bundle_price = MemoryContextAlloc(cxt, sizeof(float) * Max(c->nb, 1));
		c->bundle_in_stock = MemoryContextAlloc(cxt, sizeof(bool) * Max(c->nb, 1));
		c->bundle_ncat = MemoryContextAllocZero(cxt, sizeof(int32) * Max(c->nb, 1));
		for (int32 b = 0; b < c->nb; b++)
		{
			double		sum = 0;
			bool		in = true;

			for (int32 p = c->bundle_items.ptr[b]; p < c->bundle_items.ptr[b + 1]; p++)
			{
				int32		i = c->bundle_items.idx[p];
				bool		seen = false;

				sum += price[i];
				in &= stock[i];
				if (cat[i] == 0)
					continue;
				for (int32 q = c->bundle_items.ptr[b]; q < p && !seen; q++)
					seen = cat[c->bundle_items.idx[q]] == cat[i];
				c->bundle_ncat[b] += !seen;
			}
			c->bundle_price[b] = (float) sum;
			c->bundle_in_stock[b] = in;
		}
	}

	/* popularity and trend for the cold-start tier */
	c->bundle_buyers = MemoryContextAllocZero(cxt, sizeof(int32) * Max(c->nb, 1));
	c->bundle_recent = MemoryContextAllocZero(cxt, sizeof(int32) * Max(c->nb, 1));
	c->bundle_item_buyers = MemoryContextAllocZero(cxt, sizeof(float) * Max(c->nb, 1));
	c->pop_score = MemoryContextAllocZero(cxt, sizeof(float) * Max(c->nb, 1));
	for (int32 p = 0; p < c->user_bundles.ptr[c->nu]; p++)
		max_ts = Max(max_ts, c->ub_ts[p]);
	c->has_times = max_ts != PG_INT64_MIN;
	for (int32 p = 0; p < c->user_bundles.ptr[c->nu]; p++)
	{
		int32		b = c->user_bundles.idx[p];

		c->bundle_buyers[b]++;
		if (max_ts != PG_INT64_MIN && c->ub_ts[p] != PG_INT64_MIN &&
			c->ub_ts[p] > max_ts - (int64) RECENT_DAYS * USECS_PER_DAY)
			c->bundle_recent[b]++;
	}
	item_buyers = palloc0(sizeof(float) * Max(c->ni, 1));
	for (int32 p = 0; p < c->user_items.ptr[c->nu]; p++)
		item_buyers[c->user_items.idx[p]]++;
	for (int32 b = 0; b < c->nb; b++)
	{
		int32		n = c->bundle_items.ptr[b + 1] - c->bundle_items.ptr[b];
		double		sum = 0;

		for (int32 p = c->bundle_items.ptr[b]; p < c->bundle_items.ptr[b + 1]; p++)
			sum += item_buyers[c->bundle_items.idx[p]];
		c->bundle_item_buyers[b] = n ? (float) (sum / n) : 0;
		/* buyers, recent buyers count again (trend); a bundle nobody took yet ranks by its items */
		c->pop_score[b] = logf(1.0f + c->bundle_buyers[b]) + logf(1.0f + c->bundle_recent[b]) +
			0.01f * logf(1.0f + c->bundle_item_buyers[b]);
	}
}

/*
 * Weights index bundles and items by position in the id map they were trained on; a
 * rebuilt map puts other ids at those positions. Weights since 0.2.0 carry a
 * fingerprint of that map (fit.catalogue), compared here once per load; older ones
 * carry none and are served as before.
 */
static void
ServingCheckCatalogue(ServingCache *c)
{
	JsonbValue *fit = RecsysConfigGet(c->bm.config, "fit");
	JsonbValue	v;
	char	   *now;

	if (fit == NULL || fit->type != jbvBinary ||
		!getKeyJsonValueFromContainer(fit->val.binary.data, "catalogue", 9, &v) || v.type != jbvString)
		return;
	now = RecsysCatalogue(c->bm.m.nb, c->bm.m.ni);
	if ((size_t) v.val.string.len != strlen(now) || strncmp(now, v.val.string.val, v.val.string.len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("version " INT64_FORMAT " of model \"%s\" was trained on another catalogue than the prepared one",
						c->version_id, c->model),
				 errdetail("The ids of its %d bundles and %d items are not those at the same indexes of recsys.id_map.",
						   c->bm.m.nb, c->bm.m.ni),
				 errhint("Retrain with CALL recsys.train('%s'), or restore the id map it was trained on.", c->model)));
}

/*
 * The SPI work of serving runs with search_path = pg_catalog, pg_temp, so a caller's
 * path cannot resolve what these queries call (the serving functions are SECURITY
 * DEFINER). It is pinned here, around the loads, rather than by a SET clause on the
 * functions, which would cost every request a GUC save and restore although a request
 * served from the cache runs no query at all. An error unwinds it with the transaction.
 */
static int
PinSearchPath(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
UnpinSearchPath(int level)
{
	AtEOXact_GUC(true, level);
}

static void
ServingAcceptInvalidations(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(ServingInvalCallback, (Datum) 0);
		callback_registered = true;
		versions_relid = VersionsRelid();
	}
	/* invalidations sent by other backends' commits are read here, not only at statement start */
	AcceptInvalidationMessages();
}

/* the cache for a model version (0: the active one), (re)built when invalidated or missing */
/*
 * The snapshot cache loads read with: the latest one (see ServingCacheGet), except
 * in a parallel worker, which may not take one and shares the leader's; a worker
 * starts with the leader's statement, so it sees what the leader would.
 */
static Snapshot
ServingSnapshot(void)
{
	return IsInParallelMode() ? GetTransactionSnapshot() : GetLatestSnapshot();
}

static ServingCache *
ServingCacheGet(const char *model, int64 asked)
{
	MemoryContext old;
	ServingCache *c;
	int			slot = -1;
	uint64		generation;

	ServingAcceptInvalidations();
	for (int i = 0; i < SERVING_CACHES; i++)
		if (caches[i] && caches[i]->generation == serving_generation && caches[i]->asked_version == asked &&
			strcmp(caches[i]->model, model) == 0)
		{
			caches[i]->used = ++serving_tick;
			return caches[i];
		}
	/* a free slot, a stale one, or the least recently used */
	for (int i = 0; i < SERVING_CACHES && slot < 0; i++)
		if (caches[i] == NULL || caches[i]->generation != serving_generation)
			slot = i;
	if (slot < 0)
	{
		slot = 0;
		for (int i = 1; i < SERVING_CACHES; i++)
			if (caches[i]->used < caches[slot]->used)
				slot = i;
	}
	if (caches[slot])
	{
		MemoryContextDelete(caches[slot]->cxt);
		caches[slot] = NULL;
	}
	versions_relid = VersionsRelid();
	generation = serving_generation;	/* an invalidation during the load makes it stale at once */
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "recsys serving cache", ALLOCSET_DEFAULT_SIZES);

		c = MemoryContextAllocZero(cxt, sizeof(ServingCache));
		c->cxt = cxt;
	}
	strlcpy(c->model, model, NAMEDATALEN);
	c->asked_version = asked;
	PG_TRY();
	{
		Oid			argtypes[2] = {TEXTOID, INT8OID};
		Datum		args[2] = {CStringGetTextDatum(model), Int64GetDatum(asked)};

		int			pinned = PinSearchPath();

		SPI_connect();

		/*
		 * Read with the latest snapshot, not the statement's: an invalidation can be
		 * taken in mid-statement, and a statement snapshot from before the commit that
		 * sent it would load the old version into a cache marked current (seen under
		 * concurrent load: one backend kept serving version 1 after version 2 went live).
		 */
		PushActiveSnapshot(ServingSnapshot());
		if (SPI_execute_with_args("SELECT m.name IS NOT NULL, v.version_id, v.weights FROM (SELECT $1::text AS n) x "
								  "LEFT JOIN recsys.models m ON m.name = x.n "
								  "LEFT JOIN recsys.model_versions v ON v.model = m.name AND v.weights IS NOT NULL "
								  "AND CASE WHEN $2 = 0 THEN v.status = 'active' ELSE v.version_id = $2 END",
								  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read recsys.model_versions");
		c->model_exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &(bool) {false}));
		{
			bool		isnull;
			Datum		w;
			Datum		vid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			c->version_id = isnull ? 0 : DatumGetInt64(vid);
			w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
			old = MemoryContextSwitchTo(c->cxt);
			if (!isnull)
			{
				/* the weights stay detoasted in the cache: the model points into them */
				bytea	   *copy = (bytea *) PG_DETOAST_DATUM_COPY(w);

				RecsysCoreHooks();
				RecsysBundleLoad(copy, &c->bm);
			}
			else
				c->version_id = 0;
			MemoryContextSwitchTo(old);
		}
		if (c->version_id != 0)
		{
			LoadData(c);
			if (c->bm.m.nb > c->nb || c->bm.m.ni > c->ni)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the active version of model \"%s\" knows more bundles or items than the prepared data",
								model),
						 errhint("Run SELECT * FROM recsys.prepare(), or retrain.")));
			ServingCheckCatalogue(c);
			c->scratch_s = MemoryContextAllocZero(c->cxt, sizeof(float) * Max(c->bm.m.nb, 1));
			c->scratch_iv = MemoryContextAllocZero(c->cxt, sizeof(float) * Max(c->bm.m.nb, 1));
			c->scratch_mark = MemoryContextAllocZero(c->cxt, Max(c->bm.m.nb, 1));
			c->scratch_touched = MemoryContextAlloc(c->cxt, sizeof(int32) * Max(c->bm.m.nb, 1));
			c->scratch_skip = MemoryContextAlloc(c->cxt, Max(c->nb, 1));
			c->scratch_ranked = MemoryContextAlloc(c->cxt, sizeof(Ranked) * Max(c->nb, 1));
		}
		PopActiveSnapshot();
		SPI_finish();
		UnpinSearchPath(pinned);
	}
	PG_CATCH();
	{
		MemoryContextDelete(c->cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (asked != 0 && c->version_id == 0)
	{
		MemoryContextDelete(c->cxt);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no version " INT64_FORMAT " with weights", model, asked)));
	}
	c->generation = generation;
	c->used = ++serving_tick;
	caches[slot] = c;
	serving_loads++;
	return c;
}

static const char *
NullAsEmpty(const char *s)
{
	return s ? s : "";
}

/* the running experiments' variants, reloaded after any invalidation */
static void
ExperimentsLoad(void)
{
	MemoryContext old;
	int			pinned;

	if (exp_generation == serving_generation)
		return;
	if (exp_variants)
		pfree(exp_variants);
	exp_variants = NULL;
	exp_nvariants = 0;
	pinned = PinSearchPath();
	SPI_connect();
	PushActiveSnapshot(ServingSnapshot());	/* as in ServingCacheGet */
	if (SPI_execute("SELECT e.name, v ->> 'name', sum((v ->> 'share')::float8) OVER (PARTITION BY e.name ORDER BY o), "
					"coalesce((v ->> 'version')::bigint, 0), coalesce(mv.model, 'default') "
					"FROM recsys.experiments e, jsonb_array_elements(e.variants) WITH ORDINALITY AS x(v, o) "
					"LEFT JOIN recsys.model_versions mv ON mv.version_id = (v ->> 'version')::bigint "
					"WHERE e.status = 'running' ORDER BY e.started_at, e.name, o", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read recsys.experiments");
	old = MemoryContextSwitchTo(TopMemoryContext);
	exp_variants = palloc0(sizeof(ExpVariant) * Max(SPI_processed, 1));
	MemoryContextSwitchTo(old);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		ExpVariant *v = &exp_variants[exp_nvariants++];
		bool		isnull;

		/* the rows are checked when written (recsys.experiments_check); NULLs read as empty all the same */
		strlcpy(v->experiment, NullAsEmpty(SPI_getvalue(t, d, 1)), NAMEDATALEN);
		strlcpy(v->name, NullAsEmpty(SPI_getvalue(t, d, 2)), NAMEDATALEN);
		v->upto = DatumGetFloat8(SPI_getbinval(t, d, 3, &isnull));
		if (isnull)
			v->upto = 0;
		v->version = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
		if (isnull)
			v->version = 0;
		strlcpy(v->model, NullAsEmpty(SPI_getvalue(t, d, 5)), NAMEDATALEN);
	}
	PopActiveSnapshot();
	SPI_finish();
	UnpinSearchPath(pinned);
	exp_generation = serving_generation;
}

/*
 * The variant a user sees: the first running experiment that involves the model,
 * a point from the hash of experiment and user against the cumulative shares (the
 * same as recsys.experiment_variant). NULL when no experiment applies.
 */
static ExpVariant *
ExperimentVariant(const char *model, const char *user)
{
	for (int i = 0; i < exp_nvariants; i++)
	{
		const char *exp = exp_variants[i].experiment;
		bool		involves = false;
		int			j;

		for (j = i; j < exp_nvariants && strcmp(exp_variants[j].experiment, exp) == 0; j++)
			involves |= strcmp(exp_variants[j].model, model) == 0;
		if (involves)
		{
			char	   *key = psprintf("%s:%s", exp, user);
			uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
			double		u = (double) (h & UINT64CONST(9007199254740991)) / 9007199254740992.0;

			for (int k = i; k < j; k++)
				if (u < exp_variants[k].upto)
					return &exp_variants[k];
			return &exp_variants[j - 1];
		}
		i = j - 1;
	}
	return NULL;
}

/* ---------- who may ask for history-revealing answers ---------- */

/*
 * Options that put a customer's own purchases back into an answer (exclude_taken
 * false, repurchase_days; exclude_bought false for items) let a caller read that
 * customer's history and purchase times by comparing answers. They are for the
 * application serving the logged-in customer (recsys_app) and for recsys_admin.
 * The role asked about is the session's, as SET ROLE left it: inside these SECURITY
 * DEFINER functions the current user is their owner.
 */
bool
RecsysMaySeeHistory(void)
{
	Oid			who = GetOuterUserId();
	Oid			app = get_role_oid("recsys_app", true);
	Oid			admin = get_role_oid("recsys_admin", true);

	return superuser_arg(who) || (OidIsValid(app) && has_privs_of_role(who, app)) ||
		(OidIsValid(admin) && has_privs_of_role(who, admin));
}

static void
RequireHistoryRole(const char *option)
{
	if (!RecsysMaySeeHistory())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("option %s needs the role recsys_app or recsys_admin", option),
				 errdetail("It returns a customer's own purchases, so comparing answers would reveal the customer's history."),
				 errhint("Serve with the defaults, or grant recsys_app to the application that serves the logged-in customer.")));
}

PG_FUNCTION_INFO_V1(may_see_history);

Datum
may_see_history(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(RecsysMaySeeHistory());
}

/* ---------- options ---------- */

typedef struct ServeOptions
{
	bool		exclude_taken;
	double		repurchase_days;	/* < 0: never again */
	bool		in_stock;
	double		max_price;		/* < 0: none */
	int			min_categories;
	int32	   *include,
			   *exclude,
			   *session;
	int			ninclude,
				nexclude,
				nsession;
	char		model[NAMEDATALEN];
	int64		version;		/* 0: the active one (or the experiment's variant) */
	bool		filters;		/* any bundle filter besides exclude_taken */
} ServeOptions;

static bool
KeyIs(JsonbValue *k, const char *name)
{
	return strlen(name) == (size_t) k->val.string.len && strncmp(k->val.string.val, name, k->val.string.len) == 0;
}

static void
OptionError(const char *key, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" must be %s", key, want)));
}

/* item ids (JSON strings or numbers) to indexes of the cache; unknown ids are left out */
static int32 *
OptionItems(JsonbValue *v, const char *key, ServingCache *c, int *n, HTAB **itemhash)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int32	   *out;
	int			cap;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		OptionError(key, "an array of item ids");
	cap = JsonContainerSize(v->val.binary.data);
	if (cap > RECSYS_MAX_OPTION_ITEMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("option \"%s\" names at most %d items, got %d", key, RECSYS_MAX_OPTION_ITEMS, cap)));
	out = palloc(sizeof(int32) * Max(cap, 1));
	*n = 0;
	if (*itemhash == NULL && c->items == NULL)
	{
		HASHCTL		ctl;

		/* built once per cache, on the first request that names items */
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(UserKey);
		ctl.entrysize = sizeof(UserEntry);
		ctl.hcxt = c->cxt;
		c->items = hash_create("recsys serving items", Max(c->ni, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		*itemhash = c->items;
		for (int32 i = 0; i < c->ni; i++)
			if (c->item_ext[i])
			{
				UserKey		k = {hash_bytes_extended((const unsigned char *) c->item_ext[i], strlen(c->item_ext[i]), 0)};

				((UserEntry *) hash_search(*itemhash, &k, HASH_ENTER, NULL))->idx = i;
			}
	}
	*itemhash = c->items;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		char	   *s;
		UserKey		k;
		UserEntry  *found;

		CHECK_FOR_INTERRUPTS();
		if (tok != WJB_ELEM)
			continue;
		if (e.type == jbvString)
			s = pnstrdup(e.val.string.val, e.val.string.len);
		else if (e.type == jbvNumeric)
			s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(e.val.numeric)));
		else
			OptionError(key, "an array of item ids (strings or numbers)");
		k.hash = hash_bytes_extended((const unsigned char *) s, strlen(s), 0);
		found = hash_search(*itemhash, &k, HASH_FIND, NULL);
		if (found && strcmp(c->item_ext[found->idx], s) == 0)
			out[(*n)++] = found->idx;
	}
	return out;
}

#define OptionNumber RecsysJsonNumber

static bool
OptionBool(JsonbValue *v, const char *key)
{
	if (v->type != jbvBool)
		OptionError(key, "true or false");
	return v->val.boolean;
}

/* first pass: the model name (decides which cache), and that every key is known */
static void
ParseOptionsModel(Jsonb *opts, ServeOptions *o)
{
	static const char *const known[] = {"exclude_taken", "repurchase_days", "in_stock", "max_price",
	"min_categories", "include_items", "exclude_items", "session", "model", "version", NULL};
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	memset(o, 0, sizeof(*o));
	o->exclude_taken = true;
	o->repurchase_days = -1;
	o->max_price = -1;
	strlcpy(o->model, "default", NAMEDATALEN);
	if (!JB_ROOT_IS_OBJECT(opts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("Pass '{}' for the defaults.")));
	it = JsonbIteratorInit(&opts->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (const char *const *n = known; *n; n++)
			ok |= KeyIs(&k, *n);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%.*s\"", k.val.string.len, k.val.string.val),
					 errhint("Known options: exclude_taken, repurchase_days, in_stock, max_price, min_categories, include_items, exclude_items, session, model, version.")));
		tok = JsonbIteratorNext(&it, &v, true);
		if (KeyIs(&k, "version"))
			o->version = RecsysJsonInt(&v, "version", 1, RECSYS_MAX_EXACT_INT);
		if (KeyIs(&k, "model"))
		{
			if (v.type != jbvString || v.val.string.len == 0 || v.val.string.len >= NAMEDATALEN)
				OptionError("model", "a model name");
			memcpy(o->model, v.val.string.val, v.val.string.len);
			o->model[v.val.string.len] = '\0';
		}
	}
}

static void
ParseOptions(Jsonb *opts, ServeOptions *o, ServingCache *c)
{
	JsonbIterator *it = JsonbIteratorInit(&opts->root);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	HTAB	   *itemhash = NULL;

	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (KeyIs(&k, "exclude_taken"))
		{
			o->exclude_taken = OptionBool(&v, "exclude_taken");
			if (!o->exclude_taken)
				RequireHistoryRole("exclude_taken false");
		}
		else if (KeyIs(&k, "repurchase_days"))
		{
			o->repurchase_days = OptionNumber(&v, "repurchase_days", 0, 36500);
			RequireHistoryRole("repurchase_days");
		}
		else if (KeyIs(&k, "in_stock"))
			o->filters |= o->in_stock = OptionBool(&v, "in_stock");
		else if (KeyIs(&k, "max_price"))
			o->max_price = OptionNumber(&v, "max_price", 0, 1e15), o->filters = true;
		else if (KeyIs(&k, "min_categories"))
			o->min_categories = (int) RecsysJsonInt(&v, "min_categories", 0, 1000), o->filters = true;
		else if (KeyIs(&k, "include_items") && c)
			o->include = OptionItems(&v, "include_items", c, &o->ninclude, &itemhash), o->filters = true;
		else if (KeyIs(&k, "exclude_items") && c)
			o->exclude = OptionItems(&v, "exclude_items", c, &o->nexclude, &itemhash), o->filters = true;
		else if (KeyIs(&k, "session") && c)
			o->session = OptionItems(&v, "session", c, &o->nsession, &itemhash);
	}
	/* include_items naming only unknown items can match no bundle */
	if (o->include && o->ninclude == 0)
		o->ninclude = -1;
}

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

static const char *
ItemLabel(ServingCache *c, int32 i)
{
	if (c->item_name[i])
		return c->item_name[i];
	return psprintf("item %s", c->item_ext[i] ? c->item_ext[i] : "?");
}

static char *
Customers(int32 n)
{
	return psprintf("%d customer%s", n, n == 1 ? "" : "s");
}

/* why a personal recommendation: the strongest single contribution to its fit score */
static char *
PersonalReason(ServingCache *c, int32 b, const int32 *taken, int ntaken, const int32 *items, int nitems, double z,
			   bool session, float score)
{
	const RsBundleModel *m = &c->bm.m;
	float		best = 0;
	int32		via_bundle = -1,
				via_item = -1;
	char	   *social = c->bundle_buyers[b] > 0 ? psprintf("; taken by %s", Customers(c->bundle_buyers[b])) : "";

	for (int t = 0; t < ntaken; t++)
	{
		int32		r = taken[t];

		if (r < 0 || r >= m->nb)
			continue;
		for (int j = 0; j < m->mb; j++)
			if (m->bidx[(int64) r * m->mb + j] == b && m->bval[(int64) r * m->mb + j] > best)
			{
				best = m->bval[(int64) r * m->mb + j];
				via_bundle = r;
			}
	}
	if (z > 0)
		for (int t = 0; t < nitems; t++)
		{
			int32		i = items[t];

			if (i < 0 || i >= m->ni)
				continue;
			for (int j = 0; j < m->mm; j++)
				if (m->midx[(int64) i * m->mm + j] == b)
				{
					float		w = (float) (m->beta * m->idf[i] / z) * m->mval[(int64) i * m->mm + j];

					if (w > best)
					{
						best = w;
						via_item = i;
						via_bundle = -1;
					}
				}
		}
	/* a contribution too small to explain the score would be a misleading reason */
	if (!(score > 0) || best < 0.25f * score)
		return psprintf("close to your history in the model%s", social);
	if (via_item >= 0)
		return psprintf("%s %s%s", session ? "goes with" : "because you bought", ItemLabel(c, via_item), social);
	if (via_bundle >= 0)
		return psprintf("customers who took bundle %s also take this%s", c->bundle_ext[via_bundle], social);
	return psprintf("close to your history in the model%s", social);
}

static char *
PopularReason(ServingCache *c, int32 b, bool known)
{
	const char *who = known ? "popular: " : "popular with all customers (new customer): ";

	if (c->bundle_buyers[b] > 0 && c->has_times)
		return psprintf("%staken by %s, %d in the last %d days", who, Customers(c->bundle_buyers[b]),
						c->bundle_recent[b], RECENT_DAYS);
	if (c->bundle_buyers[b] > 0)
		return psprintf("%staken by %s", who, Customers(c->bundle_buyers[b]));
	if (c->bundle_item_buyers[b] >= 1)
		return psprintf("%sits items were bought by %s on average", who,
						Customers((int32) rint(c->bundle_item_buyers[b])));
	return psprintf("%sa new bundle nobody has taken yet", who);
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
	RsSeq	   *seq = &c->bm.encoder.seq;
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

	int			pinned = PinSearchPath();

	SPI_connect();
	if (bigint_form)
	{
		bool		isnull;

		if (SPI_execute("SELECT EXISTS (SELECT 1 FROM recsys.id_map WHERE space IN ('bundle', 'item') "
						"AND ext_id !~ '^(0|-?[1-9][0-9]{0,17})$')", true, 1) != SPI_OK_SELECT)
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
	UnpinSearchPath(pinned);
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

	user_id = bigint_form ? psprintf(INT64_FORMAT, PG_GETARG_INT64(0)) : text_to_cstring(PG_GETARG_TEXT_PP(0));
	CheckK(k);
	ParseOptionsModel(opts, &o);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	serving_calls++;
	/* a running experiment picks the version (or the baseline) unless a version is asked for */
	ServingAcceptInvalidations();
	ExperimentsLoad();
	if (o.version == 0)
	{
		ExpVariant *ev = ExperimentVariant(o.model, user_id);

		if (ev)
		{
			trace.experiment = pstrdup(ev->experiment);
			trace.variant = pstrdup(ev->name);
			if (ev->version == 0)
			{
				ParseOptions(opts, &o, NULL);
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
		ParseOptions(opts, &o, NULL);
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
	ParseOptions(opts, &o, c);

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
		for (int j = 0; j < nrerank; j++)
		{
			ranked[j].bundle = top[j];
			ranked[j].score = logits[j];
			ranked[j].popular = false;
		}
		qsort(ranked, nrerank, sizeof(Ranked), RankedCmp);
		if (session_tier && c->bm.has_encoder)
			SessionRerank(c, o.session, o.nsession, ranked, nrerank);
		nranked = nrerank;
		/* past the reranked candidates, the fit's order, scored below them */
		if (got > nrerank)
		{
			float		floor_score = nrerank ? ranked[nrerank - 1].score - 1 : 0;
			float		smax = 0;

			for (int32 b = 0; b < m->nb; b++)
				smax = Max(smax, fabsf(s[b]));
			for (int j = nrerank; j < got; j++)
			{
				ranked[nranked].bundle = top[j];
				ranked[nranked].score = floor_score + (smax > 0 ? s[top[j]] / smax - 1 : -1) - (float) j * 1e-6f;
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
			float		low = nranked ? ranked[nranked - 1].score - 1 : 0;

			for (int j = 0; j < nranked; j++)
				done[ranked[j].bundle] = 1;
			for (int32 b = 0; b < c->nb; b++)
				done[b] |= skip[b];
			nrest = rs_top_n(c->pop_score, c->nb, done, k - nranked, rest);
			for (int j = 0; j < nrest; j++)
			{
				ranked[nranked].bundle = rest[j];
				ranked[nranked].score = low - 1 - (float) j * 1e-3f;
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
			ranked[j].score = c->pop_score[top[j]];
			ranked[j].popular = true;
		}
	}

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
				reason = psprintf("further from your history, but popular: taken by %s", Customers(c->bundle_buyers[b]));
			else
				reason = PersonalReason(c, b, taken, ntaken, items, nitems, z, session_tier, sb);
			if (session_tier)
				reason = psprintf("from your session (%s): %s", c->bm.has_encoder ? "GRU" : "items", reason);
		}
		else
			reason = PopularReason(c, b, user >= 0);
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
