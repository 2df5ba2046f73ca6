#ifndef MB_Q_LAYER_NORM_H
#define MB_Q_LAYER_NORM_H
#include <stdint.h>

/* int8 LayerNorm over rows of `cols` elements: x and y are [rows, cols] int8; g and b are [cols]
 * float32 holding gamma / s_out and beta / s_out + out_zp; eps_q = eps / s_in^2. Integer sums, then
 * float32 steps in a fixed order (see ops/q_layer_norm.py): compile with -ffp-contract=off so the
 * result is bit-exact with the reference. cols * 255^2 must fit int32. */
void mb_q_layer_norm_s8(const int8_t *x, const float *g, const float *b, int8_t *y, int32_t rows, int32_t cols,
                        int32_t in_zp, float eps_q);

#endif
