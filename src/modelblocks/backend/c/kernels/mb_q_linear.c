#include "mb_q_linear.h"
#include "mb_quant.h"

void mb_q_linear_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                    const int8_t *shift, int8_t *y, int32_t rows, int32_t in_features, int32_t out_features,
                    int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + (int64_t)r * in_features;
        int8_t *yr = y + (int64_t)r * out_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const int8_t *wo = w + (int64_t)o * in_features;
            int32_t acc = bias[o];
            for (int32_t i = 0; i < in_features; ++i) {
                acc += ((int32_t)xr[i] - in_zp) * (int32_t)wo[i];
            }
            yr[o] = mb_q_output(acc, mult[o], shift[o], out_zp, act_min, act_max);
        }
    }
}
