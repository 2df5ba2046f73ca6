/* Optimised int8 adds of two same-shape tensors (a residual connection): mb_q_add_s8's arithmetic, bit
 * for bit, without the broadcast walk.
 *
 * "flat" runs the three requantizations per element on mb_q_gemm.h's SMMULR path (its preconditions
 * hold: every shift <= 0, checked by the variant, and |(x - zp) * 2^20| < 2^28).
 *
 * "table" notes that each operand's rescaled value is a function of its int8 value alone: a table of 256
 * int32 per operand (in the caller's scratch) holds it, doubled, so an element costs two byte loads, two
 * table loads, one add and one requantization with its rounding constants folded in
 * (mb_q_add_table_output). The operand with the larger scale, rescaled by exactly 1/2, needs no table: a
 * multiply-add replaces its look-up. On the M7 an element then takes 9.6 instructions and the table
 * about 2,000, as many as 40 elements of "flat": ops/q_elementwise.py's TABLE_MIN_ELEMENTS. */
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

/* table[(uint8_t)x] = 2 * mb_q_requantize_fast((x - zp) * 2^left_shift, mult, shift) + offset for x in [lo, hi], a run
 * over which (uint8_t)x does not wrap and x - zp keeps its sign. The product's sign is then known for the
 * whole run, so the round-half-away correction joins the rounding half in SMMLAR's addend (where the
 * product is 0 instead, the correction leaves the quotient at 0, as for the output). */
static void mb_q_add_table_run(int32_t *table, int32_t lo, int32_t hi, int32_t zp, int32_t mult, int32_t shift,
                               int32_t left_shift, int32_t offset)
{
    const int32_t e = -shift;
    const int32_t negative = (lo < zp) != (mult < 0);
    const int32_t addend = (int32_t)((1u << e) >> 1) - (int32_t)(negative && e > 0);
    const int32_t step = 2 * (1 << left_shift);
    int32_t acc2 = (lo - zp) * step;
    int32_t *t = table + (uint8_t)lo, *const end = table + (uint8_t)lo + (hi - lo + 1);
    for (; t + 2 <= end; t += 2, acc2 += 2 * step) { /* two entries a step: the loop costs less than 8 */
        t[0] = 2 * (mb_smmlar(acc2, mult, addend) >> e) + offset;
        t[1] = 2 * (mb_smmlar(acc2 + step, mult, addend) >> e) + offset;
    }
    if (t < end) {
        *t = 2 * (mb_smmlar(acc2, mult, addend) >> e) + offset;
    }
}

/* The table of one operand, indexed by its byte as LDRB loads it (int8 x at (uint8_t)x) and doubled for the
 * SMMULR of the sum, in the three runs cut by x = 0 (the index wraps) and x = zp (the sign changes). */
static void mb_q_add_table(int32_t *table, int32_t zp, int32_t mult, int32_t shift, int32_t left_shift,
                           int32_t offset)
{
    const int32_t low = zp < 0 ? zp : 0, high = zp < 0 ? 0 : zp;
    mb_q_add_table_run(table, -128, low - 1, zp, mult, shift, left_shift, offset);
    mb_q_add_table_run(table, low, high - 1, zp, mult, shift, left_shift, offset);
    mb_q_add_table_run(table, high, 127, zp, mult, shift, left_shift, offset);
}

/* The int8 result of a doubled sum s2 = 2 (ra + rb): mb_q_output_fast(ra + rb, mult, -e, zp, -128, 127) in
 * four instructions (SMMLAR, ADD with ASR #31, ASR, SSAT). `bias` = 2^(e-1) + zp * 2^e carries the rounding
 * half and the zero point into the SMMLAR (adding zp * 2^e before the shift adds zp after it, exactly). The
 * round-half-away correction subtracts 1 from a negative product; with mult >= 0 the product has the sum's
 * sign, except where it is 0 and the correction, for e >= 1, does not change the quotient. Needs
 * 1 <= e <= 23 and mult >= 0 (then |bias| + |product| < 2^31), and |s2| < 2^29. */
static inline int32_t mb_q_add_table_output(int32_t s2, int32_t mult, int32_t bias, int32_t e)
{
    const int32_t v = mb_smmlar(s2, mult, bias);
    return mb_ssat8((v + (s2 >> 31)) >> e);
}

