/*
 * rs_kind.c — the registry of network kinds (see rs_kind.h): one line per kind.
 */
#include "rs_kind.h"

#include <string.h>

static const RsKindOps *const kinds[] = {&rs_mlp_ops, &rs_rnn_ops, &rs_gru_ops};

const RsKindOps *
rs_kind_ops(int kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->kind == kind)
			return kinds[i];
	return NULL;
}

const RsKindOps *
rs_kind_at(int i)
{
	return i >= 0 && (size_t) i < sizeof(kinds) / sizeof(kinds[0]) ? kinds[i] : NULL;
}

void
rs_kind_pack(const RsKindOps *ops, const RsNet *net, int32_t *cfg)
{
	int			n = 0;

	memset(cfg, 0, sizeof(int32_t) * RS_KIND_CFG_INTS);
	for (const RsCfgField *f = ops->config; f->key; f++)
	{
		const int  *v = (const int *) ((const char *) net + f->offset);

		if (f->type == RS_CFG_WIDTHS)
		{
			int			count = *(const int *) ((const char *) net + f->offset2) + 1;

			cfg[n++] = count;
			for (int i = 0; i < count; i++)
				cfg[n++] = v[i];
		}
		else
			cfg[n++] = *v;
	}
}

int64_t
rs_kind_unpack(const RsKindOps *ops, const int32_t *cfg, RsNet *net)
{
	int			n = 0;

	memset(net, 0, sizeof(*net));
	net->kind = ops->kind;
	for (const RsCfgField *f = ops->config; f->key; f++)
	{
		int		   *v = RS_CFG_AT(net, f);

		if (f->type == RS_CFG_WIDTHS)
		{
			int			count = cfg[n++];

			if (count < 2 || count > RS_MLP_MAX_LAYERS + 1 || n + count > RS_KIND_CFG_INTS)
				return -1;
			*(int *) ((char *) net + f->offset2) = count - 1;
			for (int i = 0; i < count; i++, n++)
			{
				if (cfg[n] < f->lo || cfg[n] > f->hi)
					return -1;
				v[i] = cfg[n];
			}
		}
		else if (f->type == RS_CFG_ACT)
		{
			if (cfg[n] < RS_ACT_LINEAR || cfg[n] > RS_ACT_TANH)
				return -1;
			*v = cfg[n++];
		}
		else
		{
			if (cfg[n] < f->lo || cfg[n] > f->hi)
				return -1;
			*v = cfg[n++];
		}
	}
	for (; n < RS_KIND_CFG_INTS; n++)
		if (cfg[n] != 0)
			return -1;
	net->nparams = ops->layout(net);
	return net->nparams;
}
