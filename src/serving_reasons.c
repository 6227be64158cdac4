/*
 * serving_reasons.c — the reason beside every recommendation: the strongest single
 * contribution to a personal score, or the popularity tier's counts.
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

static const char *
ItemLabel(ServingCache *c, int32 i)
{
	if (c->item_name[i])
		return c->item_name[i];
	return psprintf("item %s", c->item_ext[i] ? c->item_ext[i] : "?");
}

char *
ServingCustomers(int32 n)
{
	return psprintf("%d customer%s", n, n == 1 ? "" : "s");
}

/* a bundle as a person reads it: its name in quotes, or its id */
static char *
BundleLabel(ServingCache *c, int32 b)
{
	if (c->bundle_name[b])
		return psprintf("\"%s\"", c->bundle_name[b]);
	return psprintf("bundle %s", c->bundle_ext[b]);
}

/* why a personal recommendation: the strongest single contribution to its fit score */
char *
ServingPersonalReason(ServingCache *c, int32 b, const int32 *taken, int ntaken, const int32 *items, int nitems, double z,
			   bool session, float score)
{
	const RsBundleModel *m = &c->bm.m;
	float		best = 0;
	int32		via_bundle = -1,
				via_item = -1;
	char	   *social = c->bundle_buyers[b] > 0 ? psprintf("; taken by %s", ServingCustomers(c->bundle_buyers[b])) : "";

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
					float		w = (float) (rs_view_weight(m->beta, z, m->view_norm) * m->idf[i]) *
						m->mval[(int64) i * m->mm + j];

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
		return psprintf("customers who took %s also take this%s", BundleLabel(c, via_bundle), social);
	return psprintf("close to your history in the model%s", social);
}

char *
ServingPopularReason(ServingCache *c, int32 b, bool known, bool unknown_session)
{
	/* a visitor's session of items the catalogue does not know is said, not silently served as new */
	const char *who = known ? "popular: " : unknown_session ?
		"popular with all customers (none of the session's items is in the catalogue): " :
		"popular with all customers (new customer): ";

	if (c->bundle_buyers[b] > 0 && c->has_times)
		return psprintf("%staken by %s, %d in the last %d days", who, ServingCustomers(c->bundle_buyers[b]),
						c->bundle_recent[b], RECENT_DAYS);
	if (c->bundle_buyers[b] > 0)
		return psprintf("%staken by %s", who, ServingCustomers(c->bundle_buyers[b]));
	if (c->bundle_item_buyers[b] >= 1)
		return psprintf("%sits items were bought by %s on average", who,
						ServingCustomers((int32) rint(c->bundle_item_buyers[b])));
	return psprintf("%sa new bundle nobody has taken yet", who);
}
