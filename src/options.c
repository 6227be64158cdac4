/*
 * options.c — every option of every function family, declared once: key, type, range,
 * default and help. The C parsers (serving, the training aggregates, the bundle fit)
 * check keys and ranges against it; recsys.option_specs() hands it to the SQL parsers
 * (recsys.check_options: training, features, mining, splits), whose defaults come from
 * it; scripts/reference.sh prints it into the README. One rule, one wording, and a hint
 * generated from the family's keys.
 */
#include "postgres.h"

#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "nn_model.h"
#include "options.h"

#define EXACT "9007199254740991"	/* 2^53 - 1: the largest integer a JSON number carries exactly */

/* the optimiser's options, which both training aggregates take; the optimiser sets the defaults of the rest */
#define OPTIMIZER_SPECS(family) \
	{family, "optimizer", "string", NULL, NULL, "\"adam\"", "sgd, momentum or adam"}, \
	{family, "lr", "number", "0", "100", NULL, "learning rate (the optimiser's default)"}, \
	{family, "momentum", "number", "0", "1", NULL, "momentum"}, \
	{family, "beta1", "number", "0", "0.999999", NULL, "Adam's first-moment decay"}, \
	{family, "beta2", "number", "0", "0.999999", NULL, "Adam's second-moment decay"}, \
	{family, "eps", "number", "0.000000000001", "1", NULL, "Adam's epsilon"}, \
	{family, "l2", "number", "0", "10", NULL, "L2 penalty"}, \
	{family, "clip", "number", "0", "1000000", NULL, "global gradient-norm clip"}

