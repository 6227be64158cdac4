/*
 * rs_ease.c — EASE solve with LAPACK's Cholesky (OpenBLAS ships LAPACK).
 * The matrix is symmetric, so row- versus column-major does not matter.
 */
#include "rs_ease.h"

#include <string.h>

/*
 * LAPACK's Fortran ABI: character arguments carry a hidden length after the
 * others (gfortran passes size_t), so it is passed even where it is ignored.
 */
#ifdef RS_DOUBLE
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
#define POTRF dpotrf_
#define POTRI dpotri_
#else
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
extern void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
#define POTRF spotrf_
#define POTRI spotri_
#endif

int
rs_ease_solve(rs_real *g, int n, double lambda)
{
	int			info = 0;
	const char	uplo = 'L';

	for (int i = 0; i < n; i++)
		g[(int64_t) i * n + i] += (rs_real) lambda;
	rs_check_interrupts();
	POTRF(&uplo, &n, g, &n, &info, 1);
	if (info != 0)
		return info;
	rs_check_interrupts();
	POTRI(&uplo, &n, g, &n, &info, 1);
	if (info != 0)
		return info;
	/* LAPACK filled one triangle (column-major 'L' = row-major upper): mirror it */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			g[(int64_t) j * n + i] = g[(int64_t) i * n + j];
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
