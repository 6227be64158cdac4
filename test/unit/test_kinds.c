/*
 * test_kinds.c — every registered network kind (core/rs_kind.h) keeps the registry's
 * contract: its tensors cover its parameters exactly, its shape packs and unpacks to the
 * same parameter count, a packed field out of range is refused, and init, forward and a
 * training step run on a tiny batch with a finite loss. A new kind is checked here by
 * being registered.
 */
#include <math.h>
#include <string.h>

#include "core/rs_kind.h"
#include "unit.h"

/* a small config of the kind: defaults where declared, small values elsewhere */
static void
small_config(const RsKindOps *ops, RsNet *net)
{
	memset(net, 0, sizeof(*net));
	net->kind = ops->kind;
	for (const RsCfgField *f = ops->config; f->key; f++)
	{
		int		   *v = RS_CFG_AT(net, f);

		if (f->type == RS_CFG_WIDTHS)
		{
			v[0] = 3, v[1] = 4, v[2] = 1;
			*(int *) ((char *) net + f->offset2) = 2;
		}
		else if (f->type == RS_CFG_ACT)
			*v = f->dflt;
		else
			*v = f->dflt > 0 && f->dflt <= 16 ? f->dflt : f->lo + 4;
	}
	net->nparams = ops->layout(net);
}

static void
test_kinds_contract(int *failed)
{
	const RsKindOps *ops;
	int			nkinds = 0;

	for (int i = 0; (ops = rs_kind_at(i)) != NULL; i++, nkinds++)
	{
		RsNet		net,
					back;
		RsTensorDesc d[RS_KIND_MAX_TENSORS];
		int32_t		cfg[RS_KIND_CFG_INTS],
					cfg2[RS_KIND_CFG_INTS];
		int64_t		total = 0;
		int			nt;
		rs_real    *params,
				   *grads,
				   *m,
				   *v;
		RsRng		rng;
		RsOptim		opt;
		RsBatch		b = {.n = 2, .loss = RS_LOSS_BCE};
		rs_real		x[2 * 16] = {0},
					y[2] = {1, 0};
		int32_t		items[2 * 3] = {0, 1, 2, 1, 2, 0},
					len[2] = {3, 2},
					targets[2] = {1, 2},
					negs[2] = {3, 4};
		double		loss;

		CHECK(rs_kind_ops(ops->kind) == ops);
		CHECK(ops->config != NULL && ops->config[0].key != NULL);
		small_config(ops, &net);
		CHECK_MSG(net.nparams > 0, "kind %s: no parameters", rs_kind_name(ops->kind));
		memset(d, 0, sizeof(d));
		nt = ops->tensors(&net, d);
		CHECK(nt >= 1 && nt <= RS_KIND_MAX_TENSORS);
		for (int t = 0; t < nt; t++)
			total += d[t].numel;
		CHECK_MSG(total == net.nparams, "kind %s: tensors hold %lld numbers, layout says %lld",
				  rs_kind_name(ops->kind), (long long) total, (long long) net.nparams);

		rs_kind_pack(ops, &net, cfg);
		CHECK(rs_kind_unpack(ops, cfg, &back) == net.nparams);
		rs_kind_pack(ops, &back, cfg2);
		CHECK(memcmp(cfg, cfg2, sizeof(cfg)) == 0);
		cfg2[0] = -7;			/* the first field out of range, whatever its type */
		CHECK(rs_kind_unpack(ops, cfg2, &back) == -1);
		memcpy(cfg2, cfg, sizeof(cfg));
		cfg2[RS_KIND_CFG_INTS - 1] = 1;		/* bytes past the fields */
		CHECK(rs_kind_unpack(ops, cfg2, &back) == -1);

		params = rs_alloc(sizeof(rs_real) * net.nparams);
		grads = rs_alloc(sizeof(rs_real) * net.nparams);
		m = rs_alloc(sizeof(rs_real) * net.nparams);
		v = rs_alloc(sizeof(rs_real) * net.nparams);
		memset(grads, 0, sizeof(rs_real) * net.nparams);
		memset(m, 0, sizeof(rs_real) * net.nparams);
		memset(v, 0, sizeof(rs_real) * net.nparams);
		net.params = params;
		ops->bind(&net, params, NULL);
		rs_rng_seed(&rng, 7);
		ops->init(&net, &rng);
		CHECK(ops->activations(&net, 2, 3, 2) > 0);
		if (ops->input == RS_INPUT_ROWS)
		{
			CHECK(ops->in_width(&net) >= 1 && ops->in_width(&net) <= 16 && ops->n_items(&net) == 0);
			b.x = x, b.y = y;
		}
		else
		{
			CHECK(ops->n_items(&net) >= 5 && ops->in_width(&net) == 0);
			b.items = items, b.len = len, b.targets = targets, b.negs = negs, b.steps = 3, b.k = 2;
		}
		{
			rs_real    *out = ops->forward(&net, &b);
			int			finite = 1;

			for (int j = 0; j < 2 * ops->out_width(&net); j++)
				finite &= isfinite(out[j]);
			CHECK_MSG(finite, "kind %s: forward is not finite", rs_kind_name(ops->kind));
		}
		rs_optim_defaults(&opt, RS_OPT_ADAM);
		loss = ops->train_step(&net, &opt, grads, m, v, &b);
		CHECK_MSG(isfinite(loss) && loss > 0, "kind %s: training step loss %g", rs_kind_name(ops->kind), loss);
		ops->free(&net);
		rs_release(params);
		rs_release(grads);
		rs_release(m);
		rs_release(v);
	}
	CHECK(nkinds >= 3);
	CHECK(rs_kind_ops(RS_KIND_BUNDLE) == NULL && rs_kind_ops(RS_KIND_BASELINE) == NULL && rs_kind_ops(99) == NULL);
}

const UnitCase unit_kind_cases[] = {
	{"kinds: every registered kind covers its parameters with its tensors, packs, inits, forwards and trains", test_kinds_contract},
	{NULL, NULL}
};
