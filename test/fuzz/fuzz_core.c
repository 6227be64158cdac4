/*
 * fuzz_core.c — libFuzzer harness of the core's entry points with shapes and values
 * taken from the input: an MLP forward and backward of random depth and widths, and
 * the bundle ranker's scoring, features and top-n on a random sparse model whose
 * indexes may point anywhere (out-of-range ones must be ignored, never followed).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_bundle.h"
#include "core/rs_mlp.h"
#include "core_host.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Bytes
{
	const uint8_t *p;
	size_t		n;
} Bytes;

static unsigned
Take(Bytes *b, unsigned mod)
{
	unsigned	v = 0;

	if (b->n > 0)
	{
		v = b->p[0];
		b->p++;
		b->n--;
	}
	return mod ? v % mod : v;
}

static float
TakeFloat(Bytes *b)
{
	return ((float) Take(b, 0) - 128.0f) / 16.0f;
}

static void
FuzzMlp(Bytes *b)
{
	RsMlp		m;
	int			layers = 1 + Take(b, 4),
				batch = 1 + Take(b, 8);
	int64_t		np;
	rs_real    *params,
			   *grads,
			   *x,
			   *dl;

	memset(&m, 0, sizeof(m));
	m.nlayers = layers;
	for (int l = 0; l <= layers; l++)
		m.dims[l] = 1 + Take(b, 12);
	m.hidden = (RsAct) Take(b, 4);
	m.output = (RsAct) Take(b, 4);
	np = rs_mlp_nparams(m.dims, layers);
	params = calloc(np, sizeof(rs_real));
	grads = calloc(np, sizeof(rs_real));
	for (int64_t i = 0; i < np; i++)
		params[i] = TakeFloat(b);
	rs_mlp_bind(&m, params, grads);
	x = calloc((size_t) batch * m.dims[0], sizeof(rs_real));
	dl = calloc((size_t) batch * m.dims[layers], sizeof(rs_real));
	for (int i = 0; i < batch * m.dims[0]; i++)
		x[i] = TakeFloat(b);
	for (int i = 0; i < batch * m.dims[layers]; i++)
		dl[i] = TakeFloat(b);
	rs_mlp_forward(&m, x, batch);
	rs_mlp_backward(&m, x, batch, dl);
	rs_mlp_free(&m);
	free(params);
	free(grads);
	free(x);
	free(dl);
}

static void
FuzzBundle(Bytes *b)
{
	int			nb = 1 + Take(b, 40),
				ni = 1 + Take(b, 40),
				mb = 1 + Take(b, nb),
				mm = 1 + Take(b, nb),
				nnz = Take(b, 60),
				ntaken = Take(b, 10),
				nitems = Take(b, 10),
				k = 1 + Take(b, 50);
	int32_t    *bidx = malloc(sizeof(int32_t) * nb * mb),
			   *midx = malloc(sizeof(int32_t) * ni * mm),
			   *ib_ptr = calloc(ni + 1, sizeof(int32_t)),
			   *ib_idx = malloc(sizeof(int32_t) * (nnz + 1)),
			   *taken = malloc(sizeof(int32_t) * (ntaken + 1)),
			   *items = malloc(sizeof(int32_t) * (nitems + 1)),
			   *touched = malloc(sizeof(int32_t) * nb),
			   *top = malloc(sizeof(int32_t) * k);
	float	   *bval = malloc(sizeof(float) * nb * mb),
			   *mval = malloc(sizeof(float) * ni * mm),
			   *idf = malloc(sizeof(float) * ni),
			   *mass = malloc(sizeof(float) * ni),
			   *pop = malloc(sizeof(float) * nb),
			   *ib_w = malloc(sizeof(float) * (nnz + 1)),
			   *s = calloc(nb, sizeof(float)),
			   *iv = calloc(nb, sizeof(float)),
			   *x = malloc(sizeof(float) * k * RS_BUNDLE_NFEAT);
	uint8_t    *mark = calloc(nb, 1),
			   *skip = malloc(nb);
	int			ntouched = 0,
				got;
	RsBundleModel m = {.nb = nb,.ni = ni,.mb = mb,.mm = mm,.beta = TakeFloat(b),.view_norm = 0.75,.bidx = bidx,.bval = bval,
	.midx = midx,.mval = mval,.idf = idf,.mass = mass,.pop = pop,.ib_ptr = ib_ptr,.ib_idx = ib_idx,.ib_w = ib_w};

	/* the model's own indexes are valid (the loader checks them); what callers pass need not be */
	for (int i = 0; i < nb * mb; i++)
		bidx[i] = Take(b, nb), bval[i] = TakeFloat(b);
	for (int i = 0; i < ni * mm; i++)
		midx[i] = Take(b, nb), mval[i] = TakeFloat(b);
	for (int i = 0; i < ni; i++)
		idf[i] = fabsf(TakeFloat(b)), mass[i] = fabsf(TakeFloat(b));
	for (int i = 0; i < nb; i++)
		pop[i] = TakeFloat(b), skip[i] = Take(b, 2);
	for (int i = 0; i < nnz; i++)
		ib_ptr[1 + Take(b, ni)]++, ib_idx[i] = Take(b, nb), ib_w[i] = TakeFloat(b);
	for (int i = 0; i < ni; i++)
		ib_ptr[i + 1] += ib_ptr[i];
	for (int i = 0; i < ntaken; i++)
		taken[i] = (int) Take(b, 0) - 100;	/* negative and too large included */
	for (int i = 0; i < nitems; i++)
		items[i] = (int) Take(b, 0) - 100;
	rs_bundle_score_touched(&m, taken, ntaken, items, nitems, s, iv, mark, touched, &ntouched);
	if (ntouched > nb)
		abort();
	got = rs_top_n_among(s, touched, ntouched, skip, k, top);
	rs_bundle_features_among(&m, s, iv, touched, ntouched, ntaken, top, got, x);
	got = rs_top_n(s, nb, skip, k, top);
	for (int i = 0; i < got; i++)
		if (top[i] < 0 || top[i] >= nb || skip[top[i]])
			abort();
	rs_bundle_features(&m, s, iv, ntaken, top, got, x);
	rs_bundle_clear(s, iv, mark, touched, ntouched);
	for (int i = 0; i < nb; i++)
		if (s[i] != 0 || iv[i] != 0 || mark[i] != 0)
			abort();
	free(bidx); free(midx); free(ib_ptr); free(ib_idx); free(taken); free(items); free(touched); free(top);
	free(bval); free(mval); free(idf); free(mass); free(pop); free(ib_w); free(s); free(iv); free(x);
	free(mark); free(skip);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Bytes		b = {data, size};

	rs_core_use_postgres();
	if (Take(&b, 2) == 0)
		FuzzMlp(&b);
	else
		FuzzBundle(&b);
	return 0;
}
