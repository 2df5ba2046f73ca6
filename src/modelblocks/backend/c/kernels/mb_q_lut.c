#include "mb_q_lut.h"

void mb_q_lut_s8(const int8_t *x, int8_t *y, int32_t n, const int8_t *table)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = table[(int32_t)x[i] + 128];
    }
}
