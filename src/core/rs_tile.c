/*
 * rs_tile.c — the register-tiled product (rs_tile.h).
 *
 * GCC's vector extension (vector_size 64: one AVX-512 register) rather than intrinsics: the code reads as the
 * arithmetic it is, and the target attribute makes it AVX-512 for this function alone, chosen at run time.
 */
#include "rs_tile.h"

#include <string.h>

bool		rs_tile_enabled = true;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RS_DOUBLE)
#define RS_TILE_AVX512 1

typedef float RsV16 __attribute__((vector_size(64)));

#define TILE_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))

TILE_TARGET static inline __attribute__((always_inline)) RsV16
v16_load(const float *p)
{
	RsV16		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

TILE_TARGET static inline __attribute__((always_inline)) void
v16_store(float *p, RsV16 v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * Four rows (ap; rows past the last real one repeat it and are not stored) by 16 * nv columns: 4 x nv
 * accumulators stay in registers through the k loop, which loads nv vectors of B's row p and broadcasts A's
 * four elements. nv is a constant at each call, so the loops unroll away.
 */
TILE_TARGET static inline __attribute__((always_inline)) void
tile_block(const int nv, int rows, int k, const float *const ap[RS_TILE_ROWS], int64_t a_col,
		   const float *b, int ldb, float *c, int ldc, bool accumulate)
{
	RsV16		t[RS_TILE_ROWS][3];

	for (int r = 0; r < RS_TILE_ROWS; r++)
		for (int v = 0; v < nv; v++)
			t[r][v] = accumulate && r < rows ? v16_load(c + (int64_t) r * ldc + 16 * v) : (RsV16) {0};
	for (int p = 0; p < k; p++)
	{
		const float *bp = b + (int64_t) p * ldb;
		RsV16		bv[3];

		for (int v = 0; v < nv; v++)
			bv[v] = v16_load(bp + 16 * v);
		for (int r = 0; r < RS_TILE_ROWS; r++)
		{
			float		s = ap[r][p * a_col];
			RsV16		x = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};

			for (int v = 0; v < nv; v++)
				t[r][v] += x * bv[v];
		}
	}
	for (int r = 0; r < rows; r++)
		for (int v = 0; v < nv; v++)
			v16_store(c + (int64_t) r * ldc + 16 * v, t[r][v]);
}

/*
 * Blocked like any GEMM so each pass reads from cache: B in chunks of TILE_KC rows by TILE_NC columns (384 KB,
 * in L2), every 4-row block of A swept across a chunk before the next.
 */
#define TILE_KC 256
#define TILE_NC 384

TILE_TARGET static void
tile_gemm(int m, int n, int k, const float *a, int64_t a_row, int64_t a_col,
		  const float *b, int ldb, float *c, int ldc, bool accumulate)
{
	int			p0 = 0;

	do
	{
		int			kc = k - p0 < TILE_KC ? k - p0 : TILE_KC;
		bool		acc = accumulate || p0 > 0;

		for (int j0 = 0; j0 < n; j0 += TILE_NC)
		{
			int			j1 = n - j0 < TILE_NC ? n : j0 + TILE_NC;

			for (int i = 0; i < m; i += RS_TILE_ROWS)
			{
				int			rows = m - i < RS_TILE_ROWS ? m - i : RS_TILE_ROWS,
							j = j0;
				const float *ap[RS_TILE_ROWS];
				const float *bk = b + (int64_t) p0 * ldb;
				float	   *ci = c + (int64_t) i * ldc;

				for (int r = 0; r < RS_TILE_ROWS; r++)
					ap[r] = a + (int64_t) (i + (r < rows ? r : rows - 1)) * a_row + (int64_t) p0 * a_col;
				for (; j + 48 <= j1; j += 48)
					tile_block(3, rows, kc, ap, a_col, bk + j, ldb, ci + j, ldc, acc);
				for (; j < j1; j += 16)
					tile_block(1, rows, kc, ap, a_col, bk + j, ldb, ci + j, ldc, acc);
			}
		}
		p0 += kc;
	} while (p0 < k);
}

static bool
tile_cpu(void)
{
	static int	cpu = -1;

	if (cpu < 0)
	{
		__builtin_cpu_init();
		cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
	}
	return cpu == 1;
}
#else
static bool
tile_cpu(void)
{
	return false;
}
#endif

/* the plain product: where the tile cannot run (double build, no AVX-512), correct but not fast */
static void
tile_gemm_plain(int m, int n, int k, const rs_real *a, int64_t a_row, int64_t a_col,
				const rs_real *b, int ldb, rs_real *c, int ldc, bool accumulate)
{
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++)
		{
			rs_real		s = accumulate ? c[(int64_t) i * ldc + j] : 0;

			for (int p = 0; p < k; p++)
				s += a[i * a_row + p * a_col] * b[(int64_t) p * ldb + j];
			c[(int64_t) i * ldc + j] = s;
		}
}

bool
rs_tile_ok(int n)
{
	return rs_tile_enabled && tile_cpu() && n > 0 && n % 16 == 0;
}

void
rs_tile_gemm(int m, int n, int k, const rs_real *a, int64_t a_row, int64_t a_col,
			 const rs_real *b, int ldb, rs_real *c, int ldc, bool accumulate)
{
#ifdef RS_TILE_AVX512
	if (n % 16 == 0 && tile_cpu())
	{
		tile_gemm(m, n, k, a, a_row, a_col, b, ldb, c, ldc, accumulate);
		return;
	}
#endif
	tile_gemm_plain(m, n, k, a, a_row, a_col, b, ldb, c, ldc, accumulate);
}
