#ifndef MB_Q_LUT_H
#define MB_Q_LUT_H
#include <stdint.h>

/* Int8 elementwise function by table look-up: y[i] = table[x[i] + 128] for i < n.
 * x, y: int8 [n] (may be the same buffer); table: int8 [256], entry k for input k - 128. */
void mb_q_lut_s8(const int8_t *x, int8_t *y, int32_t n, const int8_t *table);

#endif
