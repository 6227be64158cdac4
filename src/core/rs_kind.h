/*
 * rs_kind.h — the network kinds, behind one operations table.
 *
 * A kind is what the weights format's header names (RS_KIND_*): its config (declared
 * fields, so the glue parses, prints, stores and checks every kind alike), its tensors in
 * parameter order, and what it does: init, forward, one training step, free. The glue
 * (model_init, the forward functions, the training aggregates, the weights reader) asks
 * rs_kind_ops() and never branches on a kind.
 *
 * Adding a kind: its code in the weights format (rs_format.h, with its name in
 * rs_format.c), a core file with its struct and an RsKindOps (rs_mlp.c, rs_seq.c are the
 * examples), its struct in RsNet's union and one line in rs_kind.c's table, and its unit
 * tests (gradient check in test/unit/). Its input family says which SQL functions serve
 * and train it: rows of features (mlp_forward, mlp_train) or item sequences (rnn_encode,
 * rnn_train).
 */
#ifndef RS_KIND_H
#define RS_KIND_H

#include <stddef.h>

#include "rs_core.h"
#include "rs_format.h"
#include "rs_mlp.h"
#include "rs_optim.h"
#include "rs_seq.h"

/* limits of every config, from SQL or from weights */
#define RS_MAX_WIDTH 8192
#define RS_MAX_VOCAB 10000000

/* what a kind reads */
typedef enum RsInput
{
	RS_INPUT_ANY = -1,			/* (a filter meaning every family) */
	RS_INPUT_ROWS = 0,			/* rows of in_width features -> out_width outputs */
	RS_INPUT_ITEMS				/* sequences of item indexes below n_items -> out_width states */
} RsInput;

/* a network of a registered kind: its shape, bound to one flat parameter array */
typedef struct RsNet
{
	int			kind;
	union
	{
		RsMlp		mlp;
		RsSeq		seq;
	}			u;
	int64_t		nparams;
	rs_real    *params;
} RsNet;

/* one config field of a kind: where it lands in RsNet and what it may hold */
typedef enum RsCfgType
{
	RS_CFG_INT = 0,				/* int in [lo, hi]; required when dflt < 0 */
	RS_CFG_ACT,					/* an activation name, stored as RsAct */
	RS_CFG_WIDTHS				/* an array of 2..RS_MLP_MAX_LAYERS + 1 widths in [lo, hi]: int[] at offset,
								 * count - 1 at offset2 */
} RsCfgType;

typedef struct RsCfgField
{
	const char *key;
	RsCfgType	type;
	int			dflt;
	int			lo,
				hi;
	size_t		offset,
				offset2;
} RsCfgField;

#define RS_CFG_AT(net, f) ((int *) ((char *) (net) + (f)->offset))

/* a training mini-batch of n rows, of the kind's input */
typedef struct RsBatch
{
	int			n;
	/* RS_INPUT_ROWS: n x in_width features, n x out_width targets, the loss */
	const rs_real *x,
			   *y;
	RsLoss		loss;
	/* RS_LOSS_LISTWISE: the rows' groups, group g = rows gptr[g] .. gptr[g + 1] - 1 */
	const int32_t *gptr;
	int			ngroups;
	/* RS_INPUT_ITEMS: n x steps item indexes (row b valid up to len[b]), n targets, k shared negatives */
	const int32_t *items,
			   *len,
			   *targets,
			   *negs;
	int			steps,
				k;
} RsBatch;

#define RS_KIND_MAX_TENSORS (RS_MLP_MAX_LAYERS * 2)

typedef struct RsKindOps
{
	int			kind;			/* RS_KIND_*, the format's code */
	RsInput		input;
	const RsCfgField *config;	/* terminated by a NULL key */
	/* derived shape after the config fields are set (fixed choices of the kind); the parameter count */
	int64_t		(*layout) (RsNet *net);
	/* the weights format's tensors in parameter order (at most RS_KIND_MAX_TENSORS); returns how many */
	int			(*tensors) (const RsNet *net, RsTensorDesc *d);
	void		(*bind) (RsNet *net, rs_real *params, rs_real *grads);
	void		(*init) (RsNet *net, RsRng *rng);
	void		(*free) (RsNet *net);
	int			(*in_width) (const RsNet *net);	/* features per row; items: 0 */
	int			(*out_width) (const RsNet *net);
	int			(*n_items) (const RsNet *net);	/* items: the vocabulary; rows: 0 */
	/* floats of activations and their gradients that one training step of batch rows holds */
	int64_t		(*activations) (const RsNet *net, int batch, int steps, int k);
	/* forward of n rows (steps: the longest sequence); returns n x out_width, before any output activation */
	rs_real    *(*forward) (RsNet *net, const RsBatch *b);
	/* the output activation applied when serving (rows); items: RS_ACT_LINEAR */
	RsAct		(*output) (const RsNet *net);
	/* forward, loss, backward and one optimiser step; returns the mean loss */
	double		(*train_step) (RsNet *net, RsOptim *opt, rs_real *grads, rs_real *opt_m, rs_real *opt_v,
							   const RsBatch *b);
} RsKindOps;

/* the operations of a network kind; NULL when kind is not one (baseline, bundle, unknown) */
extern const RsKindOps *rs_kind_ops(int kind);
/* the i-th registered kind, NULL past the last */
extern const RsKindOps *rs_kind_at(int i);

/*
 * A configured shape as RS_KIND_CFG_INTS ints (each field in order; widths as count, then
 * the widths; the rest zero), for states that travel as bytes (the training aggregates'),
 * and back: unpack checks every field against its declaration and returns the parameter
 * count, or -1 when a field is out of range (bytes from elsewhere are not trusted).
 */
#define RS_KIND_CFG_INTS 32
extern void rs_kind_pack(const RsKindOps *ops, const RsNet *net, int32_t *cfg);
extern int64_t rs_kind_unpack(const RsKindOps *ops, const int32_t *cfg, RsNet *net);

/* fills d[0..n) numel from their dims (a helper for tensors(); inline, so a kind's file links alone) */
static inline void
rs_kind_numel(RsTensorDesc *d, int n)
{
	for (int i = 0; i < n; i++)
	{
		d[i].numel = 1;
		for (int j = 0; j < d[i].ndim; j++)
			d[i].numel *= d[i].dims[j];
	}
}

extern const RsKindOps rs_mlp_ops;
extern const RsKindOps rs_rnn_ops;
extern const RsKindOps rs_gru_ops;

#endif
