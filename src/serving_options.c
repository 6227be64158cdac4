/*
 * serving_options.c — recommend_bundles' options: who may ask for answers that reveal
 * a customer's history, the model and version (first pass, which picks the cache), and
 * the filters and item lists (second pass, against the cache's ids).
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

#include "options.h"
#include "serving.h"

/* the options of recommend_bundles, declared in options.c */
#define SERVING_FAMILY "recommend_bundles"

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

static bool
OptionBool(JsonbValue *v, const char *key)
{
	if (v->type != jbvBool)
		OptionError(key, "true or false");
	return v->val.boolean;
}

/* first pass: the model name (decides which cache), and that every key is known */
void
ServingParseOptionsModel(Jsonb *opts, ServeOptions *o)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	memset(o, 0, sizeof(*o));
	o->exclude_taken = true;
	o->repurchase_days = -1;
	o->max_price = -1;
	strlcpy(o->model, "default", NAMEDATALEN);
	RecsysOptionsCheckKeys(opts, SERVING_FAMILY);
	it = JsonbIteratorInit(&opts->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (KeyIs(&k, "version"))
			o->version = RecsysOptionInt(SERVING_FAMILY, &v, "version");
		if (KeyIs(&k, "model"))
		{
			if (v.type != jbvString || v.val.string.len == 0 || v.val.string.len >= NAMEDATALEN)
				OptionError("model", "a model name");
			memcpy(o->model, v.val.string.val, v.val.string.len);
			o->model[v.val.string.len] = '\0';
		}
	}
}

void
ServingParseOptions(Jsonb *opts, ServeOptions *o, ServingCache *c)
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
			o->repurchase_days = RecsysOptionNumber(SERVING_FAMILY, &v, "repurchase_days");
			RequireHistoryRole("repurchase_days");
		}
		else if (KeyIs(&k, "promotions"))
			o->promotions = OptionBool(&v, "promotions");
		else if (KeyIs(&k, "promotions_at"))
		{
			if (v.type != jbvString)
				OptionError("promotions_at", "a timestamp as text");
			o->promotions_at = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else if (KeyIs(&k, "in_stock"))
			o->filters |= o->in_stock = OptionBool(&v, "in_stock");
		else if (KeyIs(&k, "max_price"))
			o->max_price = RecsysOptionNumber(SERVING_FAMILY, &v, "max_price"), o->filters = true;
		else if (KeyIs(&k, "min_categories"))
			o->min_categories = (int) RecsysOptionInt(SERVING_FAMILY, &v, "min_categories"), o->filters = true;
		else if (KeyIs(&k, "include_items") && c)
			o->include = OptionItems(&v, "include_items", c, &o->ninclude, &itemhash), o->filters = true;
		else if (KeyIs(&k, "exclude_items") && c)
			o->exclude = OptionItems(&v, "exclude_items", c, &o->nexclude, &itemhash), o->filters = true;
		else if (KeyIs(&k, "session") && c)
		{
			o->session = OptionItems(&v, "session", c, &o->nsession, &itemhash);
			o->nsession_asked = JsonContainerSize(v.val.binary.data);
		}
	}
	/* include_items naming only unknown items can match no bundle */
	if (o->include && o->ninclude == 0)
		o->ninclude = -1;
}

