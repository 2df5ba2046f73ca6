#ifndef MB_ATTENTION_H
#define MB_ATTENTION_H
#include <stdint.h>

/* Scaled dot-product attention, one query row at a time:
 *   s[j] = scale * sum_e q[i][e] * k[j][e] (+ fmask[i][j]) ; masked where bmask[i][j] == 0
 *          or (causal and j > i) ; y[i] = sum_j softmax(s)[j] * v[j]
 * q is a stack of contiguous [L][E] matrices, k of [S][E], v of [S][Ev], y of [L][Ev]
 * (y contiguous, batch after batch). The batch index space has `batch_rank` >= 1 dimensions
 * `batch_dims`; q_bs, k_bs, v_bs, m_bs are element strides per batch dimension (0 where
 * broadcast). At most one of fmask (float, added to the scores) and bmask (uint8, nonzero =
 * attend) is non-NULL; m_rs and m_cs are the mask's strides along L and S (0 where broadcast).
 * A query row with every key masked gets zeros, as PyTorch's CPU kernels give.
 * `scores` is scratch space for S floats. y must not overlap the inputs. */
void mb_attention_f32(const float *q, const float *k, const float *v, const float *fmask,
                      const uint8_t *bmask, float *y, float *scores,
                      int32_t batch_rank, const int32_t *batch_dims, const int32_t *q_bs,
                      const int32_t *k_bs, const int32_t *v_bs, const int32_t *m_bs,
                      int32_t m_rs, int32_t m_cs, int32_t L, int32_t S, int32_t E, int32_t Ev,
                      float scale, int32_t causal);

#endif
