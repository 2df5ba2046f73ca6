/* Optimised float32 -> int8 quantization (ops/quantize.py variant "fpv5" of quantize). */
#ifndef MB_QUANTIZE_OPT_H
#define MB_QUANTIZE_OPT_H

#include <stdint.h>

/* mb_quantize_f32_s8's result, bit for bit: y[i] = clamp(roundf(x[i] / scale) + zero_point, -128, 127), NaN
 * gives -128. */
void mb_quantize_f32_s8_fpv5(const float *x, int8_t *y, int32_t n, float scale, int32_t zero_point);

#endif /* MB_QUANTIZE_OPT_H */
