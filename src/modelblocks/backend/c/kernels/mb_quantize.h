#ifndef MB_QUANTIZE_H
#define MB_QUANTIZE_H
#include <stdint.h>

/* y[i] = clamp(roundf(x[i] / scale) + zero_point, -128, 127); NaN gives -128. n elements. */
void mb_quantize_f32_s8(const float *x, int8_t *y, int32_t n, float scale, int32_t zero_point);

/* y[i] = (float)(x[i] - zero_point) * scale. n elements. */
void mb_dequantize_s8_f32(const int8_t *x, float *y, int32_t n, float scale, int32_t zero_point);

#endif
