#ifndef MB_BATCH_NORM_H
#define MB_BATCH_NORM_H
#include <stdint.h>

/* y[n][c][i] = x[n][c][i] * scale[c] + shift[c] for `inner` elements per channel. */
void mb_batch_norm_f32(const float *x, const float *scale, const float *shift, float *y,
                       int32_t batch, int32_t channels, int32_t inner);

#endif
