/*
 * bundle_model.h — the bundle ranker in the server: fitting it on the prepared
 * data (recsys.bundle_fit), its training samples (recsys.bundle_samples), its
 * composition with the learned scorer and the GRU (recsys.bundle_attach), and
 * loading it for serving.
 */
#ifndef RECSYS_BUNDLE_MODEL_H
#define RECSYS_BUNDLE_MODEL_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "core/rs_bundle.h"
#include "nn_model.h"

/* compressed rows: members of row r are idx[ptr[r] .. ptr[r + 1]) */
typedef struct RecsysCsr
{
	int32		nrows;
	int32	   *ptr;
	int32	   *idx;
} RecsysCsr;

/*
 * Reads (row bigint, member integer) pairs, rows in 0..nrows-1 and members in
 * 0..limit-1, into a CSR in CurrentMemoryContext. Call between SPI_connect and
 * SPI_finish; the arrays are allocated in mcxt.
 */
extern void RecsysCsrLoad(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, MemoryContext mcxt);
/* the same, with nextra (at most 4) more columns (bigint or timestamptz; NULL -> PG_INT64_MIN), each kept
 * parallel to idx in extra[c]: one scan where several values per member are needed */
extern void RecsysCsrLoadWith(const char *query, int32 nrows, int32 limit, RecsysCsr *csr, int nextra, int64 **extra,
							  MemoryContext mcxt);

/* the number of indexes of a space of recsys.id_map (user, item, bundle); ERRORs when bundles or items pass
 * the weights' index limit (2^24). Call between SPI_connect and SPI_finish. */
extern int32 RecsysSpaceCount(const char *space);
/* md5 of the ids of bundles 0..nb-1 and items 0..ni-1 (inside SPI) */
extern char *RecsysCatalogue(int32 nb, int32 ni);

/* the held-out bundle of a customer's list under seed, or -1 (fewer than 2) */
extern int	RecsysHoldoutPick(uint64 seed, int32 user, const int32 *bundles, int n);
/* whether a customer with a held-out bundle validates (1 in 5) rather than trains the scorer */
extern bool RecsysHoldoutValid(uint64 seed, int32 user);

typedef struct RecsysBundle
{
	RsBundleModel m;
	Jsonb	   *config;			/* the weights' whole config */
	int			candidates;		/* reranked per request */
	bool		has_scorer;
	RecsysNet	scorer;			/* mlp over RS_BUNDLE_NFEAT features */
	bool		has_encoder;
	RecsysNet	encoder;		/* gru over item sequences */
} RecsysBundle;

/* parses bundle weights into b; keeps pointers into weights (which must outlive b) */
extern void RecsysBundleLoad(bytea *weights, RecsysBundle *b);

/* scorer logits for ncand candidates (x: ncand x RS_BUNDLE_NFEAT) into out */
extern void RecsysBundleRerank(RecsysBundle *b, const float *x, int ncand, float *out);

#endif
