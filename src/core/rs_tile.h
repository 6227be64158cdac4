/*
 * rs_tile.h — a register-tiled product for the sequence encoders: C (+)= A B, four rows of A at a time, B read
 * in place.
 *
 * Why beside OpenBLAS, which does every other product (the loss, the MLP, the bundle fit, the input projection):
 * a sequence encoder's step products (h W_h forward; backward, into the previous state, W_h's and W_x's
 * gradients and the step's input gradient) are done once per step, 20 times per batch, on the same weights, and
 * each sgemm call packs both operands again and zeroes C first (OpenBLAS 0.3.21 has no API that keeps a packed
 * operand across calls): packing was 9% of the GRU's time. This product packs nothing; called on four rows, its
 * output is a tile the GRU's gates read from L1 at once (rs_seq_encode). At the benchmark's shapes on a 2-core
 * AMD EPYC, GFLOP/s against sgemm's: the step 111 / 102, the previous state's gradient 110 / 102, W_h's 112 /
 * 100, W_x's 112 / 99, the input gradient 114 / 99; on four rows both run at 112 (sgemm's small-matrix path
 * packs nothing either).
 *
 * x86-64 with AVX-512 only: the 4 x 48 tile, a row of B and a broadcast take 16 of the 32 vector registers
 * (AVX2 has 16 in all, and there sgemm is the better choice). Elsewhere, and in the double build, rs_tile_ok()
 * is false and callers use OpenBLAS.
 */
#ifndef RS_TILE_H
#define RS_TILE_H

#include <stdbool.h>

#include "rs_core.h"

/* rows per tile: a caller that fuses work into the product's output calls rs_tile_gemm this many rows at a time */
#define RS_TILE_ROWS 4

/* false turns the tiled product off (the tests compare both paths) */
extern bool rs_tile_enabled;

/* whether rs_tile_gemm can take n columns here: n a multiple of 16, AVX-512, float build, rs_tile_enabled */
extern bool rs_tile_ok(int n);

/*
 * C (m x n, row stride ldc) = A B, or += with accumulate; A's element (i, p) is a[i * a_row + p * a_col] (so
 * A or its transpose, in place), B is k x n with row stride ldb. k = 0 gives zeros (or leaves C).
 */
extern void rs_tile_gemm(int m, int n, int k, const rs_real *a, int64_t a_row, int64_t a_col,
						 const rs_real *b, int ldb, rs_real *c, int ldc, bool accumulate);

#endif
