/* Int8 GEMM cores and input packing shared by the optimised int8 kernels (mb_q_gemm.c). */
#ifndef MB_Q_GEMM_H
#define MB_Q_GEMM_H

#include <stdint.h>

#include "mb_arm.h"
#include "mb_quant.h"

/* Largest |accumulator| the optimised int8 kernels take, so that 2 * acc fits 32 bits; they also take
 * only shifts <= 0 (multipliers below 1, the usual case). The variants' applies() check both
 * (ops/q_linear.py `fast_requant_ok`); other layers run the reference kernels. */
#define MB_Q_FAST_ACC_LIMIT (1 << 30)

/* One output channel's rescale: its multiplier, e = -shift, the rounding addend 2^(e-1) (0 when e = 0)
 * and the sign mask that turns the rounding of negatives on (e > 0). The GEMM stream stores mult and e;
 * half and neg take four instructions per channel to derive, less than the flash to store them. */
typedef struct {
    int32_t mult, half, neg, e;
} mb_q_rescale;

static inline mb_q_rescale mb_q_rescale_of(int32_t mult, int32_t shift)
{
    const int32_t e = -shift;
    mb_q_rescale r = {mult, (int32_t)((1u << e) >> 1), -(int32_t)(e > 0), e};
    return r;
}

/* mb_requantize (mb_quant.h) in fewer instructions and no branch, with the same result for |acc| < 2^30
 * and shift <= 0 (tested on every edge and at random against it): the doubling high multiply
 * (acc * mult + 2^30) >> 31 is one SMMULR of 2 * acc; TFLite's rounding division by 2^e (half away
 * from zero) is floor((v + 2^(e-1) - (v < 0)) / 2^e) for e > 0. */
static inline int32_t mb_q_rescale_apply(int32_t acc, mb_q_rescale r)
{
    const int32_t v = mb_smmulr(acc * 2, r.mult);
    return (v + r.half + ((v >> 31) & r.neg)) >> r.e;
}

/* The same from mult and shift (the compiler hoists the per-channel terms out of the kernels' loops) */
static inline int32_t mb_q_requantize_fast(int32_t acc, int32_t mult, int32_t shift)
{
    return mb_q_rescale_apply(acc, mb_q_rescale_of(mult, shift));
}

/* mb_q_output (mb_quant.h) on the fast path; SSAT bounds the rescaled value to [-256, 255] first. */
static inline int8_t mb_q_output_fast(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t lo,
                                      int32_t hi)
{
    int32_t v = mb_ssat9(mb_q_requantize_fast(acc, mult, shift)) + out_zp;
    v = v < lo ? lo : v;
    return (int8_t)(v > hi ? hi : v);
}

/* The int8 output of a rescaled value: + zp, saturated to int8, then clamped to [lo, hi] only when
 * `clamp` (a layer whose bounds are the full int8 range skips the compares; `clamp` is a constant
 * where the kernels inline this, so either form compiles without a test per output). No overflow:
 * |v| < 2^30 from mb_q_rescale_apply. */
static inline int8_t mb_q_store_value(int32_t v, int32_t zp, int32_t lo, int32_t hi, int clamp)
{
    int32_t q = mb_ssat8(v + zp);
    if (clamp) {
        q = q < lo ? lo : q;
        q = q > hi ? hi : q;
    }
    return (int8_t)q;
}

/* y[o * ch_stride + p * col_stride] for channels o < cout and the columns p < ncols of `cols`, with
 * the layer's weights, biases and rescales in one `stream` (ops/q_linear.py `pack_gemm_stream`).
 * `cols` holds two interleaved columns (slots 1 and 2) even when ncols == 1: the second is then
 * computed and not stored, so it must only hold initialised int16 values of the same range (the kernels
 * zero their column buffer once per call). */
void mb_q_gemm_s8(const int32_t *stream, const int16_t *cols, int32_t groups, int32_t ncols, int32_t cout, int8_t *y,
                  int32_t ch_stride, int32_t col_stride, int32_t out_zp, int32_t act_min, int32_t act_max);

void mb_q_matvec_s8(const int32_t *w, const int16_t *col, int32_t groups, int32_t cout, const int32_t *bias,
                    const int32_t *mult, const int8_t *shift, int8_t *y, int32_t out_zp, int32_t act_min,
                    int32_t act_max);

void mb_q_pack_column(const int8_t *x, int16_t *col, int32_t count, int32_t padded, int32_t slot, int32_t in_zp);

#endif /* MB_Q_GEMM_H */
