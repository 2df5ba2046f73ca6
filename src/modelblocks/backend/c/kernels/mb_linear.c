#include "mb_linear.h"
#include "mb_common.h"

void mb_linear_f32(const float *x, const float *w, const float *b, float *y,
                   int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi)
{
    for (int32_t r = 0; r < rows; ++r) {
        const float *xr = x + (int64_t)r * in_features;
        float *yr = y + (int64_t)r * out_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const float *wo = w + (int64_t)o * in_features;
            float acc = b ? b[o] : 0.0f;
            for (int32_t i = 0; i < in_features; ++i) {
                acc += xr[i] * wo[i];
            }
            yr[o] = mb_clampf(acc, lo, hi);
        }
    }
}
