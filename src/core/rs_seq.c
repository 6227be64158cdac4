/*
 * rs_seq.c — Elman RNN and GRU encoders with backpropagation through time.
 *
 * The recurrent products are done step by step on B-row buffers that stay in cache (see
 * rs_seq_encode and rs_seq_backward), the input products once per distinct item of the
 * batch; by the tiled product where it runs (rs_tile.h), else OpenBLAS. Embedding and
 * output tables get row-sparse gradients.
 */
#include "rs_seq.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rs_kind.h"
#include "rs_loss.h"
#include "rs_tile.h"

int64_t
rs_seq_layout(RsSeq *m)
{
	int64_t		gh,
				sizes[RS_SEQ_NTENSORS];

	m->gates = m->cell == RS_CELL_GRU ? 3 : 1;
	gh = (int64_t) m->gates * m->hidden;
	sizes[RS_SEQ_EMB] = (int64_t) m->vocab * m->embed;
	sizes[RS_SEQ_WX] = (int64_t) m->embed * gh;
	sizes[RS_SEQ_WH] = (int64_t) m->hidden * gh;
	sizes[RS_SEQ_BX] = gh;
	sizes[RS_SEQ_BH] = gh;
	sizes[RS_SEQ_OUT] = (int64_t) m->vocab * m->hidden;
	sizes[RS_SEQ_OUTB] = m->vocab;
	m->off[0] = 0;
	for (int i = 0; i < RS_SEQ_NTENSORS; i++)
		m->off[i + 1] = m->off[i] + sizes[i];
	return m->off[RS_SEQ_NTENSORS];
}

void
rs_seq_bind(RsSeq *m, rs_real *params, rs_real *grads)
{
	rs_seq_layout(m);
	for (int i = 0; i < RS_SEQ_NTENSORS; i++)
	{
		m->p[i] = params + m->off[i];
		m->g[i] = grads ? grads + m->off[i] : NULL;
	}
}

void
rs_seq_init(RsSeq *m, RsRng *rng)
{
	int			gh = m->gates * m->hidden;

	rs_init_normal(rng, m->p[RS_SEQ_EMB], (int64_t) m->vocab * m->embed, 1.0 / sqrt((double) m->embed));
	rs_init_dense(rng, m->p[RS_SEQ_WX], m->embed, gh, m->cell == RS_CELL_GRU ? RS_ACT_TANH : m->act);
	rs_init_dense(rng, m->p[RS_SEQ_WH], m->hidden, gh, m->cell == RS_CELL_GRU ? RS_ACT_TANH : m->act);
	memset(m->p[RS_SEQ_BX], 0, sizeof(rs_real) * gh);
	memset(m->p[RS_SEQ_BH], 0, sizeof(rs_real) * gh);
	rs_init_normal(rng, m->p[RS_SEQ_OUT], (int64_t) m->vocab * m->hidden, 1.0 / sqrt((double) m->hidden));
	memset(m->p[RS_SEQ_OUTB], 0, sizeof(rs_real) * m->vocab);
}

#define FREE_IF(x) do { if (x) { rs_release(x); (x) = NULL; } } while (0)

/* buffers sized by batch x steps */
static void
free_steps(RsSeq *m)
{
	FREE_IF(m->xu);
	FREE_IF(m->xw);
	FREE_IF(m->h_all);
	FREE_IF(m->gate);
	FREE_IF(m->hn);
	FREE_IF(m->gh);
	FREE_IF(m->dgh);
	FREE_IF(m->dxu);
	FREE_IF(m->dgx);
	FREE_IF(m->xs);
	FREE_IF(m->dxs);
	FREE_IF(m->dh);
	FREE_IF(m->dh2);
	FREE_IF(m->slot);
	FREE_IF(m->uniq);
}

/* buffers sized by batch x (1 + negatives) */
static void
free_logits(RsSeq *m)
{
	FREE_IF(m->logits);
	FREE_IF(m->dlogits);
	FREE_IF(m->negs_h);
	FREE_IF(m->dnegs_h);
}

void
rs_seq_free(RsSeq *m)
{
	free_steps(m);
	free_logits(m);
	FREE_IF(m->mark_emb);
	FREE_IF(m->mark_out);
	FREE_IF(m->slot_of);
	FREE_IF(m->bias);
	FREE_IF(m->wt);
	FREE_IF(m->rows_emb);
	FREE_IF(m->rows_out);
	m->cap_b = m->cap_t = m->cap_k = 0;
}

