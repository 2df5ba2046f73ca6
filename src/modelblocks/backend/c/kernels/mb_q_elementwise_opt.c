/* Optimised int8 add of two same-shape tensors (a residual connection): mb_q_add_s8's arithmetic, bit
 * for bit, with the three requantizations on mb_q_gemm.h's SMMULR path (its preconditions hold: every
 * shift <= 0, checked by the variant, and |(x - zp) * 2^20| < 2^28) and no broadcast walk. */
#include "mb_q_elementwise_opt.h"
#include "mb_q_gemm.h"

void mb_q_add_s8_flat(const int8_t *a, const int8_t *b, int8_t *y, int32_t count, int32_t a_zp, int32_t a_mult,
                      int32_t a_shift, int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                      int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max)
{
    for (int32_t i = 0; i < count; ++i) {
        const int32_t ra = mb_q_requantize_fast((a[i] - a_zp) * (1 << left_shift), a_mult, a_shift);
        const int32_t rb = mb_q_requantize_fast((b[i] - b_zp) * (1 << left_shift), b_mult, b_shift);
        y[i] = mb_q_output_fast(ra + rb, out_mult, out_shift, out_zp, act_min, act_max);
    }
}
