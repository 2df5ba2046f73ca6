#ifndef MB_Q_SOFTMAX_H
#define MB_Q_SOFTMAX_H
#include <stdint.h>

/* Int8 softmax over the last dimension, in integers only. x, y: int8 [rows][n], 1 <= n <= 2048;
 * table: int32 [256], table[k] = round(exp(s_in * (k - 255)) * 2^20), so 0 <= table[k] <= 2^20.
 * Per row: e_i = table[x_i - max(x) + 255], sum = sum_i e_i (uint32: at most 2048 * 2^20 = 2^31),
 * y_i = clamp((e_i * 256 + sum / 2) / sum - 128, -128, 127): output scale 1/256, zero point -128. */
void mb_q_softmax_s8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, const int32_t *table);

#endif