static void
reserve(RsSeq *m, int batch, int steps, int k)
{
	size_t		r = sizeof(rs_real);
	size_t		gh = (size_t) m->gates * m->hidden;

	if (batch > m->cap_b || steps > m->cap_t)
	{
		int			b = batch > m->cap_b ? batch : m->cap_b,
					t = steps > m->cap_t ? steps : m->cap_t;
		size_t		tb = (size_t) t * b;

		free_steps(m);
		/* per distinct item: at most one per position */
		m->xu = rs_alloc(r * tb * m->embed);
		m->xw = rs_alloc(r * tb * gh);
		m->dxu = rs_alloc(r * tb * m->embed);
		m->dgx = rs_alloc(r * b * gh);
		m->xs = rs_alloc(r * b * m->embed);
		m->dxs = rs_alloc(r * b * m->embed);
		m->slot = rs_alloc(sizeof(int32_t) * tb);
		m->uniq = rs_alloc(sizeof(int32_t) * tb);
		m->h_all = rs_alloc(r * (tb + b) * m->hidden);
		m->gate = rs_alloc(r * tb * gh);
		m->hn = rs_alloc(r * tb * m->hidden);
		/* one step's worth: the recurrent steps are done one at a time */
		m->gh = rs_alloc(r * b * gh);
		m->dgh = rs_alloc(r * b * gh);
		m->dh = rs_alloc(r * b * m->hidden);
		m->dh2 = rs_alloc(r * b * m->hidden);
		m->cap_b = b;
		m->cap_t = t;
		m->cap_k = 0;			/* logits are sized by batch too */
	}
	if (k + 1 > m->cap_k)
	{
		free_logits(m);
		m->logits = rs_alloc(r * m->cap_b * (k + 1));
		m->dlogits = rs_alloc(r * m->cap_b * (k + 1));
		m->negs_h = rs_alloc(r * (k + 1) * m->hidden);
		m->dnegs_h = rs_alloc(r * (k + 1) * m->hidden);
		m->cap_k = k + 1;
	}
	if (!m->mark_emb)
	{
		m->mark_emb = rs_alloc(m->vocab);
		m->mark_out = rs_alloc(m->vocab);
		memset(m->mark_emb, 0, m->vocab);
		memset(m->mark_out, 0, m->vocab);
		m->rows_emb = rs_alloc(sizeof(int32_t) * m->vocab);
		m->rows_out = rs_alloc(sizeof(int32_t) * m->vocab);
		m->slot_of = rs_alloc(sizeof(int32_t) * m->vocab);
		m->bias = rs_alloc(sizeof(rs_real) * m->gates * m->hidden);
		m->wt = rs_alloc(sizeof(rs_real) * m->gates * m->hidden * (m->hidden + m->embed));
		for (int i = 0; i < m->vocab; i++)
			m->slot_of[i] = -1;
	}
}

/*
 * one row's GRU step: gates z, r, n (kept for backward), the recurrent part of n, the new state. bias is the
 * biases summed where they add outside a product (b_x, and b_h for z and r; see rs_seq_encode); b_hn stays
 * apart, inside r * (h U_n + b_hn).
 * The three gate blocks get pointers of their own: with PostgreSQL's -fwrapv, an index H + j may wrap, and gcc
 * would not vectorise.
 */
RS_VECTOR_CLONES static void
gru_forward_row(const rs_real *restrict gx, const rs_real *restrict gh, const rs_real *restrict bias,
				const rs_real *restrict bhn, const rs_real *restrict hb, rs_real *restrict gate,
				rs_real *restrict hn, rs_real *restrict out, int H)
{
	const rs_real *bz = bias,
			   *br = bias + H,
			   *bn = bias + 2 * H;
	const rs_real *xz = gx,
			   *xr = gx + H,
			   *xn = gx + 2 * H,
			   *hz = gh,
			   *hr = gh + H,
			   *hh = gh + 2 * H;
	rs_real    *gz = gate,
			   *gr = gate + H,
			   *gn = gate + 2 * H;

	/*
	 * Two loops, not one: an element's chain (r's exponential and division, then n's) is longer than the
	 * out-of-order window reaches across, so one loop ran at the chain's latency. The arrays never overlap: no
	 * run-time overlap checks (see gru_backward_row).
	 */
#pragma GCC ivdep
	for (int j = 0; j < H; j++)
	{
		gz[j] = rs_sigmoid_v(xz[j] + hz[j] + bz[j]);
		gr[j] = rs_sigmoid_v(xr[j] + hr[j] + br[j]);
	}
#pragma GCC ivdep
	for (int j = 0; j < H; j++)
	{
		rs_real		un = hh[j] + bhn[j],
					z = gz[j],
					n = rs_tanh_v(xn[j] + bn[j] + gr[j] * un);

		gn[j] = n;
		hn[j] = un;
		out[j] = (1 - z) * n + z * hb[j];
	}
}

