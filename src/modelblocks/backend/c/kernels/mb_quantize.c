#include "mb_quantize.h"

#include <math.h>

void mb_quantize_f32_s8(const float *x, int8_t *y, int32_t n, float scale, int32_t zero_point)
{
    for (int32_t i = 0; i < n; ++i) {
        /* the division, not a multiplication by 1/scale, so NumPy's float32 division gives the same bits */
        float v = roundf(x[i] / scale) + (float)zero_point;
        v = v > -128.0f ? v : -128.0f;
        v = v < 127.0f ? v : 127.0f;
        y[i] = (int8_t)v;
    }
}

void mb_dequantize_s8_f32(const int8_t *x, float *y, int32_t n, float scale, int32_t zero_point)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = (float)((int32_t)x[i] - zero_point) * scale;
    }
}
