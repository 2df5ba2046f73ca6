#ifndef MB_PRELU_H
#define MB_PRELU_H
#include <stdint.h>

/* PReLU on a contiguous tensor seen as [outer][channels][inner]:
 * y = x > 0 ? x : w[c] * x, with one slope per channel (channels = 1 for a single slope).
 * y may be the same buffer as x. */
void mb_prelu_f32(const float *x, const float *w, float *y, int32_t outer, int32_t channels, int32_t inner);

#endif
