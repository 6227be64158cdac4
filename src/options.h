/*
 * options.h — every option of every function family, declared once (options.c): the C
 * parsers check keys and ranges against it, recsys.option_specs() hands it to the SQL
 * parsers and the README reference.
 */
#ifndef RECSYS_OPTIONS_H
#define RECSYS_OPTIONS_H

#include "postgres.h"

#include "utils/jsonb.h"

typedef struct RecsysOptionSpec
{
	const char *family;			/* the function family: recommend_bundles, train, mlp_train, ... */
	const char *key;
	const char *type;			/* integer, number, boolean, string, object or array (as jsonb_typeof) */
	const char *min,
			   *max;			/* numbers as text, or NULL */
	const char *dflt;			/* JSON text, or NULL: none */
	const char *help;
} RecsysOptionSpec;

/* the spec of family's key, or NULL */
extern const RecsysOptionSpec *RecsysOptionFind(const char *family, const char *key, int keylen);
/* errors unless options is an object whose keys family declares; the hint lists them */
extern void RecsysOptionsCheckKeys(Jsonb *options, const char *family);
/* a value in its declared range (RecsysOptionInt: whole numbers only) */
extern double RecsysOptionNumber(const char *family, JsonbValue *v, const char *key);
extern int64 RecsysOptionInt(const char *family, JsonbValue *v, const char *key);
/* the key's declared default (an ERROR for a key without one) */
extern int64 RecsysOptionDefaultInt(const char *family, const char *key);
/* the key's value in options, or its declared default */
extern double RecsysOptionGetNumber(Jsonb *options, const char *family, const char *key);
extern int64 RecsysOptionGetInt(Jsonb *options, const char *family, const char *key);

#endif
