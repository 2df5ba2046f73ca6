#ifndef MB_LINEAR_H
#define MB_LINEAR_H
#include <stdint.h>

/* y[r][o] = clamp(b[o] + sum_i x[r][i] * w[o][i], lo, hi); b may be NULL. */
void mb_linear_f32(const float *x, const float *w, const float *b, float *y,
                   int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi);

#endif
