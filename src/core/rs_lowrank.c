/*
 * rs_lowrank.c — the bundle fit for large catalogues (see rs_lowrank.h).
 */
#include "rs_lowrank.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "rs_bundle.h"

/* LAPACK's Fortran ABI, as in rs_ease.c: hidden lengths after the character arguments */
extern void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
					const int *lwork, int *info);
extern void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
					float *work, const int *lwork, int *info);
extern void ssyev_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
				   float *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

#define NEIGHBOUR_BLOCK 256

void
rs_gram_apply(const RsFitRows *r, const float *omega, int l, float *y, float *count, int64_t *pairs,
			  int64_t *heldout)
{
	const RsItemView *v = r->v;
	size_t		ni1 = (size_t) (r->ni > 1 ? r->ni : 1);
	float	   *oi = rs_alloc(sizeof(float) * ni1 * l),	/* IV omega: each item's view of omega */
			   *yi = rs_alloc(sizeof(float) * ni1 * l),	/* the items' share of y, spread at the end */
			   *t = rs_alloc(sizeof(float) * l);

	memset(y, 0, sizeof(float) * (size_t) r->nb * l);
	memset(yi, 0, sizeof(float) * ni1 * l);
	memset(oi, 0, sizeof(float) * ni1 * l);
	for (int32_t i = 0; i < r->ni; i++)
		for (int32_t q = v->ib_ptr[i]; q < v->ib_ptr[i + 1]; q++)
			cblas_saxpy(l, v->ib_w[q], omega + (size_t) v->ib_idx[q] * l, 1, oi + (size_t) i * l, 1);

	for (int32_t u = 0; u < r->nu; u++)
	{
		const int32_t *taken = r->user_bundles.idx + r->user_bundles.ptr[u];
		int			ntaken = r->user_bundles.ptr[u + 1] - r->user_bundles.ptr[u];
		int			skip = r->holdout ? rs_holdout_pick(r->seed, u, taken, ntaken) : -1;
		int32_t		i0 = r->user_items.ptr[u],
					i1 = r->user_items.ptr[u + 1];
		double		z = 0,
					zw = 0;
		int			items;

		/* the customer's row x = their bundles + their items' views, weighted by idf rs_view_weight(beta, z) */
		for (int32_t q = i0; q < i1; q++)
			z += v->mass[r->user_items.idx[q]];
		items = z > 0 && r->beta != 0;
		if (items)
			zw = rs_view_weight(r->beta, z, r->view_norm);
		memset(t, 0, sizeof(float) * l);
		for (int k = 0; k < ntaken; k++)
			if (k != skip)
			{
				cblas_saxpy(l, 1.0f, omega + (size_t) taken[k] * l, 1, t, 1);
				if (count)
				{
					count[taken[k]] += 1;
					(*pairs)++;
				}
			}
		if (count)
			*heldout += skip >= 0;
		if (items)
			for (int32_t q = i0; q < i1; q++)
			{
				int32_t		i = r->user_items.idx[q];

				cblas_saxpy(l, (float) (zw * v->idf[i]), oi + (size_t) i * l, 1, t, 1);
			}
		/* y += x (x' omega) */
		for (int k = 0; k < ntaken; k++)
			if (k != skip)
				cblas_saxpy(l, 1.0f, t, 1, y + (size_t) taken[k] * l, 1);
		if (items)
			for (int32_t q = i0; q < i1; q++)
			{
				int32_t		i = r->user_items.idx[q];

				cblas_saxpy(l, (float) (zw * v->idf[i]), t, 1, yi + (size_t) i * l, 1);
			}
		if ((u & 4095) == 0)
			rs_check_interrupts();
	}
	/* the catalogue's rows (rs_fit_content): item i adds content idf_i r_i (r_i' omega), r_i' omega being oi_i */
	if (r->content > 0)
		for (int32_t i = 0; i < r->ni; i++)
			if (v->idf[i] > 0)
				cblas_saxpy(l, (float) (r->content * v->idf[i]), oi + (size_t) i * l, 1, yi + (size_t) i * l, 1);
	for (int32_t i = 0; i < r->ni; i++)
		for (int32_t q = v->ib_ptr[i]; q < v->ib_ptr[i + 1]; q++)
			cblas_saxpy(l, v->ib_w[q], yi + (size_t) i * l, 1, y + (size_t) v->ib_idx[q] * l, 1);
	rs_release(t);
	rs_release(yi);
	rs_release(oi);
}

