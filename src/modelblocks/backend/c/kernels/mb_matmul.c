#include "mb_matmul.h"
#include "mb_common.h"


void mb_matmul_f32(const float *a, const float *b, const float *c, float *y,
                   int32_t batch_rank, const int32_t *batch_dims,
                   const int32_t *a_bs, const int32_t *b_bs, const int32_t *c_bs,
                   int32_t m, int32_t k, int32_t n, int32_t c_rs, int32_t c_cs,
                   float alpha, float beta, float lo, float hi)
{
    int32_t idx[MB_MAX_RANK] = {0};
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    const int64_t batches = mb_numel(batch_dims, batch_rank);
    for (int64_t bt = 0; bt < batches; ++bt) {
        const int64_t oa = mb_offset(idx, a_bs, batch_rank), ob = mb_offset(idx, b_bs, batch_rank);
        const int64_t oc = c ? mb_offset(idx, c_bs, batch_rank) : 0;
        const float *pa = a + oa;
        const float *pb = b + ob;
        float *py = y + bt * m * n;
        for (int32_t i = 0; i < m; ++i) {
            const float *ar = pa + (int64_t)i * k;
            for (int32_t j = 0; j < n; ++j) {
                float acc = 0.0f;
                for (int32_t p = 0; p < k; ++p) {
                    acc += ar[p] * pb[(int64_t)p * n + j];
                }
                /* Skip the multiplies when they are the identity so that plain a @ b rounds
                 * exactly like a single accumulation. */
                float v = alpha == 1.0f ? acc : alpha * acc;
                if (c) {
                    const float cv = c[oc + (int64_t)i * c_rs + (int64_t)j * c_cs];
                    v += beta == 1.0f ? cv : beta * cv;
                }
                py[(int64_t)i * n + j] = mb_clampf(v, lo, hi);
            }
        }
        mb_next_index(idx, batch_dims, batch_rank);
    }
}
