#ifndef MB_Q_MATMUL_H
#define MB_Q_MATMUL_H
#include <stdint.h>

/* int8 batched matrix product with broadcast batch dimensions, both operands per-tensor int8:
 *   acc = sum_p (a[bt][i][p] - a_zp) * (b[bt][p][j] - b_zp)                               (int32)
 *   y[bt][i][j] = clamp(mb_requantize(acc, mult, shift) + out_zp, act_min, act_max)
 * a is a stack of contiguous int8 [m][k] matrices, b of int8 [k][n], y of int8 [m][n] (y contiguous,
 * batch after batch). The batch index space has `batch_rank` >= 1 dimensions `batch_dims`; a_bs and
 * b_bs give each operand's element stride per batch dimension (0 where it is broadcast).
 * mult, shift: the scalar requantization of s_a * s_b / s_out. y must not overlap a or b.
 * The caller guarantees k * 255 * 255 < 2^31. */
void mb_q_matmul_s8(const int8_t *a, const int8_t *b, int8_t *y, int32_t batch_rank, const int32_t *batch_dims,
                    const int32_t *a_bs, const int32_t *b_bs, int32_t m, int32_t k, int32_t n,
                    int32_t a_zp, int32_t b_zp, int32_t mult, int32_t shift, int32_t out_zp,
                    int32_t act_min, int32_t act_max);

#endif