/* orthonormal columns spanning those of y (n x l, row-major, n >= l), in place */
static int
Orthonormalise(float *y, int n, int l)
{
	float	   *a = rs_alloc(sizeof(float) * (size_t) n * l),
			   *tau = rs_alloc(sizeof(float) * l),
				wq;
	int			lwork = -1,
				info = 0;
	float	   *work;

	/* LAPACK is column-major: transpose in, factor, transpose out */
	for (int i = 0; i < n; i++)
		for (int k = 0; k < l; k++)
			a[(size_t) k * n + i] = y[(size_t) i * l + k];
	sgeqrf_(&n, &l, a, &n, tau, &wq, &lwork, &info);
	lwork = (int) wq > l ? (int) wq : l;
	work = rs_alloc(sizeof(float) * lwork);
	sgeqrf_(&n, &l, a, &n, tau, work, &lwork, &info);
	if (info == 0)
		sorgqr_(&n, &l, &l, a, &n, tau, work, &lwork, &info);
	for (int i = 0; info == 0 && i < n; i++)
		for (int k = 0; k < l; k++)
			y[(size_t) i * l + k] = a[(size_t) k * n + i];
	rs_release(work);
	rs_release(tau);
	rs_release(a);
	return info;
}

/* the strongest keep_m entries of acc over its touched bundles, in index order; acc and mag are cleared */
static void
TopTouched(float *acc, float *mag, const int32_t *touched, int ntouched, int keep_m, int32_t *idx, float *val)
{
	int			cnt;

	for (int a = 0; a < ntouched; a++)
		mag[touched[a]] = fabsf(acc[touched[a]]);
	cnt = rs_top_n_among(mag, touched, ntouched, NULL, keep_m, idx);
	rs_sort_indexes(idx, cnt);
	for (int a = 0; a < cnt; a++)
		val[a] = acc[idx[a]];
	for (int a = cnt; a < keep_m; a++)
	{
		idx[a] = 0;
		val[a] = 0;
	}
	for (int a = 0; a < ntouched; a++)
		acc[touched[a]] = mag[touched[a]] = 0;
}

