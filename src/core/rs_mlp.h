/*
 * rs_mlp.h — a multi-layer perceptron of any depth, batched forward and backward
 * on GEMM. Parameters live in one flat array in the order l0.w, l0.b, l1.w, ...
 * (w row-major fan_in x fan_out), so the optimiser and model averaging treat the
 * model as one vector and the weights format stores it tensor by tensor.
 */
#ifndef RS_MLP_H
#define RS_MLP_H

#include "rs_core.h"
#include "rs_optim.h"

#define RS_MLP_MAX_LAYERS 16
#define RS_MLP_MAX_WIDTH 65536

typedef enum RsLoss
{
	RS_LOSS_BCE = 0,			/* on logits: the output activation is applied only when serving */
	RS_LOSS_MSE,
	RS_LOSS_LISTWISE			/* on logits, a softmax per group of rows (a customer's candidates) */
} RsLoss;

typedef struct RsMlp
{
	int			nlayers;		/* weight layers */
	int			dims[RS_MLP_MAX_LAYERS + 1];
	RsAct		hidden;
	RsAct		output;
	rs_real    *w[RS_MLP_MAX_LAYERS],
			   *b[RS_MLP_MAX_LAYERS];
	rs_real    *gw[RS_MLP_MAX_LAYERS],
			   *gb[RS_MLP_MAX_LAYERS];
	/* workspace for up to cap rows */
	int			cap;
	rs_real    *act[RS_MLP_MAX_LAYERS + 1];	/* act[l]: output of layer l-1 (act[nlayers]: logits) */
	rs_real    *delta[2];
	rs_real    *dloss;
} RsMlp;

extern int64_t rs_mlp_nparams(const int *dims, int nlayers);
/* offsets of l{i}.w and l{i}.b inside the flat parameter array */
extern int64_t rs_mlp_offset(const int *dims, int layer, int bias);
extern void rs_mlp_bind(RsMlp *m, rs_real *params, rs_real *grads);
extern void rs_mlp_reserve(RsMlp *m, int batch);
extern void rs_mlp_free(RsMlp *m);
extern void rs_mlp_init(RsMlp *m, RsRng *rng);
/* forward; returns the B x dims[L] logits (before the output activation) */
extern rs_real *rs_mlp_forward(RsMlp *m, const rs_real *x, int batch);
/* backward from d loss / d logits; gradients are added to gw/gb */
extern void rs_mlp_backward(RsMlp *m, const rs_real *x, int batch, const rs_real *dlogits);
/*
 * One optimiser step on a mini-batch (x: B x dims[0], y: B x dims[L]); opt_m and
 * opt_v are optimiser state arrays shaped like the parameters. Returns the loss.
 */
extern double rs_mlp_train_batch(RsMlp *m, RsOptim *opt, rs_real *params, rs_real *grads,
								 rs_real *opt_m, rs_real *opt_v, const rs_real *x, const rs_real *y,
								 int batch, RsLoss loss, const int32_t *gptr, int ngroups);

#endif
