/*
 * bundle_model.h — the bundle ranker in the server, split by phase: fitting it on
 * the prepared data (bundle_fit.c: recsys.bundle_fit, fit_partial, fit_merge), its
 * training samples and features (bundle_samples.c), its composition with the learned
 * scorer and the GRU and loading it for serving (bundle_load.c).
 */
#ifndef RECSYS_BUNDLE_MODEL_H
#define RECSYS_BUNDLE_MODEL_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "core/rs_bundle.h"
#include "core/rs_fit.h"
#include "core/rs_format.h"
#include "nn_model.h"

#include "prepared.h"


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

/* helpers of the weights a fit, its partials and the loader share (bundle_load.c) */
extern Jsonb *RecsysViewConfig(const RsFormatView *view);
extern Jsonb *RecsysSubConfig(Jsonb *config, const char *key);
extern char *RecsysConfigText(const RsFormatView *view);
extern int64 RecsysTensorLen(const RsFormatView *view, const char *name);
extern int	RecsysCopyTensors(const RsFormatView *view, const char *prefix, const char *const *only, const char *skip,
							  RsTensorDesc *desc, const float **data, int n);
extern bytea *RecsysWeightsPart(const RsFormatView *view, const char *prefix, const char *cfgkey, int kind);
extern int32 *RecsysIndexesFromFloat(const float *f, int64 n, int64 limit, const char *name);

/* parses bundle weights into b; keeps pointers into weights (which must outlive b) */
extern void RecsysBundleLoad(bytea *weights, RecsysBundle *b);

/* scorer logits for ncand candidates (x: ncand x RS_BUNDLE_NFEAT) into out */
extern void RecsysBundleRerank(RecsysBundle *b, const float *x, int ncand, float *out);

#endif
