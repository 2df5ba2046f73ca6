/* Optimised int8 elementwise kernels (ops/q_elementwise.py variant "flat" of q_add). */
#ifndef MB_Q_ELEMENTWISE_OPT_H
#define MB_Q_ELEMENTWISE_OPT_H

#include <stdint.h>

void mb_q_add_s8_flat(const int8_t *a, const int8_t *b, int8_t *y, int32_t count, int32_t a_zp, int32_t a_mult,
                      int32_t a_shift, int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                      int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max);

#endif /* MB_Q_ELEMENTWISE_OPT_H */
