#include "mb_matmul.h"
#include "mb_common.h"


void mb_matmul_f32(const float *a, const float *b, const float *c, float *y,
                   int32_t batch_rank, const int32_t *batch_dims,
                   const int32_t *a_bs, const int32_t *b_bs, const int32_t *c_bs,
                   int32_t m, int32_t k, int32_t n, int32_t c_rs, int32_t c_cs,
                   float alpha, float beta, float lo, float hi)
{
    int32_t idx[MB_MAX_RANK] = {0};
    int32_t batches = 1;
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    for (int32_t d = 0; d < batch_rank; ++d) {
        batches *= batch_dims[d];
    }
    for (int32_t bt = 0; bt < batches; ++bt) {
        int64_t oa = 0, ob = 0, oc = 0;
        for (int32_t d = 0; d < batch_rank; ++d) {
            oa += (int64_t)idx[d] * a_bs[d];
            ob += (int64_t)idx[d] * b_bs[d];
            if (c) {
                oc += (int64_t)idx[d] * c_bs[d];
            }
        }
        const float *pa = a + oa;
        const float *pb = b + ob;
        float *py = y + (int64_t)bt * m * n;
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
        /* advance the batch odometer, last dimension fastest */
        for (int32_t d = batch_rank - 1; d >= 0; --d) {
            if (++idx[d] < batch_dims[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
}
