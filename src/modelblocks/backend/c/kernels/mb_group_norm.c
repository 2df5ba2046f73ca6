#include "mb_group_norm.h"
#include "mb_common.h"

void mb_group_norm_f32(const float *x, const float *gamma, const float *beta, float *y,
                       int32_t n, int32_t channels, int32_t inner, int32_t groups, float eps)
{
    const int32_t cpg = channels / groups;
    const float count = (float)cpg * (float)inner;
    for (int32_t b = 0; b < n; ++b) {
        for (int32_t g = 0; g < groups; ++g) {
            const int64_t base = ((int64_t)b * channels + (int64_t)g * cpg) * inner;
            /* Sum x - x[first] (the shifted-data method): a large common offset then costs no
             * precision. Per-channel partial sums keep the rounding error of long groups small. */
            const float shift0 = x[base];
            float sum = 0.0f;
            for (int32_t c = 0; c < cpg; ++c) {
                float part = 0.0f;
                for (int32_t i = 0; i < inner; ++i) {
                    part += x[base + (int64_t)c * inner + i] - shift0;
                }
                sum += part;
            }
            /* the mean stays split as shift0 + dmean: adding them would round at the offset's scale */
            const float dmean = sum / count;
            /* two passes: the variance of (x - mean) does not cancel catastrophically */
            float sq = 0.0f;
            for (int32_t c = 0; c < cpg; ++c) {
                float part = 0.0f;
                for (int32_t i = 0; i < inner; ++i) {
                    const float d = (x[base + (int64_t)c * inner + i] - shift0) - dmean;
                    part += d * d;
                }
                sq += part;
            }
            const float rstd = 1.0f / sqrtf(sq / count + eps);
            for (int32_t c = 0; c < cpg; ++c) {
                const int32_t ch = g * cpg + c;
                const float scale = rstd * (gamma ? gamma[ch] : 1.0f);
                const float shift = beta ? beta[ch] : 0.0f;
                for (int32_t i = 0; i < inner; ++i) {
                    /* (x - mean) first: x * scale - mean * scale would cancel for large means */
                    const int64_t k = base + (int64_t)c * inner + i;
                    y[k] = ((x[k] - shift0) - dmean) * scale + shift;
                }
            }
        }
    }
}
