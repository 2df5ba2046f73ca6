#ifndef MB_LAYER_NORM_H
#define MB_LAYER_NORM_H
#include <stdint.h>

/* Layer normalization over the last dimensions, flattened to `cols` contiguous values per row:
 * y[r][i] = (x[r][i] - mean_r) / sqrt(var_r + eps) * w[i] + b[i], for r in [0, rows).
 * var_r is the population variance (divide by cols). w and b (each `cols` floats) may be NULL:
 * no scale, no shift. y may be the same buffer as x. */
void mb_layer_norm_f32(const float *x, const float *w, const float *b, float *y,
                       int32_t rows, int32_t cols, float eps);

#endif
