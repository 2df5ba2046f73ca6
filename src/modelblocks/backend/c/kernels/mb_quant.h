/* Int8 scheme helpers shared by the int8 kernels: TFLite's int8 specification as CMSIS-NN computes it.
 * real = scale * (q - zero_point); a 32-bit accumulator is rescaled by a Q31 multiplier and a
 * power-of-two shift, M = multiplier * 2^(shift - 31) (quant/arith.py holds the same code in NumPy). */
#ifndef MB_QUANT_H
#define MB_QUANT_H

#include <stdint.h>

/* arm_nn_doubling_high_mult_no_sat: (a * b * 2 + 2^31) / 2^32, rounding half up. */
static inline int32_t mb_doubling_high_mult(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* arm_nn_divide_by_power_of_two: x / 2^e rounded half away from zero, 0 <= e <= 31. */
static inline int32_t mb_divide_by_pot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((((uint32_t)1) << e) - 1u);
    const int32_t remainder = x & mask;
    int32_t result = x >> e;
    int32_t threshold = mask >> 1;
    if (result < 0) {
        threshold++;
    }
    if (remainder > threshold) {
        result++;
    }
    return result;
}

/* arm_nn_requantize (double rounding). A positive shift saturates the pre-shifted accumulator instead
 * of overflowing it as CMSIS-NN would. */
static inline int32_t mb_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        int64_t v = (int64_t)acc * ((int64_t)1 << shift);
        acc = v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
        return mb_doubling_high_mult(acc, multiplier);
    }
    return mb_divide_by_pot(mb_doubling_high_mult(acc, multiplier), -shift);
}

static inline int8_t mb_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return (int8_t)(v > hi ? hi : v);
}

/* The int8 output of an accumulator: requantized, plus out_zp, clamped to [lo, hi]. The requantized
 * value is first bounded to [-256, 255] so that adding the zero point cannot overflow (the clamp to
 * int8 gives the same result). */
static inline int8_t mb_q_output(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t lo, int32_t hi)
{
    int32_t v = mb_requantize(acc, mult, shift);
    v = v > 255 ? 255 : (v < -256 ? -256 : v);
    return mb_clamp_s8(v + out_zp, lo, hi);
}

#endif /* MB_QUANT_H */