int
rs_fit_lowrank(const RsFitRows *r, int rank, int iters, uint64_t seed, double lambda, int keep_b, int keep_m,
			   int32_t *bidx, float *bval, int32_t *midx, float *mval, float *count, int64_t *pairs,
			   int64_t *heldout)
{
	int32_t		nb = r->nb;
	int			l = rank < nb ? rank : nb,
				info = 0,
				lwork = -1;
	size_t		nl = (size_t) nb * l;
	float	   *q = rs_alloc(sizeof(float) * nl),
			   *y = rs_alloc(sizeof(float) * nl),
			   *tm = rs_alloc(sizeof(float) * (size_t) l * l),
			   *w = rs_alloc(sizeof(float) * l),
			   *d = rs_alloc(sizeof(float) * l),
			   *kdiag = rs_alloc(sizeof(float) * nb),
			   *block,
			   *work,
				wq;
	int32_t    *scratch;
	RsRng		rng;

	/* a Gaussian start, then power steps: each pass over the customers sharpens the top of the spectrum */
	rs_rng_seed(&rng, seed);
	for (size_t k = 0; k < nl; k++)
		q[k] = (float) rs_rng_normal(&rng);
	memset(count, 0, sizeof(float) * nb);
	*pairs = *heldout = 0;
	rs_gram_apply(r, q, l, y, count, pairs, heldout);
	for (int it = 0; it <= iters; it++)
	{
		if ((info = Orthonormalise(y, nb, l)) != 0)
			goto done;
		memcpy(q, y, sizeof(float) * nl);
		rs_gram_apply(r, q, l, y, NULL, NULL, NULL);
	}
	/* Rayleigh-Ritz: T = Q' G Q, its eigenpairs rotate Q into V */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, l, nb, 1.0f, q, l, y, l, 0.0f, tm, l);
	for (int a = 0; a < l; a++)
		for (int b = a + 1; b < l; b++)
			tm[(size_t) a * l + b] = tm[(size_t) b * l + a] = 0.5f * (tm[(size_t) a * l + b] + tm[(size_t) b * l + a]);
	ssyev_("V", "U", &l, tm, &l, w, &wq, &lwork, &info, 1, 1);
	lwork = (int) wq > 3 * l ? (int) wq : 3 * l;
	work = rs_alloc(sizeof(float) * lwork);
	ssyev_("V", "U", &l, tm, &l, w, work, &lwork, &info, 1, 1);
	rs_release(work);
	if (info != 0)
		goto done;
	/* symmetric, so column-major eigenvectors read row-major are U': V = Q U = Q (tm)' */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, l, l, 1.0f, q, l, tm, l, 0.0f, y, l);
	for (int k = 0; k < l; k++)
		d[k] = w[k] > 0 ? (float) (w[k] / (w[k] + lambda)) : 0.0f;
	/* q := V diag(d); kdiag = diag(K) */
	for (int32_t j = 0; j < nb; j++)
	{
		double		s = 0;

		for (int k = 0; k < l; k++)
		{
			q[(size_t) j * l + k] = y[(size_t) j * l + k] * d[k];
			s += (double) q[(size_t) j * l + k] * y[(size_t) j * l + k];
		}
		kdiag[j] = (float) (1.0 / (1.0 - (s < 0.999999 ? s : 0.999999)));
	}

	/* B, a block of rows at a time: K's rows scaled by column, the diagonal dropped, the strongest kept */
	block = rs_alloc(sizeof(float) * (size_t) NEIGHBOUR_BLOCK * nb);
	scratch = rs_alloc(sizeof(int32_t) * (size_t) nb);
	for (int32_t b0 = 0; b0 < nb; b0 += NEIGHBOUR_BLOCK)
	{
		int			rows = nb - b0 < NEIGHBOUR_BLOCK ? nb - b0 : NEIGHBOUR_BLOCK;

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nb, l, 1.0f, q + (size_t) b0 * l, l, y, l,
					0.0f, block, nb);
		for (int a = 0; a < rows; a++)
		{
			float	   *row = block + (size_t) a * nb;

			for (int32_t j = 0; j < nb; j++)
				row[j] *= kdiag[j];
			row[b0 + a] = 0;
			rs_top_abs(row, nb, keep_b, bidx + (size_t) (b0 + a) * keep_b, bval + (size_t) (b0 + a) * keep_b,
					   scratch);
		}
		rs_check_interrupts();
	}
	rs_release(block);

	/* M = BIn' B over the sparse rows: each item sums its bundles' kept neighbours */
	{
		float	   *acc = rs_alloc(sizeof(float) * nb),
				   *mag = rs_alloc(sizeof(float) * nb);
		const RsItemView *v = r->v;

		memset(acc, 0, sizeof(float) * nb);
		memset(mag, 0, sizeof(float) * nb);
		memset(midx, 0, sizeof(int32_t) * (size_t) (r->ni > 1 ? r->ni : 1) * keep_m);
		memset(mval, 0, sizeof(float) * (size_t) (r->ni > 1 ? r->ni : 1) * keep_m);
		for (int32_t i = 0; i < r->ni; i++)
		{
			int			ntouched = 0;

			for (int32_t p = v->ib_ptr[i]; p < v->ib_ptr[i + 1]; p++)
			{
				int32_t		b = v->ib_idx[p];

				for (int k = 0; k < keep_b; k++)
				{
					int32_t		j = bidx[(size_t) b * keep_b + k];
					float		x = v->ib_w[p] * bval[(size_t) b * keep_b + k];

					if (x == 0)
						continue;
					if (acc[j] == 0 && mag[j] == 0)
					{
						scratch[ntouched++] = j;
						mag[j] = 1;	/* marks j touched even if its sum returns to 0 */
					}
					acc[j] += x;
				}
			}
			TopTouched(acc, mag, scratch, ntouched, keep_m, midx + (size_t) i * keep_m, mval + (size_t) i * keep_m);
			if ((i & 1023) == 0)
				rs_check_interrupts();
		}
		rs_release(mag);
		rs_release(acc);
	}
	rs_release(scratch);
	for (int32_t b = 0; b < nb; b++)
		count[b] = logf(1.0f + count[b]);
done:
	rs_release(kdiag);
	rs_release(d);
	rs_release(w);
	rs_release(tm);
	rs_release(y);
	rs_release(q);
	return info;
}
