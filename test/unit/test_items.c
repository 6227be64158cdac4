/*
 * test_items.c — the item model's numerics (core/rs_items.h) by hand: the shop's view of
 * each item, a customer's history cut at a basket, the features and the default blend.
 */
#include <math.h>
#include <string.h>

#include "core/rs_items.h"
#include "unit.h"

static void
test_items_by_hand(int *failed)
{
	/* customer 0: item 0 in baskets 1 and 2, item 1 in basket 2; customer 1: item 1 in basket 1; customer 2: none */
	const int32_t ptr[] = {0, 3, 4, 4},
				items[] = {0, 0, 1, 1},
				bno[] = {1, 2, 2, 1};
	RsItemStats st;
	int32_t		slot[3] = {-1, -1, -1},
				hi[3],
				hc[3],
				hl[3];
	float		hd[3],
				x[RS_ITEM_NFEAT];
	RsItemHistory h = {.item = hi, .count = hc, .last = hl, .decayed = hd};

	rs_items_stats(3, 3, ptr, items, &st);
	CHECK(st.buyers[0] == 1 && st.buyers[1] == 2 && st.buyers[2] == 0);
	CHECK(fabsf(st.share[0] - 0.5f) < 1e-6 && fabsf(st.share[1] - 1.0f) < 1e-6 && st.share[2] == 0);
	CHECK(fabsf(st.again[0] - 1.0f) < 1e-6 && st.again[1] == 0 && st.again[2] == 0);
	CHECK(st.npopular == 2 && st.popular[0] == 1 && st.popular[1] == 0);

	/* the whole history of customer 0 */
	rs_items_history(items, bno, 3, 0, slot, &h);
	CHECK(h.n == 2 && h.nbaskets == 2 && slot[0] == -1 && slot[1] == -1);
	CHECK(h.item[0] == 0 && h.count[0] == 2 && h.last[0] == 2 && fabsf(h.decayed[0] - 1.8f) < 1e-6);
	CHECK(h.item[1] == 1 && h.count[1] == 1 && h.last[1] == 2 && fabsf(h.decayed[1] - 1.0f) < 1e-6);
	rs_items_features(&h, 0, 0, &st, x);
	CHECK(fabsf(x[0] - 1.0f) < 1e-6 && fabsf(x[1] - 1.0f) < 1e-6 && fabsf(x[2] - logf(3) / 3) < 1e-6);
	CHECK(fabsf(x[3] - 5.0f) < 1e-6 && fabsf(x[4] - 1.0f) < 1e-6 && x[5] == 1 && fabsf(x[6] - logf(3) / 3) < 1e-6);
	CHECK(fabsf(rs_items_default_score(x) - (1.0f + 1.5f + 0.2f)) < 1e-5);

	/* cut at basket 1 (the last one held out): item 1 is not known yet */
	rs_items_history(items, bno, 3, 1, slot, &h);
	CHECK(h.n == 1 && h.nbaskets == 1 && h.item[0] == 0 && h.count[0] == 1 && h.last[0] == 1);
	rs_items_features(&h, -1, 1, &st, x);
	CHECK(x[0] == 0 && x[1] == 0 && x[5] == 0 && fabsf(x[3] - 10.0f) < 1e-6);
	/* an older purchase counts less recently */
	{
		const int32_t it2[] = {0, 1},
					bn2[] = {1, 3};

		rs_items_history(it2, bn2, 2, 0, slot, &h);
		rs_items_features(&h, 0, 0, &st, x);
		CHECK(h.nbaskets == 3 && fabsf(x[1] - 1.0f / 3) < 1e-6 && fabsf(x[0] - 1.0f / 3) < 1e-6);
	}
	/*
	 * the rule feature: history item 0 (decayed 1.8) and item 1 (decayed 1.0); rules 0 -> 2 (confidence 0.5),
	 * 1 -> 2 (0.2), 1 -> 0 (0.9); candidates 2 and 0: (1.8 * 0.5 + 1.0 * 0.2) / 2.8 and 1.0 * 0.9 / 2.8
	 */
	{
		const int32_t rptr[] = {0, 1, 3, 3},
					rb[] = {2, 2, 0},
					cand[] = {2, 0};
		const double rconf[] = {0.5, 0.2, 0.9};
		float		xs[2 * RS_ITEM_NFEAT];

		rs_items_history(items, bno, 3, 0, slot, &h);
		rs_items_features(&h, -1, 2, &st, xs);
		rs_items_features(&h, 0, 0, &st, xs + RS_ITEM_NFEAT);
		CHECK(xs[8] == 0 && xs[RS_ITEM_NFEAT + 8] == 0);
		rs_items_cooc(&h, rptr, rb, rconf, cand, 2, slot, xs);
		CHECK_MSG(fabsf(xs[8] - 1.1f / 2.8f) < 1e-6, "rule feature of item 2: %g", xs[8]);
		CHECK_MSG(fabsf(xs[RS_ITEM_NFEAT + 8] - 0.9f / 2.8f) < 1e-6, "rule feature of item 0: %g", xs[RS_ITEM_NFEAT + 8]);
		CHECK(slot[0] == -1 && slot[1] == -1 && slot[2] == -1);
	}
	rs_release(st.share), rs_release(st.again), rs_release(st.buyers), rs_release(st.popular);
}

/*
 * The GRU's feature: vocabulary 3, hidden 2, state h = (1, 0): logits out[i] . h + out_b[i] are 1, 0 and 2 for
 * items 0, 1, 2; candidates 2, 0 and 5 (unknown to the encoder): log-softmax over the known two, / 5, and -4.
 */
static void
test_items_seq(int *failed)
{
	rs_real		out[] = {1, 0, 0, 1, 1, 0},
				outb[] = {0, 0, 1},
				h[] = {1, 0};
	const int32_t cand[] = {2, 0, 5};
	float		x[3 * RS_ITEM_NFEAT] = {0};
	RsSeq		seq = {.vocab = 3, .hidden = 2};
	double		lse = log(exp(2.0) + exp(1.0));

	seq.p[RS_SEQ_OUT] = out;
	seq.p[RS_SEQ_OUTB] = outb;
	rs_items_seq(&seq, h, cand, 3, x);
	CHECK_MSG(fabs(x[RS_ITEM_FEAT_SEQ] - (2 - lse) / 5) < 1e-6, "item 2: %g", x[RS_ITEM_FEAT_SEQ]);
	CHECK_MSG(fabs(x[RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ] - (1 - lse) / 5) < 1e-6, "item 0: %g", x[RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ]);
	CHECK(x[2 * RS_ITEM_NFEAT + RS_ITEM_FEAT_SEQ] == -4);
	/* the other features are left alone */
	CHECK(x[0] == 0 && x[RS_ITEM_NFEAT + 8] == 0);
}

const UnitCase unit_items_cases[] = {
	{"items: the shop's view, a history cut at a basket, features, the rule feature and the default blend by hand", test_items_by_hand},
	{"items: the GRU's feature, a log share of the candidates' softmax, by hand", test_items_seq},
	{NULL, NULL}
};
