#include "mb_batch_norm.h"

void mb_batch_norm_f32(const float *x, const float *scale, const float *shift, float *y,
                       int32_t batch, int32_t channels, int32_t inner)
{
    for (int32_t n = 0; n < batch; ++n) {
        for (int32_t c = 0; c < channels; ++c) {
            const float s = scale[c], t = shift[c];
            for (int32_t i = 0; i < inner; ++i) {
                *y++ = *x++ * s + t;
            }
        }
    }
}