static const RecsysOptionSpec specs[] = {
	/* recommend_bundles (C) */
	{"recommend_bundles", "exclude_taken", "boolean", NULL, NULL, "true", "leave out bundles the customer took (false: recsys_app or recsys_admin)"},
	{"recommend_bundles", "repurchase_days", "number", "0", "36500", NULL, "let bundles taken this many days ago or earlier return (recsys_app or recsys_admin)"},
	{"recommend_bundles", "in_stock", "boolean", NULL, NULL, "false", "only bundles whose items are all in stock"},
	{"recommend_bundles", "max_price", "number", "0", "1e15", NULL, "only bundles whose items cost at most this together"},
	{"recommend_bundles", "min_categories", "integer", "0", "1000", "0", "only bundles spanning at least this many categories"},
	{"recommend_bundles", "include_items", "array", NULL, NULL, NULL, "only bundles holding every one of these item ids (at most 1000)"},
	{"recommend_bundles", "exclude_items", "array", NULL, NULL, NULL, "no bundle holding any of these item ids (at most 1000)"},
	{"recommend_bundles", "session", "array", NULL, NULL, NULL, "a visitor's item ids in order (at most 1000; the GRU reads the last 50)"},
	{"recommend_bundles", "model", "string", NULL, NULL, "\"default\"", "the model to serve"},
	{"recommend_bundles", "version", "integer", "1", EXACT, NULL, "serve this version rather than the active one (or an experiment's)"},
	{"recommend_bundles", "promotions", "boolean", NULL, NULL, "false", "attach to each bundle's reason the running offer on its items that adds the most margin for the customer (recommend_promotions)"},
	{"recommend_bundles", "promotions_at", "string", NULL, NULL, NULL, "the time the attached offers must run at (a timestamp as text; default now)"},
	/* recommend_items and complete_bundle (SQL; each knows a subset) */
	{"items", "exclude_bought", "boolean", NULL, NULL, NULL, "leave out items the customer bought (default: true for readers; for recsys_app and recsys_admin false, the model decides)"},
	{"items", "exclude_taken", "boolean", NULL, NULL, NULL, "exclude_bought under the name recommend_bundles uses (recommend_items)"},
	{"items", "in_stock", "boolean", NULL, NULL, "false", "only items in stock"},
	{"items", "max_price", "number", "0", "1e15", NULL, "only items costing at most this"},
	{"items", "model", "string", NULL, NULL, "\"items\"", "the item model to serve (recommend_items)"},
	/* recommend_promotions (SQL) */
	{"recommend_promotions", "model", "string", NULL, NULL, "\"promotions\"", "the response model to serve (before one is trained, each offer's measured shares)"},
	{"recommend_promotions", "at", "string", NULL, NULL, NULL, "the time the offers must run at (a timestamp as text; default now)"},
	{"recommend_promotions", "margin", "number", "0", "1", "0.3", "the shop's margin as a share of the target's price"},
	/* recsys.forecast_demand and recsys.demand_backtest (SQL and C) */
	{"forecast_demand", "level", "string", NULL, NULL, "\"item\"", "what to forecast: item, category or bundle"},
	{"forecast_demand", "origin", "string", NULL, NULL, NULL, "the last day of history (a date as text; default the day of the newest event)"},
	{"forecast_demand", "history_days", "integer", "28", "3650", "364", "days of history the model learns from"},
	{"forecast_demand", "method", "string", NULL, NULL, "\"model\"", "model (the global MLP over all series), seasonal_naive or ets (exponential smoothing with weekday factors)"},
	{"forecast_demand", "epochs", "integer", "1", "200", "20", "training epochs of the global model at most (early stop on the last weeks)"},
	{"forecast_demand", "hidden", "integer", "1", "1024", "32", "hidden units of the global model"},
	{"forecast_demand", "lr", "number", "0.000000001", "100", "0.003", "learning rate of the global model"},
	{"forecast_demand", "max_samples", "integer", "1000", "5000000", "400000", "training windows at most (a seeded sample)"},
	{"forecast_demand", "seed", "integer", "-" EXACT, EXACT, "42", "seed of the model and the sample"},
	{"forecast_demand", "coverage", "number", "0.5", "0.99", "0.8", "the prediction interval's coverage"},
	{"forecast_demand", "store", "boolean", NULL, NULL, "true", "keep the forecasts in recsys.demand_forecasts"},
	{"forecast_demand", "origins", "integer", "1", "52", "4", "rolling origins of recsys.demand_backtest, a week apart"},
	/* recsys.train (SQL); lambda, keep_m and patience chosen on the Youshu tune split (bench/youshu_quality.sh) */
	{"train", "seed", "integer", "-" EXACT, EXACT, "42", "seed of the held-out split, the scorer and the GRU"},
	{"train", "lambda", "number", "0.000001", "1000000000", "500", "ridge of the bundle fit"},
	{"train", "beta", "number", "0", "1000000", "3.2", "weight of the item view in the fit"},
	{"train", "view_norm", "number", "0", "1", "0.75", "how a customer's item view is normalised: its weights fall as (item mass)^-view_norm; 1: every view sums to beta"},
	{"train", "content", "number", "0", "1000000", "3", "weight of the bundles' shared items in the fit (each item a pseudo-customer who took the bundles holding it, idf-weighted; 0: none)"},
	{"train", "keep_b", "integer", "1", "12000", "256", "strongest bundle-to-bundle entries kept per bundle"},
	{"train", "keep_m", "integer", "1", "12000", "64", "strongest item-to-bundle entries kept per item"},
	{"train", "dense_max", "integer", "0", "12000", "12000", "bundles up to which the fit is exact (dense: memory bundles squared); past it, low-rank"},
	{"train", "rank", "integer", "2", "2048", "256", "eigenpairs the low-rank fit keeps"},
	{"train", "max_customers", "integer", "0", "2147483647", "100000", "customers the scorer, the item blend and the GRU learn from at most (a seeded sample; 0: all); the fit sees everyone"},
	{"train", "candidates", "integer", "1", "10000", "100", "candidates the learned scorer reranks per request"},
	{"train", "hidden", "integer", "1", "1024", "32", "hidden units of the scorer"},
	{"train", "lr", "number", "0.000000001", "100", "0.01", "learning rate of the scorer"},
	{"train", "scorer_loss", "string", NULL, NULL, "\"bce\"", "the scorer's loss: bce (each candidate on its own) or listwise (a softmax over each customer's candidates)"},
	{"train", "max_epochs", "integer", "1", "1000", "30", "scorer epochs at most"},
	{"train", "patience", "integer", "1", "1000", "6", "epochs without a better validation NDCG@20 before stopping"},
	{"train", "gru_epochs", "integer", "0", "100", "1", "GRU epochs (0: no GRU: neither the bundle model's session encoder nor the item model's sequence feature)"},
	{"train", "gru_embed", "integer", "1", "8192", "32", "GRU item embedding width"},
	{"train", "gru_hidden", "integer", "1", "8192", "64", "GRU hidden units"},
	{"train", "force", "boolean", NULL, NULL, "false", "activate even when worse than the active version"},
	{"train", "resume", "boolean", NULL, NULL, "true", "resume an interrupted training of the model"},
	{"train", "incremental", "boolean", NULL, NULL, "false", "warm-start from the active version; GRU on new customers only"},
	{"train", "features", "boolean", NULL, NULL, "true", "refresh features and mined bundles first"},
	{"train", "bundles", "string", NULL, NULL, "\"both\"", "the bundles to serve: curated, mined or both (see recsys.refresh_features)"},
	{"train", "max_mined", "integer", "0", "1000000", "2000", "mined bundles adopted at most"},
	{"train", "items", "boolean", NULL, NULL, "false", "train the item model too (a shop without bundles, or CALL recsys.train('items'), trains it alone)"},
	/* recsys.refresh_features, recsys.mine_bundles, recsys.split_pairs (SQL) */
	{"refresh_features", "window_days", "integer", "1", "36500", "30", "the recent window of trends and profiles"},
	{"refresh_features", "min_pair_count", "integer", "1", "2147483647", "2", "baskets an item pair needs"},
	{"refresh_features", "mining", "object", NULL, NULL, "{}", "options of recsys.mine_bundles"},
	{"refresh_features", "bundles", "string", NULL, NULL, "\"both\"", "the bundles to serve: curated, mined or both (mined ones beside curated ones only when taken in some basket)"},
	{"refresh_features", "max_mined", "integer", "0", "1000000", "2000", "mined bundles adopted at most (the strongest: most customers, then lift)"},
	{"mine_bundles", "min_customers", "integer", "2", "2147483647", "5", "distinct customers per bundle (at least 2: none describes one person)"},
	{"mine_bundles", "min_lift", "number", "0", "1000000000", "1.5", "lift over independence"},
	{"mine_bundles", "max_size", "integer", "2", "5", "3", "items per bundle at most"},
	{"mine_bundles", "cross_category", "boolean", NULL, NULL, "false", "only bundles spanning two or more categories"},
	{"mine_bundles", "max_basket", "integer", "2", "10000", "50", "baskets with more items are skipped"},
	{"split_pairs", "seed", "integer", "-" EXACT, EXACT, "42", "seed of the split"},
	{"split_pairs", "fraction", "number", "0", "1", "0.2", "share held out (random, time)"},
	{"split_pairs", "folds", "integer", "2", "100", "5", "folds (kfold)"},
	/* recsys.bundle_fit, recsys.fit_partial, recsys.fit_merge (C) */
	{"bundle_fit", "lambda", "number", "0.000001", "1000000000", "500", "ridge"},
	{"bundle_fit", "beta", "number", "0", "1000000", "3.2", "weight of the item view"},
	{"bundle_fit", "view_norm", "number", "0", "1", "0.75", "how a customer's item view is normalised: its weights fall as (item mass)^-view_norm; 1: every view sums to beta"},
	{"bundle_fit", "content", "number", "0", "1000000", "3", "weight of the bundles' shared items (each item a pseudo-customer who took the bundles holding it, idf-weighted; 0: none)"},
	{"bundle_fit", "keep_b", "integer", "1", "12000", "256", "strongest bundle-to-bundle entries kept per bundle"},
	{"bundle_fit", "keep_m", "integer", "1", "12000", "64", "strongest item-to-bundle entries kept per item"},
	{"bundle_fit", "dense_max", "integer", "0", "12000", "12000", "bundles up to which the fit is exact (dense: memory bundles squared); past it, low-rank"},
	{"bundle_fit", "rank", "integer", "2", "2048", "256", "eigenpairs the low-rank fit keeps"},
	{"bundle_fit", "holdout_seed", "integer", "0", EXACT, NULL, "hold one bundle per customer out, seeded"},
	/* the training aggregates mlp_train and rnn_train (C) */
	OPTIMIZER_SPECS("mlp_train"),
	{"mlp_train", "batch", "integer", "1", "65536", "256", "rows per optimiser step"},
	{"mlp_train", "loss", "string", NULL, NULL, "\"bce\"", "bce (on logits) or mse"},
	OPTIMIZER_SPECS("rnn_train"),
	{"rnn_train", "batch", "integer", "1", "65536", "256", "sequences per optimiser step"},
	{"rnn_train", "negatives", "integer", "0", "100000", "100", "negatives sampled per step"},
	{"rnn_train", "max_len", "integer", "1", "10000", "20", "most recent items kept per sequence"},
	{"rnn_train", "seed", "integer", "-" EXACT, EXACT, "0", "seed of the negative sampling"},
};

