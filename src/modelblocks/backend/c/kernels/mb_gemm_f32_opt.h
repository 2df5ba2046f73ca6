/* Register-tiled float32 micro-kernels, shared by the optimised conv, linear and matmul kernels
 * (mb_conv_f32_opt.c, mb_linear_f32_opt.c, mb_matmul_f32_opt.c).
 *
 * A "panel" holds 4 rows of a matrix interleaved: panel[4 * p + i] is row i, column p, so that one
 * step p of a product reads 4 consecutive floats. Weights are stored offline in that layout
 * (ops/linear.py, ops/conv.py: `panels4`), activations are packed into it at run time where needed.
 *
 * Every product term is one fmaf() (a single rounding), each accumulator summing its terms in
 * ascending p. On a core with the FPv4/FPv5 fused multiply-add (Cortex-M4, M7, M33, M55 with the
 * hard-float ABI) the inner loops are a few lines of inline assembly that load 4 to 16 floats per
 * VLDM and issue one VFMA per multiply-add; elsewhere (the host, where tests run under ASan and
 * UBSan; or with MB_PORTABLE_FP defined) the same sums are plain C. Both compute the same terms in
 * the same order with the same rounding, so their results are identical bit for bit. */
#ifndef MB_GEMM_F32_OPT_H
#define MB_GEMM_F32_OPT_H
#include <math.h>
#include <stdint.h>

#include "mb_common.h"

/* A 4x4 tile: y[i * ys + j] = clamp(init[4 i + j] + sum_{p < k} a[4 p + i] * b[p * b_stride + j]) for
 * i, j < 4. a is a panel of 4 rows; b holds 4 consecutive floats per step p, b_stride floats apart;
 * init holds the 16 starting values (e.g. the bias), or with init_rows 4 values, init[i] starting
 * all of row i. lohi is NULL (no clamp) or {lo, hi}. Returns nonzero when the caller must still
 * clamp y, exactly, with mb_clamp_rows_f32_opt (MB_FAST_MINMAX below). */
int mb_gemm4x4_f32_opt(const float *a, const float *b, int32_t b_stride, int32_t k, const float *init,
                       int init_rows, float *y, int32_t ys, const float *lohi);

/* 4 rows of a panel times a vector: y[i] = clamp(init[i] + sum_{p < k} a[4 p + i] * x[p]), i < 4;
 * lohi and the result as for mb_gemm4x4_f32_opt. */
int mb_gemv4_f32_opt(const float *a, const float *x, int32_t k, const float *init, float *y, const float *lohi);

/* The rows (< 4) left after the panels of 4, stored compactly as a[p * rows + i]: y[i * si + j * sj] =
 * clamp(bias[i] + sum_{p < k} a[p * rows + i] * b[p * b_stride + j]) for i < rows, j < nj (b holds
 * 4 floats per step; bias may be NULL). Plain C, exact clamp: these rows are a small part. */
void mb_gemm_rows_f32_opt(const float *a, int32_t rows, const float *b, int32_t b_stride, int32_t k,
                          const float *bias, float *y, int32_t si, int32_t sj, int32_t nj, const float *lohi);

/* the same against a vector: y[i] = clamp(bias[i] + sum_{p < k} a[p * rows + i] * x[p]), i < rows */
void mb_gemv_rows_f32_opt(const float *a, int32_t rows, const float *x, int32_t k, const float *bias, float *y,
                          const float *lohi);

/* y[i * ys + j] = mb_clampf(y[i * ys + j], lohi[0], lohi[1]) for i < rows, j < cols */
void mb_clamp_rows_f32_opt(float *y, int32_t ys, int32_t rows, int32_t cols, const float *lohi);

/* lohi for the tile kernels: NULL when [lo, hi] clamps nothing */
static inline const float *mb_lohi_f32_opt(const float *lohi)
{
    return lohi[0] == -INFINITY && lohi[1] == INFINITY ? NULL : lohi;
}

/* y[i * si + j * sj] = tile[4 i + j] for i < ni, j < nj: the valid part of a tile computed into a
 * scratch tile (ys = 4). */
static inline void mb_tile_copy_f32_opt(const float *tile, float *y, int32_t si, int32_t sj, int32_t ni, int32_t nj)
{
    for (int32_t i = 0; i < ni; ++i) {
        for (int32_t j = 0; j < nj; ++j) {
            y[(int64_t)i * si + (int64_t)j * sj] = tile[4 * i + j];
        }
    }
}

/* panel[4 * p + i] = rows[i * row_stride + p] for i < nrows, 0 for nrows <= i < 4 (p < k). */
void mb_pack4_f32_opt(float *panel, const float *rows, int32_t row_stride, int32_t nrows, int32_t k);

/* The inline-assembly inner loops need the FPv4/FPv5 register file (s0..s31), VFMA and Thumb-2. */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_FEATURE_FMA) && defined(__thumb2__) \
    && !defined(MB_PORTABLE_FP)
#define MB_FP_ASM 1
#else
#define MB_FP_ASM 0
#endif

/* A fused clamp: the kernels clamp a tile with max / min (VMAXNM / VMINNM on FPv5: Cortex-M7, M33,
 * M55; fmaxf / fminf in the portable C) once the tile's sum shows that it holds no NaN; max / min
 * would turn a NaN into a bound, so a tile with a NaN is clamped with mb_clampf's comparisons, which
 * keep it (as torch.clamp does). Both give the same values (a zero may differ in sign). FPv4
 * (Cortex-M4) has no VMAXNM: there every clamp compares. */
#if !defined(__arm__) || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__) \
    || (defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && (__ARM_FP & 8))
#define MB_FAST_MINMAX 1
#else
#define MB_FAST_MINMAX 0
#endif

#endif