/*
 * one row's GRU step backward: the gates' pre-activation gradients (input and recurrent), the state's, and the
 * biases' (summed here while the row is in registers; gbx and gbh are the bias gradients, 3H each). ivdep: the
 * arrays never overlap, and with this many of them gcc gives up the run-time overlap checks and the vectorising.
 */
RS_VECTOR_CLONES static void
gru_backward_row(const rs_real *restrict gate, const rs_real *restrict hn, const rs_real *restrict dhb,
				 const rs_real *restrict hb, rs_real *restrict dgx, rs_real *restrict dgh, rs_real *restrict dpb,
				 rs_real *restrict gbx, rs_real *restrict gbh, int H)
{
	const rs_real *gz = gate,
			   *gr = gate + H,
			   *gn = gate + 2 * H;
	rs_real    *xz = dgx,
			   *xr = dgx + H,
			   *xn = dgx + 2 * H,
			   *hz = dgh,
			   *hr = dgh + H,
			   *hh = dgh + 2 * H,
			   *bxz = gbx,
			   *bxr = gbx + H,
			   *bxn = gbx + 2 * H,
			   *bhz = gbh,
			   *bhr = gbh + H,
			   *bhn = gbh + 2 * H;

#pragma GCC ivdep
	for (int j = 0; j < H; j++)
	{
		rs_real		z = gz[j],
					r = gr[j],
					n = gn[j];
		rs_real		dn = dhb[j] * (1 - z),
					dz = dhb[j] * (hb[j] - n);
		rs_real		dan = dn * (1 - n * n);
		rs_real		dr = dan * hn[j];
		rs_real		dza = dz * z * (1 - z),
					dra = dr * r * (1 - r);

		xz[j] = dza;
		hz[j] = dza;
		xr[j] = dra;
		hr[j] = dra;
		xn[j] = dan;
		hh[j] = dan * r;
		dpb[j] = dhb[j] * z;
		bxz[j] += dza;
		bxr[j] += dra;
		bxn[j] += dan;
		bhz[j] += dza;
		bhr[j] += dra;
		bhn[j] += dan * r;
	}
}

/* t (cols x rows) = w (rows x cols) transposed */
static void
transpose(const rs_real *restrict w, int rows, int cols, rs_real *restrict t)
{
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++)
			t[(int64_t) j * rows + i] = w[(int64_t) i * cols + j];
}

/* dst[j] += src[j] */
RS_VECTOR_CLONES static void
add_row(rs_real *restrict dst, const rs_real *restrict src, int width)
{
	for (int j = 0; j < width; j++)
		dst[j] += src[j];
}

/* the x W_x rows are read in the distinct items' order, not the rows': ask for the next row's lines early */
static inline void
prefetch_slot(const RsSeq *m, int64_t pos, int64_t end, int GH)
{
	int32_t		slot;

	if (pos >= end || (slot = m->slot[pos]) < 0)
		return;
	for (int c = 0; c < GH; c += 16)
		__builtin_prefetch(m->xw + (int64_t) slot * GH + c, 0);
}

/* numbers the batch's distinct items (slots): each position's slot, -1 past its row's end */
static void
seq_distinct(RsSeq *m, const int32_t *items, const int32_t *len, int batch, int steps)
{
	int			n = 0;

	for (int t = 0; t < steps; t++)
		for (int b = 0; b < batch; b++)
		{
			int64_t		pos = (int64_t) t * batch + b;
			int32_t		item,
						s;

			if (t >= len[b])
			{
				m->slot[pos] = -1;
				continue;
			}
			item = items[(int64_t) b * steps + t];
			s = m->slot_of[item];
			if (s < 0)
			{
				s = m->slot_of[item] = n++;
				m->uniq[s] = item;
			}
			m->slot[pos] = s;
		}
	for (int i = 0; i < n; i++)
		m->slot_of[m->uniq[i]] = -1;
	m->nuniq = n;
}

/*
 * The input products x W_x are done once per distinct item of the batch, in one GEMM: a batch of T*B positions
 * draws fewer distinct items (4,000 of 5,120 uniformly from 10,000; far fewer from a real shop's skewed sales),
 * and each step reads its rows from that table. The recurrent product is done step by step: where rs_tile_ok,
 * four rows at a time into a tile the gates read at once from L1 (rs_tile.h), else by OpenBLAS into a B-row
 * buffer that stays in cache. The state h_0 is zero, so the first step's recurrent product is skipped.
 */
