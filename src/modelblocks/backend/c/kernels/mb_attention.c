#include "mb_attention.h"
#include "mb_common.h"


void mb_attention_f32(const float *q, const float *k, const float *v, const float *fmask,
                      const uint8_t *bmask, float *y, float *scores,
                      int32_t batch_rank, const int32_t *batch_dims, const int32_t *q_bs,
                      const int32_t *k_bs, const int32_t *v_bs, const int32_t *m_bs,
                      int32_t m_rs, int32_t m_cs, int32_t L, int32_t S, int32_t E, int32_t Ev,
                      float scale, int32_t causal)
{
    int32_t idx[MB_MAX_RANK] = {0};
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    const int64_t batches = mb_numel(batch_dims, batch_rank);
    for (int64_t bt = 0; bt < batches; ++bt) {
        const int64_t oq = mb_offset(idx, q_bs, batch_rank), ok = mb_offset(idx, k_bs, batch_rank);
        const int64_t ov = mb_offset(idx, v_bs, batch_rank), om = mb_offset(idx, m_bs, batch_rank);
        for (int32_t i = 0; i < L; ++i) {
            const float *qi = q + oq + (int64_t)i * E;
            float *yi = y + ((int64_t)bt * L + i) * Ev;
            const int64_t mrow = om + (int64_t)i * m_rs;
            float mx = -INFINITY;
            for (int32_t j = 0; j < S; ++j) {
                float s = -INFINITY;
                const int attend = !(causal && j > i) && !(bmask && !bmask[mrow + (int64_t)j * m_cs]);
                if (attend) {
                    const float *kj = k + ok + (int64_t)j * E;
                    float acc = 0.0f;
                    for (int32_t e = 0; e < E; ++e) {
                        acc += qi[e] * kj[e];
                    }
                    s = acc * scale;
                    if (fmask) {
                        s += fmask[mrow + (int64_t)j * m_cs];
                    }
                }
                scores[j] = s;
                mx = (s > mx || s != s) ? s : mx;
            }
            for (int32_t e = 0; e < Ev; ++e) {
                yi[e] = 0.0f;
            }
            /* every key masked: leave the zeros (exp(-inf - -inf) would be NaN) */
            if (mx == -INFINITY) {
                continue;
            }
            float sum = 0.0f;
            for (int32_t j = 0; j < S; ++j) {
                scores[j] = expf(scores[j] - mx);
                sum += scores[j];
            }
            const float inv = 1.0f / sum;
            for (int32_t j = 0; j < S; ++j) {
                const float p = scores[j] * inv;
                const float *vj = v + ov + (int64_t)j * Ev;
                for (int32_t e = 0; e < Ev; ++e) {
                    yi[e] += p * vj[e];
                }
            }
        }
        mb_next_index(idx, batch_dims, batch_rank);
    }
}
