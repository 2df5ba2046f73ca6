/* Optimised int8 elementwise kernels (ops/q_elementwise.py variants "table" and "flat" of q_add): two
 * same-shape operands, the arguments of mb_q_add_s8 (mb_q_elementwise.h) with every shift <= 0. */
#ifndef MB_Q_ELEMENTWISE_OPT_H
#define MB_Q_ELEMENTWISE_OPT_H

#include <stdint.h>

/* Three SMMULR requantizations per element. */
void mb_q_add_s8_flat(const int8_t *a, const int8_t *b, int8_t *y, int32_t count, int32_t a_zp, int32_t a_mult,
                      int32_t a_shift, int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                      int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max);

/* Each operand's rescaling looked up in a table of 256 int32 built in `tables` (scratch: 512 int32, or 256
 * when an operand's multiplier is +-2^30 with shift 0 and left_shift >= 1: it is multiplied instead), one
 * requantization per element. Also needs -23 <= out_shift <= -1 and out_mult >= 0. */
void mb_q_add_s8_table(const int8_t *a, const int8_t *b, int8_t *y, int32_t count, int32_t a_zp, int32_t a_mult,
                       int32_t a_shift, int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                       int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max,
                       int32_t *tables);

#endif /* MB_Q_ELEMENTWISE_OPT_H */
