#include "mb_prelu.h"
#include "mb_common.h"

void mb_prelu_f32(const float *x, const float *w, float *y, int32_t outer, int32_t channels, int32_t inner)
{
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t c = 0; c < channels; ++c) {
            const int64_t base = ((int64_t)o * channels + c) * inner;
            const float slope = w[c];
            for (int32_t i = 0; i < inner; ++i) {
                const float v = x[base + i];
                y[base + i] = v > 0.0f ? v : slope * v;
            }
        }
    }
}
