/*
 * rs_seq.h — sequence encoders over item ids: an embedding table, a recurrent cell
 * (the seed's Elman RNN h' = act(x W_x + b_x + h W_h + b_h), or a GRU), and an output
 * item table scored by sampled softmax. Batches of variable-length sequences are
 * padded to T steps; a row past its length carries its state forward unchanged.
 *
 * Parameters, one flat array in this order:
 *   emb  V x E    w_x  E x G*H    w_h  H x G*H    b_x  G*H    b_h  G*H    out  V x H    out_b  V
 * with G = 1 (RNN) or 3 (GRU, gate blocks [z | r | n], PyTorch's convention:
 *   z = s(x Wz + bxz + h Uz + bhz), r = s(x Wr + bxr + h Ur + bhr),
 *   n = tanh(x Wn + bxn + r * (h Un + bhn)), h' = (1 - z) * n + z * h).
 */
#ifndef RS_SEQ_H
#define RS_SEQ_H

#include "rs_core.h"
#include "rs_optim.h"

typedef enum RsCell
{
	RS_CELL_RNN = 0,
	RS_CELL_GRU
} RsCell;

enum
{
	RS_SEQ_EMB = 0, RS_SEQ_WX, RS_SEQ_WH, RS_SEQ_BX, RS_SEQ_BH, RS_SEQ_OUT, RS_SEQ_OUTB, RS_SEQ_NTENSORS
};

typedef struct RsSeq
{
	RsCell		cell;
	RsAct		act;			/* RNN activation (the seed: sigmoid) */
	int			vocab,
				embed,
				hidden,
				gates;
	int64_t		off[RS_SEQ_NTENSORS + 1];	/* offsets; off[NTENSORS] = total */
	rs_real    *p[RS_SEQ_NTENSORS];
	rs_real    *g[RS_SEQ_NTENSORS];
	/* workspace for cap_b rows x cap_t steps */
	int			cap_b,
				cap_t;
	rs_real    *xu,				/* U x E: the batch's U distinct items' embeddings (U <= T*B) */
			   *xw,				/* U x GH: x W_x, once per distinct item */
			   *h_all,			/* (T+1)*B x H */
			   *gate,			/* T*B x GH: post-activation z, r, n (RNN: h') */
			   *hn,				/* T*B x H: h U_n + b_hn (GRU) */
			   *gh,				/* B x GH: one step's h W_h */
			   *dgx,			/* B x GH: one step's gate gradients, input side */
			   *dgh,			/* B x GH: recurrent side */
			   *xs,				/* B x E: one step's inputs */
			   *dxs,			/* B x E: their gradients */
			   *dxu,			/* U x E: the distinct items' input gradients, summed */
			   *dh,
			   *dh2,			/* B x H */
			   *logits,
			   *dlogits,		/* B x (1 + k) */
			   *negs_h,			/* k x H, gathered output rows */
			   *dnegs_h;
	int			cap_k;
	/* the batch's distinct items: set by rs_seq_encode, read by rs_seq_backward */
	int32_t    *slot,			/* T*B, time-major: the position's distinct item, -1 past the row's end */
			   *slot_of,		/* V: -1 (between batches, the item's slot while they are numbered) */
			   *uniq;			/* U: the item of each slot */
	rs_real    *bias,			/* GH: the biases outside the products, summed (rs_seq_encode) */
			   *wt;				/* GH x (H + E): W_h and W_x transposed, for the tiled backward */
	int			nuniq;
	rs_real    *h_final;		/* B x H, set by rs_seq_encode */
	/* row-sparse gradients of emb and out: which rows this batch touched */
	uint8_t    *mark_emb,
			   *mark_out;
	int32_t    *rows_emb,
			   *rows_out;
	int			nrows_emb,
				nrows_out;
} RsSeq;

/* fills off[] from the shape; returns the parameter count */
extern int64_t rs_seq_layout(RsSeq *m);
extern void rs_seq_bind(RsSeq *m, rs_real *params, rs_real *grads);
extern void rs_seq_init(RsSeq *m, RsRng *rng);
extern void rs_seq_free(RsSeq *m);
/* encodes B sequences (items: B x T, row b valid up to len[b]); returns B x H final states */
extern rs_real *rs_seq_encode(RsSeq *m, const int32_t *items, const int32_t *len, int batch, int steps);
/* sampled softmax loss of final states against targets (B) and k shared negatives; fills dh */
extern double rs_seq_loss(RsSeq *m, const int32_t *targets, const int32_t *negs, int k, int batch);
/*
 * backpropagation through time from m->dh, for the batch rs_seq_encode last encoded (its distinct items); adds to
 * gradients (dense and marked rows); none bound: nothing
 */
extern void rs_seq_backward(RsSeq *m, const int32_t *len, int batch, int steps);
/* forward, loss, backward and one optimiser step; returns the loss */
extern double rs_seq_train_batch(RsSeq *m, RsOptim *opt, rs_real *params, rs_real *grads,
								 rs_real *opt_m, rs_real *opt_v, const int32_t *items, const int32_t *len,
								 int batch, int steps, const int32_t *targets, const int32_t *negs, int k);

#endif