static inline int32_t mb_clamp_s32(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* The output loop over doubled sums `SUM(i)`, eight elements a step where no clamp but int8's own applies (a
 * fused ReLU's zero point is -128 too), then the rest with the clamp. Element i is read before it is
 * written, so y may be a or b. */
#define MB_Q_ADD_TABLE_LOOP(SUM)                                                                        \
    do {                                                                                                \
        int32_t i = 0;                                                                                  \
        if (act_min == -128 && act_max == 127) {                                                        \
            for (; i + 8 <= count; i += 8) {                                                            \
                y[i] = (int8_t)mb_q_add_table_output(SUM(i), out_mult, bias, e);                        \
                y[i + 1] = (int8_t)mb_q_add_table_output(SUM(i + 1), out_mult, bias, e);                \
                y[i + 2] = (int8_t)mb_q_add_table_output(SUM(i + 2), out_mult, bias, e);                \
                y[i + 3] = (int8_t)mb_q_add_table_output(SUM(i + 3), out_mult, bias, e);                \
                y[i + 4] = (int8_t)mb_q_add_table_output(SUM(i + 4), out_mult, bias, e);                \
                y[i + 5] = (int8_t)mb_q_add_table_output(SUM(i + 5), out_mult, bias, e);                \
                y[i + 6] = (int8_t)mb_q_add_table_output(SUM(i + 6), out_mult, bias, e);                \
                y[i + 7] = (int8_t)mb_q_add_table_output(SUM(i + 7), out_mult, bias, e);                \
            }                                                                                           \
        }                                                                                               \
        for (; i < count; ++i) {                                                                        \
            y[i] = (int8_t)mb_clamp_s32(mb_q_add_table_output(SUM(i), out_mult, bias, e), act_min, act_max); \
        }                                                                                               \
    } while (0)

/* An operand whose multiplier is exactly +-1/2 (the one with the larger scale, as the lowering builds them):
 * its rescaled value +-(x - zp) * 2^(left_shift - 1) needs no rounding, so it is a multiply-add, not a table. */
static int mb_q_add_is_linear(int32_t mult, int32_t shift, int32_t left_shift)
{
    return (mult == (1 << 30) || mult == -(1 << 30)) && shift == 0 && left_shift >= 1;
}

void mb_q_add_s8_table(const int8_t *a, const int8_t *b, int8_t *y, int32_t count, int32_t a_zp, int32_t a_mult,
                       int32_t a_shift, int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                       int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max,
                       int32_t *tables)
{
    const int32_t e = -out_shift;
    const int32_t bias = (1 << (e - 1)) + out_zp * (1 << e);
    if (mb_q_add_is_linear(a_mult, a_shift, left_shift) || mb_q_add_is_linear(b_mult, b_shift, left_shift)) {
        /* s2 = x * k + t[z]: x the linear operand, k = +-2^left_shift, its -zp * k folded into z's table */
        const int a_linear = mb_q_add_is_linear(a_mult, a_shift, left_shift);
        const int8_t *x = a_linear ? a : b, *z = a_linear ? b : a;
        const int32_t k = ((a_linear ? a_mult : b_mult) < 0 ? -1 : 1) * (1 << left_shift);
        const int32_t x_offset = -(a_linear ? a_zp : b_zp) * k;
        int32_t *t = tables;
        if (a_linear) {
            mb_q_add_table(t, b_zp, b_mult, b_shift, left_shift, x_offset);
        } else {
            mb_q_add_table(t, a_zp, a_mult, a_shift, left_shift, x_offset);
        }
#define MB_SUM_LINEAR(j) (x[j] * k + t[(uint8_t)z[j]])
        MB_Q_ADD_TABLE_LOOP(MB_SUM_LINEAR);
#undef MB_SUM_LINEAR
    } else {
        int32_t *ta = tables, *tb = tables + 256;
        mb_q_add_table(ta, a_zp, a_mult, a_shift, left_shift, 0);
        mb_q_add_table(tb, b_zp, b_mult, b_shift, left_shift, 0);
#define MB_SUM_TABLES(j) (ta[(uint8_t)a[j]] + tb[(uint8_t)b[j]])
        MB_Q_ADD_TABLE_LOOP(MB_SUM_TABLES);
#undef MB_SUM_TABLES
    }
}