rs_real *
rs_seq_encode(RsSeq *m, const int32_t *items, const int32_t *len, int batch, int steps)
{
	int			H = m->hidden,
				E = m->embed,
				GH = m->gates * m->hidden;
	const rs_real *bx = m->p[RS_SEQ_BX],
			   *bh = m->p[RS_SEQ_BH];
	bool		tiled = rs_tile_ok(GH);

	rs_check_interrupts();
	reserve(m, batch, steps, 0);
	memset(m->h_all, 0, sizeof(rs_real) * (size_t) batch * H);
	seq_distinct(m, items, len, batch, steps);
	/* the biases that add outside any product, summed once: b_x, and b_h but for the GRU's b_hn */
	for (int j = 0; j < GH; j++)
		m->bias[j] = bx[j] + (m->cell == RS_CELL_GRU && j >= 2 * H ? 0 : bh[j]);
	for (int i = 0; i < m->nuniq; i++)
		memcpy(m->xu + (int64_t) i * E, m->p[RS_SEQ_EMB] + (int64_t) m->uniq[i] * E, sizeof(rs_real) * E);
	if (m->nuniq > 0)
		rs_gemm(0, 0, m->nuniq, GH, E, 1, m->xu, E, m->p[RS_SEQ_WX], GH, 0, m->xw, GH);

	for (int t = 0; t < steps; t++)
	{
		const rs_real *h = m->h_all + (int64_t) t * batch * H;
		rs_real    *hnext = m->h_all + (int64_t) (t + 1) * batch * H;

		/* untiled: the whole step's product at once (none at t = 0: zeros) */
		if (!tiled && t > 0)
			rs_gemm(0, 0, batch, GH, H, 1, h, H, m->p[RS_SEQ_WH], GH, 0, m->gh, GH);
		else if (!tiled)
			memset(m->gh, 0, sizeof(rs_real) * (size_t) batch * GH);
		for (int b = 0; b < batch; b++)
		{
			int64_t		row = (int64_t) t * batch + b;
			const rs_real *gx,
					   *gh,
					   *hb = h + (int64_t) b * H;
			rs_real    *gate = m->gate + row * GH,
					   *out = hnext + (int64_t) b * H;

			/* the tile of this row and the next three: h_t's rows times W_h (none at t = 0: zeros) */
			if (tiled && b % RS_TILE_ROWS == 0)
				rs_tile_gemm(batch - b < RS_TILE_ROWS ? batch - b : RS_TILE_ROWS, GH, t > 0 ? H : 0,
							 hb, H, 1, m->p[RS_SEQ_WH], GH, m->gh, GH, false);
			gh = tiled ? m->gh + (int64_t) (b % RS_TILE_ROWS) * GH : m->gh + (int64_t) b * GH;
			if (t >= len[b])
			{
				memcpy(out, hb, sizeof(rs_real) * H);
				continue;
			}
			prefetch_slot(m, row + 1, (int64_t) (t + 1) * batch, GH);
			gx = m->xw + (int64_t) m->slot[row] * GH;
			if (m->cell == RS_CELL_RNN)
			{
				for (int j = 0; j < H; j++)
					gate[j] = gx[j] + gh[j] + m->bias[j];
				rs_act_forward(m->act, gate, H);
				memcpy(out, gate, sizeof(rs_real) * H);
			}
			else
				gru_forward_row(gx, gh, m->bias, bh + 2 * H, hb, gate, m->hn + row * H, out, H);
		}
		rs_check_interrupts();
	}
	m->h_final = m->h_all + (int64_t) steps * batch * H;
	return m->h_final;
}

static void
mark(uint8_t *marks, int32_t *rows, int *nrows, int32_t row)
{
	if (!marks[row])
	{
		marks[row] = 1;
		rows[(*nrows)++] = row;
	}
}

