#ifndef MB_SPARSE_LINEAR_H
#define MB_SPARSE_LINEAR_H
#include <stdint.h>

/* Fully connected layers whose weight matrix W [out_features][in_features] is stored in CSR
 * (compressed sparse rows, one row per output feature): only the nonzero weights are kept.
 *
 *   values    [nnz]              the nonzero weights, row by row, columns increasing within a row
 *   col_index [nnz]              the column (input feature) of each value: uint8_t when
 *                                in_features <= 256 (suffix c8), else uint16_t (c16)
 *   row_ptr   [out_features + 1] row o holds values[row_ptr[o] .. row_ptr[o + 1] - 1];
 *                                row_ptr[0] = 0, row_ptr[out_features] = nnz; uint16_t when
 *                                nnz < 65536 (suffix p16), else int32_t (p32)
 *   x [rows][in_features], y [rows][out_features], row-major (leading dims flattened into rows)
 *
 * An empty row (all its weights zero) gives the bias alone. The nonzeros are summed in the dense
 * kernels' order, so the results are those of mb_linear_f32 / mb_q_linear_s8 on the dense matrix
 * (float: up to the sign of a zero sum and inf * 0 terms, which the dense kernel computes and this
 * one skips; int8: bit for bit).
 *
 * float32: y[r][o] = clamp(b[o] + sum_k x[r][col_index[k]] * values[k], lo, hi); b may be NULL.
 * int8 (TFLite scheme, as mb_q_linear_s8):
 *   acc = bias[o] + sum_k (x[r][col_index[k]] - in_zp) * values[k]                 (int32)
 *   y[r][o] = clamp(mb_requantize(acc, mult[o], shift[o]) + out_zp, act_min, act_max)
 *   bias int32 [out_features] (never NULL), mult int32 [out_features], shift int8 [out_features];
 *   the caller guarantees |bias| + in_features * 255 * 128 < 2^31. */

#define MB_SPARSE_LINEAR_DECL(suffix, col_t, ptr_t)                                                     \
    void mb_sparse_linear_f32_##suffix(const float *restrict x, const float *restrict values,           \
                                       const col_t *restrict col_index, const ptr_t *restrict row_ptr,  \
                                       const float *restrict b, float *restrict y, int32_t rows,        \
                                       int32_t in_features, int32_t out_features, float lo, float hi);  \
    void mb_sparse_q_linear_s8_##suffix(const int8_t *restrict x, const int8_t *restrict values,        \
                                        const col_t *restrict col_index, const ptr_t *restrict row_ptr, \
                                        const int32_t *restrict bias, const int32_t *restrict mult,     \
                                        const int8_t *restrict shift, int8_t *restrict y, int32_t rows, \
                                        int32_t in_features, int32_t out_features, int32_t in_zp,       \
                                        int32_t out_zp, int32_t act_min, int32_t act_max);

MB_SPARSE_LINEAR_DECL(c8_p16, uint8_t, uint16_t)
MB_SPARSE_LINEAR_DECL(c8_p32, uint8_t, int32_t)
MB_SPARSE_LINEAR_DECL(c16_p16, uint16_t, uint16_t)
MB_SPARSE_LINEAR_DECL(c16_p32, uint16_t, int32_t)

#undef MB_SPARSE_LINEAR_DECL

#endif
