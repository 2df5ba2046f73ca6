#include "mb_q_matmul.h"
#include "mb_common.h"
#include "mb_quant.h"

void mb_q_matmul_s8(const int8_t *a, const int8_t *b, int8_t *y, int32_t batch_rank, const int32_t *batch_dims,
                    const int32_t *a_bs, const int32_t *b_bs, int32_t m, int32_t k, int32_t n,
                    int32_t a_zp, int32_t b_zp, int32_t mult, int32_t shift, int32_t out_zp,
                    int32_t act_min, int32_t act_max)
{
    int32_t idx[MB_MAX_RANK] = {0};
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    const int64_t batches = mb_numel(batch_dims, batch_rank);
    for (int64_t bt = 0; bt < batches; ++bt) {
        const int8_t *pa = a + mb_offset(idx, a_bs, batch_rank);
        const int8_t *pb = b + mb_offset(idx, b_bs, batch_rank);
        int8_t *py = y + bt * m * n;
        for (int32_t i = 0; i < m; ++i) {
            const int8_t *ar = pa + (int64_t)i * k;
            for (int32_t j = 0; j < n; ++j) {
                int32_t acc = 0;
                for (int32_t p = 0; p < k; ++p) {
                    acc += ((int32_t)ar[p] - a_zp) * ((int32_t)pb[(int64_t)p * n + j] - b_zp);
                }
                py[(int64_t)i * n + j] = mb_q_output(acc, mult, shift, out_zp, act_min, act_max);
            }
        }
        mb_next_index(idx, batch_dims, batch_rank);
    }
}