double
rs_seq_loss(RsSeq *m, const int32_t *targets, const int32_t *negs, int k, int batch)
{
	int			H = m->hidden,
				W = k + 1;
	const rs_real *hT = m->h_final;
	rs_real    *out = m->p[RS_SEQ_OUT],
			   *outb = m->p[RS_SEQ_OUTB];
	double		loss;

	reserve(m, batch, m->cap_t ? m->cap_t : 1, k);
	/* negatives are shared by the batch: gather their rows once, one GEMM scores them all */
	for (int j = 0; j < k; j++)
		memcpy(m->negs_h + (int64_t) j * H, out + (int64_t) negs[j] * H, sizeof(rs_real) * H);
	if (k > 0)
		rs_gemm(0, 1, batch, k, H, 1, hT, H, m->negs_h, H, 0, m->logits + 1, W);
	for (int b = 0; b < batch; b++)
	{
		rs_real    *row = m->logits + (int64_t) b * W;
		const rs_real *hb = hT + (int64_t) b * H,
				   *ot = out + (int64_t) targets[b] * H;
		rs_real		s = outb[targets[b]];

		for (int j = 0; j < H; j++)
			s += hb[j] * ot[j];
		row[0] = s;
		for (int j = 0; j < k; j++)
			row[1 + j] += outb[negs[j]];
	}
	/* with k = 0 the row is the target alone and the loss is zero */
	loss = rs_loss_sampled_softmax(m->logits, batch, W, m->dlogits);

	/* dh = dpos * out[target] + dneg . negs_h */
	if (k > 0)
		rs_gemm(0, 0, batch, H, k, 1, m->dlogits + 1, W, m->negs_h, H, 0, m->dh, H);
	else
		memset(m->dh, 0, sizeof(rs_real) * (size_t) batch * H);
	if (m->g[RS_SEQ_OUT])
	{
		rs_real    *gout = m->g[RS_SEQ_OUT],
				   *goutb = m->g[RS_SEQ_OUTB];

		/* d negs_h = dneg^T h, scattered into the shared negative rows */
		if (k > 0)
			rs_gemm(1, 0, k, H, batch, 1, m->dlogits + 1, W, hT, H, 0, m->dnegs_h, H);
		for (int j = 0; j < k; j++)
		{
			rs_real		db = 0;

			mark(m->mark_out, m->rows_out, &m->nrows_out, negs[j]);
			for (int c = 0; c < H; c++)
				gout[(int64_t) negs[j] * H + c] += m->dnegs_h[(int64_t) j * H + c];
			for (int b = 0; b < batch; b++)
				db += m->dlogits[(int64_t) b * W + 1 + j];
			goutb[negs[j]] += db;
		}
		for (int b = 0; b < batch; b++)
		{
			rs_real		dp = m->dlogits[(int64_t) b * W];
			const rs_real *hb = hT + (int64_t) b * H;
			rs_real    *g = gout + (int64_t) targets[b] * H;

			mark(m->mark_out, m->rows_out, &m->nrows_out, targets[b]);
			for (int c = 0; c < H; c++)
				g[c] += dp * hb[c];
			goutb[targets[b]] += dp;
		}
	}
	for (int b = 0; b < batch; b++)
	{
		rs_real		dp = m->dlogits[(int64_t) b * W];
		const rs_real *ot = out + (int64_t) targets[b] * H;
		rs_real    *d = m->dh + (int64_t) b * H;

		for (int c = 0; c < H; c++)
			d[c] += dp * ot[c];
	}
	return loss;
}

/*
 * Backpropagation through time, one step at a time: the step's gate gradients live in B-row buffers and go at once
 * into the weight gradients and the previous state's (K = B products that run from cache; tiled where
 * rs_tile_ok, see rs_tile.h). The step's input gradients are summed per distinct item (U x E, in cache) and go
 * into the embedding rows at the end. Summing the gate gradients per distinct item instead, for one input
 * product at the end, saved as many FLOPs as the forward's table does, and was 1-3% faster on a quiet machine;
 * but its read-modify-write of a U x 3H table at scattered rows made it 15% slower while another process
 * streamed memory on the other core (bench/core_bench). The first step's state is the constant zero: no
 * gradient into it, no recurrent weight term.
 */
