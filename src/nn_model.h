/*
 * nn_model.h — a core network (any kind of core/rs_kind.h) held in backend memory, built
 * from v1 weights or from a config and seed, and written back as v1 weights.
 */
#ifndef RECSYS_NN_MODEL_H
#define RECSYS_NN_MODEL_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "core/rs_format.h"
#include "core/rs_kind.h"

/* limits checked on every config, from SQL or from weights */
#define RECSYS_MAX_VOCAB RS_MAX_VOCAB
#define RECSYS_MAX_WIDTH RS_MAX_WIDTH

/* a core network of any registered kind (core/rs_kind.h), its parameters in backend memory */
typedef RsNet RecsysNet;

/* recsys.model_init, called by other C functions too (the bundle scorer's init) */
extern Datum model_init(PG_FUNCTION_ARGS);
/* a scorer's fresh weights: nfeat inputs, hidden units (1..1024), one linear output */
extern Datum RecsysScorerInit(int nfeat, int32 hidden, int64 seed);
/* shape from a config object (validated; errors name the key) */
extern void RecsysNetConfigure(RecsysNet *net, int kind, Jsonb *config);
/* the names of the registered kinds of an input family (RS_INPUT_ANY: all), "mlp" or "rnn or gru" */
extern char *RecsysKindNames(RsInput input);
/* the operations of a network kind, or an error naming what needed one */
extern const RsKindOps *RecsysNetKind(int kind, const char *what);
/* the canonical config JSON of a configured net */
extern char *RecsysNetConfigText(const RecsysNet *net);
/* allocate params (zeroed) in CurrentMemoryContext and bind them */
extern void RecsysNetAllocate(RecsysNet *net);
/* parse and validate weights (format, then shapes against the config) */
extern void RecsysNetLoad(RecsysNet *net, bytea *weights);
/* binds a net of kind configured by config to the tensors prefix + name of a parsed view */
extern void RecsysNetLoadView(RecsysNet *net, const RsFormatView *view, int kind, Jsonb *config, const char *prefix);
/* v1 weights of the net; extra_config (may be NULL) is merged into the config */
extern bytea *RecsysNetSave(const RecsysNet *net, const char *extra_config);
/* releases the core's workspace (not the parameters) */
extern void RecsysNetFreeWork(RecsysNet *net);
/* rebinds the core structs to params (after params moved) */
extern void RecsysNetBind(RecsysNet *net, rs_real *params, rs_real *grads);

/* mlp_train's options (train_agg.c) for a trainer outside the aggregate: optimiser, batch rows, RsLoss */
extern void RecsysMlpTrainOptions(Jsonb *options, RsOptim *opt, int *batch, int *loss);
extern void RecsysCheckLoss(double loss, int64 samples);

/* checks an array of indexes against 0..vocab-1; what ("item", "bundle") names them in errors */
extern int32 *RecsysCheckItems(ArrayType *items, int vocab, int *n, const char *what);

/* a JSON option value in [lo, hi] (RecsysJsonInt: whole numbers only); errors name the key */
extern double RecsysJsonNumber(JsonbValue *v, const char *key, double lo, double hi);
extern int64 RecsysJsonInt(JsonbValue *v, const char *key, int64 lo, int64 hi);
/* the largest integer a JSON number carries exactly (2^53 - 1): the range of seeds and ids in options */
#define RECSYS_MAX_EXACT_INT INT64CONST(9007199254740991)

/* jsonb object access with errors that name the key */
extern JsonbValue *RecsysConfigGet(Jsonb *config, const char *key);
extern int	RecsysConfigInt(Jsonb *config, const char *key, int dflt, int lo, int hi);
extern double RecsysConfigFloat(Jsonb *config, const char *key, double dflt, double lo, double hi);

/* makes the core allocate with palloc0 and check for interrupts */
extern void RecsysCoreHooks(void);

#endif
