#ifndef MB_MATMUL_H
#define MB_MATMUL_H
#include <stdint.h>

/* Batched matrix product with broadcast batch dimensions and an optional added term:
 *   y[bt][i][j] = clamp(alpha * sum_p a[bt][i][p] * b[bt][p][j] + beta * c[bt][i][j], lo, hi)
 * a is a stack of contiguous [m][k] matrices, b of [k][n], y of [m][n] (y contiguous, batch
 * after batch). The batch index space has `batch_rank` >= 1 dimensions `batch_dims`; a_bs, b_bs
 * and c_bs give each operand's element stride per batch dimension (0 where it is broadcast).
 * c may be NULL (then beta and c_bs are ignored); c_rs and c_cs are its element strides along
 * the rows (i) and columns (j) of the output, 0 where broadcast. y must not overlap a, b or c. */
void mb_matmul_f32(const float *a, const float *b, const float *c, float *y,
                   int32_t batch_rank, const int32_t *batch_dims,
                   const int32_t *a_bs, const int32_t *b_bs, const int32_t *c_bs,
                   int32_t m, int32_t k, int32_t n, int32_t c_rs, int32_t c_cs,
                   float alpha, float beta, float lo, float hi);

#endif
