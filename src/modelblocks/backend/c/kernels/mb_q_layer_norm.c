#include "mb_q_layer_norm.h"

#include <math.h>

void mb_q_layer_norm_s8(const int8_t *x, const float *g, const float *b, int8_t *y, int32_t rows, int32_t cols,
                        int32_t in_zp, float eps_q)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + (int64_t)r * cols;
        int8_t *yr = y + (int64_t)r * cols;
        int32_t sum = 0, sumsq = 0;
        for (int32_t i = 0; i < cols; ++i) {
            const int32_t v = (int32_t)xr[i] - in_zp;
            sum += v;
            sumsq += v * v;
        }
        const float mean = (float)sum / (float)cols;
        float var = (float)sumsq / (float)cols - mean * mean;
        var = var > 0.0f ? var : 0.0f;
        const float inv = 1.0f / sqrtf(var + eps_q);
        for (int32_t i = 0; i < cols; ++i) {
            float v = ((float)((int32_t)xr[i] - in_zp) - mean) * inv * g[i] + b[i];
            v = roundf(v);
            v = v > -128.0f ? v : -128.0f;
            v = v < 127.0f ? v : 127.0f;
            yr[i] = (int8_t)v;
        }
    }
}