const RecsysOptionSpec *
RecsysOptionFind(const char *family, const char *key, int keylen)
{
	for (int i = 0; i < lengthof(specs); i++)
		if (strcmp(specs[i].family, family) == 0 && (int) strlen(specs[i].key) == keylen &&
			strncmp(specs[i].key, key, keylen) == 0)
			return &specs[i];
	return NULL;
}

static const RecsysOptionSpec *
OptionSpec(const char *family, const char *key)
{
	const RecsysOptionSpec *s = RecsysOptionFind(family, key, (int) strlen(key));

	if (s == NULL)
		elog(ERROR, "option \"%s\" of %s is not declared", key, family);
	return s;
}

void
RecsysOptionsCheckKeys(Jsonb *options, const char *family)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken tok;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("Pass '{}' for the defaults.")));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		StringInfoData known;

		if (tok != WJB_KEY || RecsysOptionFind(family, k.val.string.val, k.val.string.len))
			continue;
		initStringInfo(&known);
		for (int i = 0; i < lengthof(specs); i++)
			if (strcmp(specs[i].family, family) == 0)
				appendStringInfo(&known, "%s%s", known.len ? ", " : "", specs[i].key);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown option \"%.*s\"", k.val.string.len, k.val.string.val),
				 errhint("Known options of %s: %s.", family, known.data)));
	}
}

