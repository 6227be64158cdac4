/*
 * rs_fit.c — the bundle fit's numerics (see rs_fit.h): moved out of the glue so the unit
 * tests reach them; the server runs them unchanged, bit for bit.
 */
#include "rs_fit.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "rs_bundle.h"
#include "rs_ease.h"

#define GRAM_BLOCK 256

int
rs_holdout_pick(uint64_t seed, int32_t user, const int32_t *bundles, int n)
{
	int			best = -1;
	uint64_t	best_h = 0;

	if (n < 2)
		return -1;
	for (int j = 0; j < n; j++)
	{
		uint64_t	h = rs_hash_u32((uint32_t) bundles[j], rs_hash_combine64(seed, rs_hash_u32((uint32_t) user, seed)));

		if (best < 0 || h < best_h)
		{
			best = j;
			best_h = h;
		}
	}
	return best;
}

int
rs_holdout_valid(uint64_t seed, int32_t user)
{
	return rs_hash_u32((uint32_t) user, seed + 1) % 5 == 0;
}

int
rs_customer_sampled(uint64_t seed, int32_t user, int64_t nu, int64_t max_customers)
{
	if (max_customers <= 0 || nu <= max_customers)
		return 1;
	/* the hash's top 32 bits are uniform: keep below the share */
	return (double) (rs_hash_u32((uint32_t) user, seed + 2) >> 32) < (double) max_customers / (double) nu * 4294967296.0;
}

void
rs_item_view_build(int32_t nb, int32_t ni, RsRows bi, RsItemView *v)
{
	int32_t		nnz = bi.ptr[nb];
	size_t		ni1 = (size_t) (ni > 1 ? ni : 1);
	int32_t    *fill;

	v->ib_ptr = rs_alloc(sizeof(int32_t) * ((size_t) ni + 1));
	v->ib_idx = rs_alloc(sizeof(int32_t) * (size_t) (nnz > 1 ? nnz : 1));
	v->ib_w = rs_alloc(sizeof(float) * (size_t) (nnz > 1 ? nnz : 1));
	v->idf = rs_alloc(sizeof(float) * ni1);
	v->mass = rs_alloc(sizeof(float) * ni1);
	memset(v->ib_ptr, 0, sizeof(int32_t) * ((size_t) ni + 1));
	/* the one padding entry of an empty view is written too: the weights carry it */
	v->ib_idx[0] = 0;
	v->ib_w[0] = 0;
	memset(v->idf, 0, sizeof(float) * ni1);
	memset(v->mass, 0, sizeof(float) * ni1);
	for (int32_t p = 0; p < nnz; p++)
		v->ib_ptr[bi.idx[p] + 1]++;
	for (int32_t i = 0; i < ni; i++)
		v->ib_ptr[i + 1] += v->ib_ptr[i];
	fill = rs_alloc(sizeof(int32_t) * ((size_t) ni + 1));
	memcpy(fill, v->ib_ptr, sizeof(int32_t) * ((size_t) ni + 1));
	for (int32_t b = 0; b < nb; b++)
	{
		int32_t		size = bi.ptr[b + 1] - bi.ptr[b];

		for (int32_t p = bi.ptr[b]; p < bi.ptr[b + 1]; p++)
		{
			int32_t		q = fill[bi.idx[p]]++;

			v->ib_idx[q] = b;
			v->ib_w[q] = 1.0f / sqrtf((float) size);
		}
	}
	rs_release(fill);
	for (int32_t i = 0; i < ni; i++)
	{
		int32_t		df = v->ib_ptr[i + 1] - v->ib_ptr[i];
		double		c = 0;

		/* rarer items say more about a bundle; never negative */
		v->idf[i] = df > 0 ? (float) fmax(log((double) nb / (df + 1.0)), 0.0) : 0;
		for (int32_t p = v->ib_ptr[i]; p < v->ib_ptr[i + 1]; p++)
			c += v->ib_w[p];
		v->mass[i] = (float) (v->idf[i] * c);
	}
}

