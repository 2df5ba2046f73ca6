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
    int32_t batches = 1;
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    for (int32_t d = 0; d < batch_rank; ++d) {
        batches *= batch_dims[d];
    }
    for (int32_t bt = 0; bt < batches; ++bt) {
        int64_t oq = 0, ok = 0, ov = 0, om = 0;
        for (int32_t d = 0; d < batch_rank; ++d) {
            oq += (int64_t)idx[d] * q_bs[d];
            ok += (int64_t)idx[d] * k_bs[d];
            ov += (int64_t)idx[d] * v_bs[d];
            om += (int64_t)idx[d] * m_bs[d];
        }
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
        for (int32_t d = batch_rank - 1; d >= 0; --d) {
            if (++idx[d] < batch_dims[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
}
