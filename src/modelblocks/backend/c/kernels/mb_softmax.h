#ifndef MB_SOFTMAX_H
#define MB_SOFTMAX_H
#include <stdint.h>

/* Softmax along one dimension of a contiguous tensor seen as [outer][n][inner]: for each
 * (o, j), the n values x[o][0..n-1][j] (stride `inner`) are normalised.
 * mb_softmax_f32:     y = exp(x - max) / sum(exp(x - max))
 * mb_log_softmax_f32: y = x - max - log(sum(exp(x - max)))
 * Subtracting the row maximum keeps exp() from overflowing. y may be the same buffer as x. */
void mb_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner);
void mb_log_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner);

#endif
