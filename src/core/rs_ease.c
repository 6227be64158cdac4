/*
 * rs_ease.c — EASE solve: a blocked Cholesky inverse on LAPACK/BLAS (OpenBLAS ships LAPACK).
 */
#include "rs_ease.h"

#include <string.h>

#include <cblas.h>

/*
 * LAPACK's Fortran ABI: character arguments carry a hidden length after the
 * others (gfortran passes size_t), so it is passed even where it is ignored.
 */
#ifdef RS_DOUBLE
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
#define POTRF dpotrf_
#define TRSM cblas_dtrsm
#define SYRK cblas_dsyrk
#else
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
#define POTRF spotrf_
#define TRSM cblas_strsm
#define SYRK cblas_ssyrk
#endif

/*
 * Inverse of a symmetric positive definite matrix, in place, in blocks of
 * "block" columns: a right-looking Cholesky (potrf on the diagonal block,
 * trsm and syrk on the rest), then P = L^-T L^-1 one column block at a time
 * by two triangular solves on the trailing rows. The work equals potrf +
 * potri (n^3 flops) but comes in calls of n^2 * block flops, so a cancel or
 * statement_timeout is seen within one block: a single potri call on 12,000
 * bundles runs for tens of seconds. Row-major L lives in the lower triangle;
 * only the lower triangle of P is computed, then mirrored.
 */
int
rs_spd_inverse(rs_real *g, int n, int block)
{
	const char	uplo = 'U';		/* column-major upper = row-major lower */
	rs_real    *buf;

	if (block < 1)
		block = 1;
	/* callers fill the row-major upper triangle (ssyrk CblasUpper); the factor works in the lower one */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			g[(int64_t) j * n + i] = g[(int64_t) i * n + j];
	for (int k = 0; k < n; k += block)
	{
		int			kb = n - k < block ? n - k : block;
		int			rest = n - k - kb;
		int			info = 0;
		rs_real    *a11 = g + (int64_t) k * n + k;

		POTRF(&uplo, &kb, a11, &n, &info, 1);
		if (info != 0)
			return k + info;
		if (rest > 0)
		{
			rs_real    *a21 = a11 + (int64_t) kb * n;

			TRSM(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, rest, kb, 1, a11, n, a21, n);
			SYRK(CblasRowMajor, CblasLower, CblasNoTrans, rest, kb, -1, a21, n, 1, a21 + kb, n);
		}
		rs_check_interrupts();
	}
	buf = rs_alloc(sizeof(rs_real) * (size_t) n * block);
	for (int j0 = 0; j0 < n; j0 += block)
	{
		int			m = n - j0;
		int			w = m < block ? m : block;
		rs_real    *l = g + (int64_t) j0 * n + j0;

		/* P[j0:, j0:j0+w] = L22^-T L22^-1 E: rows above j0 are not needed (symmetry) */
		memset(buf, 0, sizeof(rs_real) * (size_t) m * w);
		for (int t = 0; t < w; t++)
			buf[(int64_t) t * w + t] = 1;
		TRSM(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, m, w, 1, l, n, buf, w);
		TRSM(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, m, w, 1, l, n, buf, w);
		/* columns j0..j0+w of L are not read again: later blocks use L[j1:, j1:] */
		for (int r = 0; r < m; r++)
			memcpy(l + (int64_t) r * n, buf + (int64_t) r * w, sizeof(rs_real) * w);
		rs_check_interrupts();
	}
	rs_release(buf);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			g[(int64_t) i * n + j] = g[(int64_t) j * n + i];
	return 0;
}

int
rs_ease_solve(rs_real *g, int n, double lambda)
{
	int			info;

	for (int i = 0; i < n; i++)
		g[(int64_t) i * n + i] += (rs_real) lambda;
	rs_check_interrupts();
	info = rs_spd_inverse(g, n, RS_EASE_BLOCK);
	if (info != 0)
		return info;
	rs_check_interrupts();
	/* B[i][j] = -P[i][j] / P[j][j], zero diagonal */
	for (int i = 0; i < n; i++)
	{
		rs_real    *row = g + (int64_t) i * n;

		for (int j = 0; j < n; j++)
			if (j != i)
				row[j] = -row[j] / g[(int64_t) j * n + j];
	}
	for (int i = 0; i < n; i++)
		g[(int64_t) i * n + i] = 0;
	return 0;
}

void
rs_ease_scores(const rs_real *b, int n, const int32_t *rows, int nrows, rs_real *scores)
{
	memset(scores, 0, sizeof(rs_real) * n);
	for (int r = 0; r < nrows; r++)
	{
		const rs_real *row = b + (int64_t) rows[r] * n;

		for (int j = 0; j < n; j++)
			scores[j] += row[j];
	}
}