void
rs_seq_backward(RsSeq *m, const int32_t *len, int batch, int steps)
{
	int			H = m->hidden,
				E = m->embed,
				GH = m->gates * m->hidden,
				U = m->nuniq;
	rs_real    *dh = m->dh,
			   *dprev = m->dh2,
			   *dgh = m->dgh,
			   *dgx = m->cell == RS_CELL_GRU ? m->dgx : m->dgh,		/* the RNN's are the same */
			   *xs = m->xs,
			   *gbx = m->g[RS_SEQ_BX],
			   *gbh = m->g[RS_SEQ_BH];
	const rs_real *wht = m->wt,
			   *wxt = m->wt + (int64_t) GH * H;
	bool		tiled,
				tiled_x;

	/* the gradients are all this computes: without buffers for them, nothing to do */
	if (!m->g[RS_SEQ_WX])
		return;
	/* the tiled product reads its right operands by rows: W_h and W_x transposed, once for the batch */
	tiled = rs_tile_ok(H) && rs_tile_ok(GH);
	tiled_x = tiled && rs_tile_ok(E);
	if (tiled)
		transpose(m->p[RS_SEQ_WH], H, GH, m->wt);
	if (tiled_x)
		transpose(m->p[RS_SEQ_WX], E, GH, m->wt + (int64_t) GH * H);
	memset(m->dxu, 0, sizeof(rs_real) * (size_t) U * E);
	for (int t = steps - 1; t >= 0; t--)
	{
		const rs_real *h = m->h_all + (int64_t) t * batch * H;

		for (int b = 0; b < batch; b++)
		{
			int64_t		row = (int64_t) t * batch + b;
			rs_real    *dgxb = dgx + (int64_t) b * GH,
					   *dghb = dgh + (int64_t) b * GH,
					   *xb = xs + (int64_t) b * E;
			const rs_real *gate = m->gate + row * GH,
					   *dhb = dh + (int64_t) b * H,
					   *hb = h + (int64_t) b * H;
			rs_real    *dpb = dprev + (int64_t) b * H;

			if (t >= len[b])
			{
				/* state carried forward unchanged: gradient passes straight through; no input */
				memset(dgxb, 0, sizeof(rs_real) * GH);
				memset(dghb, 0, sizeof(rs_real) * GH);
				memset(xb, 0, sizeof(rs_real) * E);
				memcpy(dpb, dhb, sizeof(rs_real) * H);
				continue;
			}
			/* the step's inputs, for W_x's gradient: the distinct items' embeddings, gathered in the forward */
			memcpy(xb, m->xu + (int64_t) m->slot[row] * E, sizeof(rs_real) * E);
			if (m->cell == RS_CELL_GRU)
			{
				gru_backward_row(gate, m->hn + row * H, dhb, hb, dgxb, dghb, dpb, gbx, gbh, H);
				continue;
			}
			/* the RNN: one gate, the same gradient on both sides (dgx is dgh) */
			for (int j = 0; j < H; j++)
				dghb[j] = dhb[j];
			rs_act_backward(m->act, gate, dghb, H);
			memset(dpb, 0, sizeof(rs_real) * H);
			/* the bias gradients, summed while the row is in cache rather than in a pass over all rows */
			add_row(gbx, dghb, GH);
			add_row(gbh, dghb, GH);
		}
		/* the gradient into the previous state, and the recurrent weights' term of this step */
		if (t > 0 && tiled)
		{
			rs_tile_gemm(batch, H, GH, dgh, GH, 1, wht, H, dprev, H, true);
			rs_tile_gemm(H, GH, batch, h, 1, H, dgh, GH, m->g[RS_SEQ_WH], GH, true);
		}
		else if (t > 0)
		{
			rs_gemm(0, 1, batch, H, GH, 1, dgh, GH, m->p[RS_SEQ_WH], GH, 1, dprev, H);
			rs_gemm(1, 0, H, GH, batch, 1, h, H, dgh, GH, 1, m->g[RS_SEQ_WH], GH);
		}
		/* the input weights' term, and the step's input gradient */
		if (tiled_x)
		{
			rs_tile_gemm(E, GH, batch, xs, 1, E, dgx, GH, m->g[RS_SEQ_WX], GH, true);
			rs_tile_gemm(batch, E, GH, dgx, GH, 1, wxt, E, m->dxs, E, false);
		}
		else
		{
			rs_gemm(1, 0, E, GH, batch, 1, xs, E, dgx, GH, 1, m->g[RS_SEQ_WX], GH);
			rs_gemm(0, 1, batch, E, GH, 1, dgx, GH, m->p[RS_SEQ_WX], GH, 0, m->dxs, E);
		}
		for (int b = 0; b < batch; b++)
			if (t < len[b])
				add_row(m->dxu + (int64_t) m->slot[(int64_t) t * batch + b] * E, m->dxs + (int64_t) b * E, E);
		{
			rs_real    *tmp = dh;

			dh = dprev;
			dprev = tmp;
		}
		rs_check_interrupts();
	}
	/* the distinct items' input gradients into the embedding rows */
	for (int i = 0; i < U; i++)
	{
		mark(m->mark_emb, m->rows_emb, &m->nrows_emb, m->uniq[i]);
		add_row(m->g[RS_SEQ_EMB] + (int64_t) m->uniq[i] * E, m->dxu + (int64_t) i * E, E);
	}
}

