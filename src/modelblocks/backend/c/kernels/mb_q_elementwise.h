#ifndef MB_Q_ELEMENTWISE_H
#define MB_Q_ELEMENTWISE_H
#include <stdint.h>

/* Int8 elementwise arithmetic (TFLite int8 spec, CMSIS-NN arm_elementwise_add_s8 / _mul_s8).
 * Every tensor is int8, per-tensor asymmetric: real = scale * (q - zp). a, b and y are contiguous;
 * a and b are read through a broadcast walk: `dims` [rank] is the (merged) output shape,
 * `as` / `bs` [rank] the operands' element strides per dimension (0 where broadcast), 1 <= rank <= 8.
 * The kernels read element i of both operands before writing element i of y (in-place safe).
 * Multipliers/shifts are mb_requantize's Q31 pairs (mb_quant.h); the result is
 * clamp(requantized + out_zp, act_min, act_max), with -128 <= act_min <= act_max <= 127. */

/* y = a + b: each operand is centred, scaled by 2^left_shift (0 <= left_shift <= 20), and rescaled
 * by its own multiplier (|real| <= 1/2; a negative b multiplier gives a - b); the int32 sum is rescaled
 * by the output multiplier. */
void mb_q_add_s8(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *dims, const int32_t *as,
                 const int32_t *bs, int32_t rank, int32_t a_zp, int32_t a_mult, int32_t a_shift,
                 int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                 int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max);

/* y = a * b: acc = (a - a_zp) * (b - b_zp), rescaled by (mult, shift) = s_a * s_b / s_out. */
void mb_q_mul_s8(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *dims, const int32_t *as,
                 const int32_t *bs, int32_t rank, int32_t a_zp, int32_t b_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, int32_t act_min, int32_t act_max);

/* Change of parameters: x [n] -> y [n], acc = (x - in_zp) * 2^left_shift (0 <= left_shift <= 23),
 * y = clamp(requantize(acc, mult, shift) + out_zp, act_min, act_max), real = s_in / s_out / 2^left_shift. */
void mb_q_requantize_s8(const int8_t *x, int8_t *y, int32_t n, int32_t in_zp, int32_t left_shift,
                        int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max);

#endif
