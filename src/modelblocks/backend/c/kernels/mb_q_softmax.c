#include "mb_q_softmax.h"

void mb_q_softmax_s8(const int8_t *x, int8_t *y, int32_t rows, int32_t n, const int32_t *table)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + (int64_t)r * n;
        int8_t *yr = y + (int64_t)r * n;
        int32_t max = xr[0];
        for (int32_t i = 1; i < n; ++i) {
            max = xr[i] > max ? xr[i] : max;
        }
        const int32_t base = 255 - max; /* e_i = table[x_i + base], index in [0, 255] */
        uint32_t sum = 0u;
        for (int32_t i = 0; i < n; ++i) {
            sum += (uint32_t)table[xr[i] + base];
        }
        const uint32_t half = sum / 2u;
        for (int32_t i = 0; i < n; ++i) {
            const uint32_t q = ((uint32_t)table[xr[i] + base] * 256u + half) / sum;
            yr[i] = (int8_t)(q > 255u ? 127 : (int32_t)q - 128);
        }
    }
}