double
rs_seq_train_batch(RsSeq *m, RsOptim *opt, rs_real *params, rs_real *grads,
				   rs_real *opt_m, rs_real *opt_v, const int32_t *items, const int32_t *len,
				   int batch, int steps, const int32_t *targets, const int32_t *negs, int k)
{
	int64_t		dense_from = m->off[RS_SEQ_WX],
				dense_to = m->off[RS_SEQ_OUT];
	double		loss,
				scale = 1.0;

	rs_seq_bind(m, params, grads);
	reserve(m, batch, steps, k);
	/* dense gradients are zeroed here; sparse rows were zeroed after the last step */
	memset(grads + dense_from, 0, sizeof(rs_real) * (dense_to - dense_from));
	m->nrows_emb = m->nrows_out = 0;
	rs_seq_encode(m, items, len, batch, steps);
	loss = rs_seq_loss(m, targets, negs, k, batch);
	rs_seq_backward(m, len, batch, steps);

	opt->t++;
	if (opt->clip > 0)
	{
		double		ss = rs_sumsq(grads + dense_from, dense_to - dense_from)
			+ rs_sumsq_rows(m->g[RS_SEQ_EMB], m->embed, m->rows_emb, m->nrows_emb)
			+ rs_sumsq_rows(m->g[RS_SEQ_OUT], m->hidden, m->rows_out, m->nrows_out)
			+ rs_sumsq_rows(m->g[RS_SEQ_OUTB], 1, m->rows_out, m->nrows_out);

		scale = rs_clip_scale(opt, sqrt(ss));
	}
	rs_optim_dense(opt, params + dense_from, grads + dense_from,
				   opt_m ? opt_m + dense_from : NULL, opt_v ? opt_v + dense_from : NULL,
				   dense_to - dense_from, scale);
	/* lazy updates: only the embedding and output rows this batch touched */
	rs_optim_rows(opt, m->p[RS_SEQ_EMB], m->g[RS_SEQ_EMB], opt_m ? opt_m + m->off[RS_SEQ_EMB] : NULL,
				  opt_v ? opt_v + m->off[RS_SEQ_EMB] : NULL, m->embed, m->rows_emb, m->nrows_emb, scale);
	rs_optim_rows(opt, m->p[RS_SEQ_OUT], m->g[RS_SEQ_OUT], opt_m ? opt_m + m->off[RS_SEQ_OUT] : NULL,
				  opt_v ? opt_v + m->off[RS_SEQ_OUT] : NULL, m->hidden, m->rows_out, m->nrows_out, scale);
	rs_optim_rows(opt, m->p[RS_SEQ_OUTB], m->g[RS_SEQ_OUTB], opt_m ? opt_m + m->off[RS_SEQ_OUTB] : NULL,
				  opt_v ? opt_v + m->off[RS_SEQ_OUTB] : NULL, 1, m->rows_out, m->nrows_out, scale);
	for (int r = 0; r < m->nrows_emb; r++)
	{
		memset(m->g[RS_SEQ_EMB] + (int64_t) m->rows_emb[r] * m->embed, 0, sizeof(rs_real) * m->embed);
		m->mark_emb[m->rows_emb[r]] = 0;
	}
	for (int r = 0; r < m->nrows_out; r++)
	{
		memset(m->g[RS_SEQ_OUT] + (int64_t) m->rows_out[r] * m->hidden, 0, sizeof(rs_real) * m->hidden);
		m->g[RS_SEQ_OUTB][m->rows_out[r]] = 0;
		m->mark_out[m->rows_out[r]] = 0;
	}
	return loss;
}

/* ---------- the rnn and gru kinds (rs_kind.h) ---------- */

/* the seed's Elman RNN squashes with the logistic sigmoid; the GRU's candidate is always tanh */
static const RsCfgField rnn_config[] = {
	{"vocab", RS_CFG_INT, -1, 1, RS_MAX_VOCAB, offsetof(RsNet, u.seq.vocab), 0},
	{"embed", RS_CFG_INT, 64, 1, RS_MAX_WIDTH, offsetof(RsNet, u.seq.embed), 0},
	{"hidden", RS_CFG_INT, 128, 1, RS_MAX_WIDTH, offsetof(RsNet, u.seq.hidden), 0},
	{"activation", RS_CFG_ACT, RS_ACT_SIGMOID, 0, 0, offsetof(RsNet, u.seq.act), 0},
	{NULL}
};
static const RsCfgField gru_config[] = {
	{"vocab", RS_CFG_INT, -1, 1, RS_MAX_VOCAB, offsetof(RsNet, u.seq.vocab), 0},
	{"embed", RS_CFG_INT, 64, 1, RS_MAX_WIDTH, offsetof(RsNet, u.seq.embed), 0},
	{"hidden", RS_CFG_INT, 128, 1, RS_MAX_WIDTH, offsetof(RsNet, u.seq.hidden), 0},
	{NULL}
};