void
rs_fit_gram(int32_t nu, int32_t nb, RsRows ub, RsRows ui, const RsItemView *v, double beta, double view_norm,
			int holdout, uint64_t seed, float *g, float *count, int64_t *pairs, int64_t *heldout)
{
	float	   *block = rs_alloc(sizeof(float) * (size_t) GRAM_BLOCK * nb);

	for (int32_t u0 = 0; u0 < nu; u0 += GRAM_BLOCK)
	{
		int			rows = nu - u0 < GRAM_BLOCK ? nu - u0 : GRAM_BLOCK;

		memset(block, 0, sizeof(float) * (size_t) rows * nb);
		for (int r = 0; r < rows; r++)
		{
			int32_t		u = u0 + r;
			float	   *x = block + (size_t) r * nb;
			const int32_t *taken = ub.idx + ub.ptr[u];
			int			ntaken = ub.ptr[u + 1] - ub.ptr[u];
			int			skip = holdout ? rs_holdout_pick(seed, u, taken, ntaken) : -1;
			double		z = 0,
						zw;

			for (int t = 0; t < ntaken; t++)
				if (t != skip)
				{
					x[taken[t]] += 1;
					count[taken[t]] += 1;
					(*pairs)++;
				}
			*heldout += skip >= 0;
			for (int32_t q = ui.ptr[u]; q < ui.ptr[u + 1]; q++)
				z += v->mass[ui.idx[q]];
			if (z <= 0 || beta == 0)
				continue;
			zw = rs_view_weight(beta, z, view_norm);
			for (int32_t q = ui.ptr[u]; q < ui.ptr[u + 1]; q++)
			{
				int32_t		i = ui.idx[q];
				float		w = (float) (zw * v->idf[i]);

				for (int32_t e = v->ib_ptr[i]; e < v->ib_ptr[i + 1]; e++)
					x[v->ib_idx[e]] += w * v->ib_w[e];
			}
		}
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, nb, rows, 1.0f, block, nb, 1.0f, g, nb);
		rs_check_interrupts();
	}
	rs_release(block);
}

void
rs_fit_content(int32_t nb, int32_t ni, const RsItemView *v, double content, float *g)
{
	if (content <= 0)
		return;
	for (int32_t i = 0; i < ni; i++)
	{
		double		w = content * v->idf[i];

		if (w <= 0)
			continue;
		/* the item's bundles are in ascending order (built bundle by bundle): a <= c is the upper triangle */
		for (int32_t a = v->ib_ptr[i]; a < v->ib_ptr[i + 1]; a++)
		{
			float	   *row = g + (size_t) v->ib_idx[a] * nb;
			float		wa = (float) (w * v->ib_w[a]);

			for (int32_t c = a; c < v->ib_ptr[i + 1]; c++)
				row[v->ib_idx[c]] += wa * v->ib_w[c];
		}
		/* per item: one that many bundles hold is df^2 / 2 updates of its own */
		rs_check_interrupts();
	}
}

int
rs_fit_sparse(float *g, int32_t nb, int32_t ni, const RsItemView *v, double lambda, int keep_b, int keep_m,
			  int32_t *bidx, float *bval, int32_t *midx, float *mval, float *count)
{
	int			rc = rs_ease_solve(g, nb, lambda);
	float	   *row;
	int32_t    *work;

	if (rc != 0)
		return rc;
	/* sparse B: the strongest keep_b entries of each row */
	work = rs_alloc(sizeof(int32_t) * nb);
	for (int32_t b = 0; b < nb; b++)
		rs_top_abs(g + (size_t) b * nb, nb, keep_b, bidx + (size_t) b * keep_b, bval + (size_t) b * keep_b, work);
	rs_check_interrupts();

	/* M = BIn' B per item (dense B), then its strongest keep_m entries */
	row = rs_alloc(sizeof(float) * nb);
	memset(midx, 0, sizeof(int32_t) * (size_t) (ni > 1 ? ni : 1) * keep_m);
	memset(mval, 0, sizeof(float) * (size_t) (ni > 1 ? ni : 1) * keep_m);
	for (int32_t i = 0; i < ni; i++)
	{
		memset(row, 0, sizeof(float) * nb);
		for (int32_t q = v->ib_ptr[i]; q < v->ib_ptr[i + 1]; q++)
			cblas_saxpy(nb, v->ib_w[q], g + (size_t) v->ib_idx[q] * nb, 1, row, 1);
		rs_top_abs(row, nb, keep_m, midx + (size_t) i * keep_m, mval + (size_t) i * keep_m, work);
		if ((i & 1023) == 0)
			rs_check_interrupts();
	}
	for (int32_t b = 0; b < nb; b++)
		count[b] = logf(1.0f + count[b]);
	rs_release(row);
	rs_release(work);
	return 0;
}
