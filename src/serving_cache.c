/*
 * serving_cache.c — the per-backend serving cache: the active (or asked-for) version of
 * a bundle model and the prepared data it reads, loaded once and kept until a relcache
 * invalidation of recsys.model_versions arrives (recsys.activate_version and
 * recsys.prepare send one through recsys.serving_invalidate; it reaches every backend
 * when they commit, so a newly activated version serves from the next statement on),
 * and the running experiments, reloaded with it.
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
int64		serving_calls = 0;

/* running experiments, reloaded with the caches */
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
		bool		isnull_attrs;

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
		c->bundle_name = MemoryContextAllocZero(cxt, sizeof(char *) * Max(c->nb, 1));
		/* no names in a schema from before bundles had them (0.1.0 served by this library) */
		if (SPI_execute("SELECT pg_catalog.to_regclass('recsys.bundle_attrs') IS NOT NULL", true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not look for recsys.bundle_attrs");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull_attrs)))
		{
			if (SPI_execute("SELECT bundle_idx, name FROM recsys.bundle_attrs", true, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not read recsys.bundle_attrs");
			for (uint64 r = 0; r < SPI_processed; r++)
			{
				bool		isnull;
				int32		b = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
				char	   *name = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

				if (b >= 0 && b < c->nb && name)
					c->bundle_name[b] = MemoryContextStrdup(cxt, name);
			}
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
	c->pop_prob = MemoryContextAllocZero(cxt, sizeof(float) * Max(c->nb, 1));
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
	/* the popularity tier's score: a bundle's share of the popularity, 0..1 like the other tiers' */
	{
		float		top = -INFINITY;
		double		z = 0;

		for (int32 b = 0; b < c->nb; b++)
			top = Max(top, c->pop_score[b]);
		for (int32 b = 0; b < c->nb; b++)
			z += exp((double) c->pop_score[b] - top);
		for (int32 b = 0; b < c->nb; b++)
			c->pop_prob[b] = (float) (exp((double) c->pop_score[b] - top) / z);
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
int
ServingPinSearchPath(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
ServingUnpinSearchPath(int level)
{
	AtEOXact_GUC(true, level);
}

void
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

/* the generation caches compare with theirs: it moves on every invalidation (the item cache keeps to it too) */
uint64
ServingGeneration(void)
{
	ServingAcceptInvalidations();
	return serving_generation;
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

ServingCache *
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

		int			pinned = ServingPinSearchPath();

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
		ServingUnpinSearchPath(pinned);
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
void
ServingExperimentsLoad(void)
{
	MemoryContext old;
	int			pinned;

	if (exp_generation == serving_generation)
		return;
	if (exp_variants)
		pfree(exp_variants);
	exp_variants = NULL;
	exp_nvariants = 0;
	pinned = ServingPinSearchPath();
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
	ServingUnpinSearchPath(pinned);
	exp_generation = serving_generation;
}

/*
 * The variant a user sees: the first running experiment that involves the model,
 * a point from the hash of experiment and user against the cumulative shares (the
 * same as recsys.experiment_variant). NULL when no experiment applies.
 */
ExpVariant *
ServingExperimentVariant(const char *model, const char *user)
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