static int64_t
rnn_layout(RsNet *net)
{
	net->u.seq.cell = RS_CELL_RNN;
	return rs_seq_layout(&net->u.seq);
}

static int64_t
gru_layout(RsNet *net)
{
	net->u.seq.cell = RS_CELL_GRU;
	net->u.seq.act = RS_ACT_TANH;
	return rs_seq_layout(&net->u.seq);
}

static int
seq_tensors(const RsNet *net, RsTensorDesc *d)
{
	static const char *const names[RS_SEQ_NTENSORS] = {"emb", "w_x", "w_h", "b_x", "b_h", "out", "out_b"};
	const RsSeq *m = &net->u.seq;
	int64_t		gh = (int64_t) m->gates * m->hidden;
	int64_t		dims[RS_SEQ_NTENSORS][2] = {
		{m->vocab, m->embed}, {m->embed, gh}, {m->hidden, gh}, {gh, 0}, {gh, 0}, {m->vocab, m->hidden}, {m->vocab, 0}};

	for (int n = 0; n < RS_SEQ_NTENSORS; n++)
	{
		snprintf(d[n].name, RS_NAME_LEN, "%s", names[n]);
		d[n].ndim = dims[n][1] ? 2 : 1;
		d[n].dims[0] = dims[n][0];
		d[n].dims[1] = dims[n][1];
	}
	rs_kind_numel(d, RS_SEQ_NTENSORS);
	return RS_SEQ_NTENSORS;
}

static void
seq_bind(RsNet *net, rs_real *params, rs_real *grads)
{
	rs_seq_bind(&net->u.seq, params, grads);
}

static void
seq_init(RsNet *net, RsRng *rng)
{
	rs_seq_init(&net->u.seq, rng);
}

static void
seq_free(RsNet *net)
{
	rs_seq_free(&net->u.seq);
}

static int
seq_in_width(const RsNet *net)
{
	(void) net;
	return 0;
}

static int
seq_out_width(const RsNet *net)
{
	return net->u.seq.hidden;
}

static int
seq_n_items(const RsNet *net)
{
	return net->u.seq.vocab;
}

/* every step's input, gates and states, and the scores of the target and negatives */
static int64_t
seq_activations(const RsNet *net, int batch, int steps, int k)
{
	const RsSeq *m = &net->u.seq;

	return ((int64_t) steps * (m->embed + 2 * (int64_t) m->gates * m->hidden) + (int64_t) (k + 1) * m->hidden) *
		batch;
}

static rs_real *
seq_forward(RsNet *net, const RsBatch *b)
{
	return rs_seq_encode(&net->u.seq, b->items, b->len, b->n, b->steps);
}

static RsAct
seq_output(const RsNet *net)
{
	(void) net;
	return RS_ACT_LINEAR;
}

static double
seq_train_step(RsNet *net, RsOptim *opt, rs_real *grads, rs_real *opt_m, rs_real *opt_v, const RsBatch *b)
{
	return rs_seq_train_batch(&net->u.seq, opt, net->params, grads, opt_m, opt_v, b->items, b->len, b->n, b->steps,
							  b->targets, b->negs, b->k);
}

const RsKindOps rs_rnn_ops = {
	.kind = RS_KIND_RNN, .input = RS_INPUT_ITEMS, .config = rnn_config,
	.layout = rnn_layout, .tensors = seq_tensors, .bind = seq_bind, .init = seq_init, .free = seq_free,
	.in_width = seq_in_width, .out_width = seq_out_width, .n_items = seq_n_items,
	.activations = seq_activations, .forward = seq_forward, .output = seq_output, .train_step = seq_train_step
};
const RsKindOps rs_gru_ops = {
	.kind = RS_KIND_GRU, .input = RS_INPUT_ITEMS, .config = gru_config,
	.layout = gru_layout, .tensors = seq_tensors, .bind = seq_bind, .init = seq_init, .free = seq_free,
	.in_width = seq_in_width, .out_width = seq_out_width, .n_items = seq_n_items,
	.activations = seq_activations, .forward = seq_forward, .output = seq_output, .train_step = seq_train_step
};