double
RecsysOptionNumber(const char *family, JsonbValue *v, const char *key)
{
	const RecsysOptionSpec *s = OptionSpec(family, key);

	return RecsysJsonNumber(v, key, strtod(s->min, NULL), strtod(s->max, NULL));
}

int64
RecsysOptionInt(const char *family, JsonbValue *v, const char *key)
{
	const RecsysOptionSpec *s = OptionSpec(family, key);

	return RecsysJsonInt(v, key, strtoll(s->min, NULL, 10), strtoll(s->max, NULL, 10));
}

int64
RecsysOptionDefaultInt(const char *family, const char *key)
{
	const RecsysOptionSpec *s = OptionSpec(family, key);

	if (s->dflt == NULL)
		elog(ERROR, "option \"%s\" of %s has no default", key, family);
	return strtoll(s->dflt, NULL, 10);
}

double
RecsysOptionGetNumber(Jsonb *options, const char *family, const char *key)
{
	JsonbValue *v = RecsysConfigGet(options, key);

	const RecsysOptionSpec *s = OptionSpec(family, key);

	if (v)
		return RecsysOptionNumber(family, v, key);
	if (s->dflt == NULL)
		elog(ERROR, "option \"%s\" of %s has no default", key, family);
	return strtod(s->dflt, NULL);
}

int64
RecsysOptionGetInt(Jsonb *options, const char *family, const char *key)
{
	JsonbValue *v = RecsysConfigGet(options, key);

	return v ? RecsysOptionInt(family, v, key) : RecsysOptionDefaultInt(family, key);
}

/* ---------- recsys.option_specs() ---------- */

PG_FUNCTION_INFO_V1(option_specs);

Datum
option_specs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < lengthof(specs); i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(specs[i].family);
		values[1] = CStringGetTextDatum(specs[i].key);
		values[2] = CStringGetTextDatum(specs[i].type);
		nulls[3] = specs[i].min == NULL;
		nulls[4] = specs[i].max == NULL;
		nulls[5] = specs[i].dflt == NULL;
		if (specs[i].min)
			values[3] = DirectFunctionCall3(numeric_in, CStringGetDatum(specs[i].min), ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1));
		if (specs[i].max)
			values[4] = DirectFunctionCall3(numeric_in, CStringGetDatum(specs[i].max), ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1));
		if (specs[i].dflt)
			values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(specs[i].dflt));
		values[6] = CStringGetTextDatum(specs[i].help);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
