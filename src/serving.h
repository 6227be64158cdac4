/*
 * serving.h — the pieces of recommend_bundles, split by phase as pgvector splits its
 * index: the per-backend cache and its loading (serving_cache.c), the options
 * (serving_options.c), the reasons (serving_reasons.c), and the ranking tiers with
 * the SRF (serving.c).
 */
#ifndef RECSYS_SERVING_H
#define RECSYS_SERVING_H

#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/jsonb.h"

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
			  **item_name,
			  **bundle_name;	/* recsys.bundle_attrs: registered or built from the items */
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
	float	   *pop_prob;		/* its scores: softmax of pop_score over every bundle (sums to 1) */
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

typedef struct ExpVariant
{
	char		experiment[NAMEDATALEN];
	char		name[NAMEDATALEN];
	double		upto;			/* cumulative share */
	int64		version;		/* 0: the baseline ranker */
	char		model[NAMEDATALEN];
} ExpVariant;


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
				nsession,
				nsession_asked;	/* session ids given, known to the catalogue or not */
	char		model[NAMEDATALEN];
	int64		version;		/* 0: the active one (or the experiment's variant) */
	bool		filters;		/* any bundle filter besides exclude_taken */
	bool		promotions;		/* attach the best running offer to each reason */
	char	   *promotions_at;	/* the time the offers run at (NULL: now) */
} ServeOptions;


/* serving_cache.c */
extern int64 serving_calls;
extern ServingCache *ServingCacheGet(const char *model, int64 asked);
extern void ServingAcceptInvalidations(void);
extern uint64 ServingGeneration(void);
extern void ServingExperimentsLoad(void);
extern ExpVariant *ServingExperimentVariant(const char *model, const char *user);
extern int	ServingPinSearchPath(void);
extern void ServingUnpinSearchPath(int level);

/* serving_options.c; the session's role may ask for answers that reveal a customer's own purchases */
extern bool RecsysMaySeeHistory(void);
extern void ServingParseOptionsModel(Jsonb *opts, ServeOptions *o);
extern void ServingParseOptions(Jsonb *opts, ServeOptions *o, ServingCache *c);

/* serving_reasons.c */
extern char *ServingCustomers(int32 n);
extern char *ServingPersonalReason(ServingCache *c, int32 b, const int32 *taken, int ntaken, const int32 *items,
								   int nitems, double z, bool session, float score);
/* known: a customer recsys knows; unknown_session: a visitor whose session names no item of the catalogue */
extern char *ServingPopularReason(ServingCache *c, int32 b, bool known, bool unknown_session);

#endif
