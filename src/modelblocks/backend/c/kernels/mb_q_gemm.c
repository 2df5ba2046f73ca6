/* Int8 GEMM cores: y[o, p] = requantize(bias[o] + sum_k w[o, k] * col_p[k]) for one or two columns p.
 *
 * Weights are laid out offline (ops/q_linear.py `pack_weights`) as int32 words of four int8 weights
 * in the byte order (w0, w2, w1, w3): SXTB16 gives the halfword pair (w0, w1) and SXTB16 with ROR #8
 * gives (w2, w3), and each meets a word of the int16 column, (x0, x1) or (x2, x3), in one SMLAD (two
 * MACs). K is padded with zero weights to a multiple of 8 (an even number of four-k groups, so the
 * loops take two groups per step). Output channels come in blocks whose words are interleaved group
 * by group, so that one pointer streams a block: blocks of two channels for `mb_q_gemm_s8`, of four
 * for `mb_q_matvec_s8`; the last channels in smaller blocks (a pair, then one).
 *
 * Columns are int16 (x - in_zp) with zeros in the padding. `mb_q_gemm_s8` takes one column, or two
 * interleaved group by group (column 0's four values, then column 1's), so that 2 channels x 2
 * columns share every load. On Armv7E-M the two hot loops are a few lines of Thumb-2 (below). */
#include "mb_q_gemm.h"

#include <stddef.h>

/* Two channels (words W0, W1) times two columns at C (interleaved) for one group of four k. */
#define MB_GEMM_2X2(W0, W1, C)                                                                  \
    do {                                                                                        \
        const int32_t c0a = mb_load_s16x2(C), c0b = mb_load_s16x2((C) + 2);                     \
        const int32_t c1a = mb_load_s16x2((C) + 4), c1b = mb_load_s16x2((C) + 6);               \
        int32_t lo = mb_sxtb16(W0), hi = mb_sxtb16_ror8(W0);                                    \
        a00 = mb_smlad(lo, c0a, a00);                                                           \
        a00 = mb_smlad(hi, c0b, a00);                                                           \
        a01 = mb_smlad(lo, c1a, a01);                                                           \
        a01 = mb_smlad(hi, c1b, a01);                                                           \
        lo = mb_sxtb16(W1);                                                                     \
        hi = mb_sxtb16_ror8(W1);                                                                \
        a10 = mb_smlad(lo, c0a, a10);                                                           \
        a10 = mb_smlad(hi, c0b, a10);                                                           \
        a11 = mb_smlad(lo, c1a, a11);                                                           \
        a11 = mb_smlad(hi, c1b, a11);                                                           \
    } while (0)

/* One channel (word W) times one column at C for one group: A += W . C */
#define MB_GEMM_1X1(W, C, A)                                                                    \
    do {                                                                                        \
        A = mb_smlad(mb_sxtb16(W), mb_load_s16x2(C), A);                                        \
        A = mb_smlad(mb_sxtb16_ror8(W), mb_load_s16x2((C) + 2), A);                             \
    } while (0)

#if MB_ARM_DSP
/* The two hot loops in Thumb-2, as GCC does not keep them in registers: two channels x two columns
 * in 13 registers (per group 2 LDRD of columns, 2 LDR of weights, 4 SXTB16, 8 SMLAD: 1.06 instructions
 * per MAC with the loop, two groups per pass), and four channels x one column (per group 1 LDRD of the
 * column, 2 LDRD of weights, 8 SXTB16, 8 SMLAD: 1.25 per MAC). Columns must be 8-byte aligned (LDRD),
 * which the kernels' scratch layout guarantees; `groups` is even. */
#define MB_GEMM_ASM_2X2                                                                         \
    "ldrd %[c0a], %[c0b], [%[c]], #8\n\t"                                                        \
    "ldrd %[c1a], %[c1b], [%[c]], #8\n\t"                                                        \
    "ldr %[t0], [%[w]], #4\n\t"                                                                  \
    "sxtb16 %[t1], %[t0]\n\t"                                                                    \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                            \
    "smlad %[a00], %[t1], %[c0a], %[a00]\n\t"                                                    \
    "smlad %[a00], %[t0], %[c0b], %[a00]\n\t"                                                    \
    "smlad %[a01], %[t1], %[c1a], %[a01]\n\t"                                                    \
    "smlad %[a01], %[t0], %[c1b], %[a01]\n\t"                                                    \
    "ldr %[t0], [%[w]], #4\n\t"                                                                  \
    "sxtb16 %[t1], %[t0]\n\t"                                                                    \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                            \
    "smlad %[a10], %[t1], %[c0a], %[a10]\n\t"                                                    \
    "smlad %[a10], %[t0], %[c0b], %[a10]\n\t"                                                    \
    "smlad %[a11], %[t1], %[c1a], %[a11]\n\t"                                                    \
    "smlad %[a11], %[t0], %[c1b], %[a11]\n\t"

#define MB_MATVEC_ASM_CH(A, W)                                                                  \
    "sxtb16 %[t], " W "\n\t"                                                                     \
    "sxtb16 " W ", " W ", ror #8\n\t"                                                             \
    "smlad " A ", %[t], %[ca], " A "\n\t"                                                         \
    "smlad " A ", " W ", %[cb], " A "\n\t"
#define MB_MATVEC_ASM_GROUP                                                                     \
    "ldrd %[ca], %[cb], [%[c]], #8\n\t"                                                          \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                          \
    MB_MATVEC_ASM_CH("%[a0]", "%[w0]") MB_MATVEC_ASM_CH("%[a1]", "%[w1]")                        \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                          \
    MB_MATVEC_ASM_CH("%[a2]", "%[w0]") MB_MATVEC_ASM_CH("%[a3]", "%[w1]")

static void mb_q_matvec_quad(const int32_t *w, const int16_t *c, int32_t groups, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t t, ca, cb, w0, w1;
    const int32_t *end = w + 4 * groups;
    __asm__ __volatile__("1:\n\t" MB_MATVEC_ASM_GROUP MB_MATVEC_ASM_GROUP
                         "cmp %[w], %[end]\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [c] "+r"(c),
                           [t] "=&r"(t), [ca] "=&r"(ca), [cb] "=&r"(cb), [w0] "=&r"(w0), [w1] "=&r"(w1)
                         : [end] "r"(end)
                         : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
static void mb_q_gemm_pair_2cols(const int32_t *w, const int16_t *c, int32_t groups, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int32_t *end = w + 2 * groups;
    while (w != end) {
        MB_GEMM_2X2(w[0], w[1], c);
        w += 2;
        c += 8;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

static void mb_q_matvec_quad(const int32_t *w, const int16_t *c, int32_t groups, int32_t acc[4])
{
    const int32_t *end = w + 4 * groups;
    while (w != end) {
        const int32_t ca = mb_load_s16x2(c), cb = mb_load_s16x2(c + 2);
        for (int32_t k = 0; k < 4; ++k) {
            acc[k] = mb_smlad(mb_sxtb16_ror8(w[k]), cb, mb_smlad(mb_sxtb16(w[k]), ca, acc[k]));
        }
        w += 4;
        c += 4;
    }
}
#endif

/* Channel k's right shift e from a stream's shift word (bytes e0, e1). */
static inline int32_t mb_stream_e(int32_t word, int32_t k)
{
    return (int32_t)(((uint32_t)word >> (8 * k)) & 0xFFu);
}

/* What the channel-pair loop below keeps in memory, read by the assembly at fixed offsets (checked at
 * compile time), so that its 14 registers all go to the GEMM core. */
typedef struct {
    int8_t *y;
    const int16_t *cols;
    int32_t wbytes; /* bytes of one channel pair's weights: 8 * groups */
    int32_t ch_stride, col_stride;
    int32_t zp, lo, hi;
    int32_t pairs;
} mb_q_pair_job;

#if MB_ARM_DSP
#define MB_AT(field, offset) (offsetof(mb_q_pair_job, field) == (offset))
typedef char mb_q_pair_job_offsets_checked[(MB_AT(y, 0) && MB_AT(cols, 4) && MB_AT(wbytes, 8) && MB_AT(ch_stride, 12) &&
                                            MB_AT(col_stride, 16) && MB_AT(zp, 20) && MB_AT(lo, 24) &&
                                            MB_AT(hi, 28) && MB_AT(pairs, 32))
                                               ? 1
                                               : -1];
#undef MB_AT

/* A channel's rescale terms from its e in c1b: c1a = neg = -(e > 0), c0b = half = 2^31 >> (32 - e),
 * which is 0 when e = 0 (a register shift by 32 gives 0); c0a holds its multiplier. */
#define MB_RESCALE_TERMS_ASM                                                                    \
    "rsb %[c1a], %[c1b], #0\n\t"                                                                 \
    "asr %[c1a], %[c1a], #31\n\t"                                                                \
    "rsb %[c0b], %[c1b], #32\n\t"                                                                \
    "mov %[t1], #0x80000000\n\t"                                                                 \
    "lsr %[c0b], %[t1], %[c0b]\n\t"

/* acc (in place): SMMULR of 2 acc, the rounding addend and sign term, the arithmetic shift
 * (mb_q_rescale_apply); the channel's terms in c0a (mult), c0b (half), c1a (neg), c1b (e). */
#define MB_RESCALE_ASM(A)                                                                       \
    "lsl " A ", " A ", #1\n\t"                                                                   \
    "smmulr " A ", " A ", %[c0a]\n\t"                                                            \
    "and %[t1], %[c1a], " A ", asr #31\n\t"                                                      \
    "add " A ", " A ", %[c0b]\n\t"                                                               \
    "add " A ", " A ", %[t1]\n\t"                                                                \
    "asr " A ", " A ", %[c1b]\n\t"
#define MB_OUT_ASM(A) "add " A ", " A ", %[t0]\n\t" "ssat " A ", #8, " A "\n\t"
#define MB_CLAMP_ASM(A)                                                                         \
    "cmp " A ", %[c0a]\n\t" "it lt\n\t" "movlt " A ", %[c0a]\n\t"                                 \
    "cmp " A ", %[c0b]\n\t" "it gt\n\t" "movgt " A ", %[c0b]\n\t"

/* Per channel pair, along the stream (ops/q_linear.py `pack_gemm_stream`): the biases; the 2x2 core over
 * all groups, four per pass (an odd pair of groups first, entering the loop halfway: bit 4 of wbytes
 * says); the multipliers and the shifts' word, four rescales, zp and saturation (and the [lo, hi]
 * clamp, CLAMP); four stores, column 1's before column 0's, so that with col_stride 0 (a lone column)
 * the right value lands last. */
#define MB_PAIR_LOOP_ASM(CLAMP)                                                                 \
    "1:\n\t"                                                                                     \
    "ldrd %[a00], %[a10], [%[w]], #8\n\t"                                                        \
    "mov %[a01], %[a00]\n\t"                                                                     \
    "mov %[a11], %[a10]\n\t"                                                                     \
    "ldr %[c], [%[job], #4]\n\t"                                                                 \
    "ldr %[t0], [%[job], #8]\n\t"                                                                \
    "add %[end], %[w], %[t0]\n\t"                                                                \
    "tst %[t0], #16\n\t"                                                                         \
    "bne 3f\n\t"                                                                                 \
    "2:\n\t" MB_GEMM_ASM_2X2 MB_GEMM_ASM_2X2                                                     \
    "3:\n\t" MB_GEMM_ASM_2X2 MB_GEMM_ASM_2X2                                                     \
    "cmp %[w], %[end]\n\t"                                                                       \
    "bne 2b\n\t"                                                                                 \
    "ldrd %[c0a], %[end], [%[w]], #8\n\t"                                                        \
    "ldr %[c], [%[w]], #4\n\t"                                                                   \
    "sxtb %[c1b], %[c]\n\t"                                                                      \
    MB_RESCALE_TERMS_ASM                                                                         \
    MB_RESCALE_ASM("%[a00]") MB_RESCALE_ASM("%[a01]")                                            \
    "mov %[c0a], %[end]\n\t"                                                                     \
    "sxtb %[c1b], %[c], ror #8\n\t"                                                              \
    MB_RESCALE_TERMS_ASM                                                                         \
    MB_RESCALE_ASM("%[a10]") MB_RESCALE_ASM("%[a11]")                                            \
    "ldr %[t0], [%[job], #20]\n\t"                                                               \
    MB_OUT_ASM("%[a00]") MB_OUT_ASM("%[a01]") MB_OUT_ASM("%[a10]") MB_OUT_ASM("%[a11]")          \
    CLAMP                                                                                        \
    "ldr %[t0], [%[job], #0]\n\t"                                                                \
    "ldrd %[c0a], %[c0b], [%[job], #12]\n\t"                                                     \
    "strb %[a01], [%[t0], %[c0b]]\n\t"                                                           \
    "strb %[a00], [%[t0]]\n\t"                                                                   \
    "add %[t0], %[t0], %[c0a]\n\t"                                                               \
    "strb %[a11], [%[t0], %[c0b]]\n\t"                                                           \
    "strb %[a10], [%[t0]]\n\t"                                                                   \
    "add %[t0], %[t0], %[c0a]\n\t"                                                               \
    "str %[t0], [%[job], #0]\n\t"                                                                \
    "ldr %[t0], [%[job], #32]\n\t"                                                               \
    "subs %[t0], %[t0], #1\n\t"                                                                  \
    "str %[t0], [%[job], #32]\n\t"                                                               \
    "bne 1b\n\t"

#define MB_PAIR_LOOP_OPERANDS                                                                   \
    : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [w] "+r"(w), [c] "=&r"(c),   \
      [t0] "=&r"(t0), [t1] "=&r"(t1), [c0a] "=&r"(c0a), [c0b] "=&r"(c0b), [c1a] "=&r"(c1a), [c1b] "=&r"(c1b), \
      [end] "=&r"(end)                                                                          \
    : [job] "r"(job)                                                                            \
    : "cc", "memory"

static const int32_t *mb_q_pair_loop(const int32_t *w, mb_q_pair_job *job, int clamp)
{
    int32_t a00, a01, a10, a11, t0, t1, c0a, c0b, c1a, c1b;
    const int16_t *c;
    const int32_t *end;
    if (clamp) {
        __asm__ __volatile__(MB_PAIR_LOOP_ASM("ldrd %[c0a], %[c0b], [%[job], #24]\n\t" MB_CLAMP_ASM("%[a00]")
                                                  MB_CLAMP_ASM("%[a01]") MB_CLAMP_ASM("%[a10]") MB_CLAMP_ASM("%[a11]"))
                                 MB_PAIR_LOOP_OPERANDS);
    } else {
        __asm__ __volatile__(MB_PAIR_LOOP_ASM("") MB_PAIR_LOOP_OPERANDS);
    }
    return w;
}
#else
/* The C twin of the assembly above, the same arithmetic in the same order. */
static const int32_t *mb_q_pair_loop(const int32_t *w, mb_q_pair_job *job, int clamp)
{
    const int32_t groups = job->wbytes / 8;
    do {
        int32_t acc[4] = {w[0], w[0], w[1], w[1]};
        mb_q_gemm_pair_2cols(w + 2, job->cols, groups, acc);
        w += 2 + 2 * groups;
        int8_t *y = job->y;
        for (int32_t ch = 0; ch < 2; ++ch) {
            const mb_q_rescale r = mb_q_rescale_of(w[ch], -mb_stream_e(w[2], ch));
            const int32_t v0 = mb_q_rescale_apply(acc[2 * ch], r);
            const int32_t v1 = mb_q_rescale_apply(acc[2 * ch + 1], r);
            y[job->col_stride] = mb_q_store_value(v1, job->zp, job->lo, job->hi, clamp);
            y[0] = mb_q_store_value(v0, job->zp, job->lo, job->hi, clamp);
            y += job->ch_stride;
        }
        w += 3;
        job->y = y;
    } while (--job->pairs);
    return w;
}
#endif

static int mb_q_full_range(int32_t lo, int32_t hi)
{
    return lo <= -128 && hi >= 127;
}

void mb_q_gemm_s8(const int32_t *stream, const int16_t *cols, int32_t groups, int32_t ncols, int32_t cout, int8_t *y,
                  int32_t ch_stride, int32_t col_stride, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    const int clamp = !mb_q_full_range(act_min, act_max);
    const int32_t *w = stream;
    if (cout >= 2) {
        mb_q_pair_job job = {y, cols, groups * 8, ch_stride, ncols == 2 ? col_stride : 0, out_zp, act_min, act_max,
                             cout / 2};
        w = mb_q_pair_loop(w, &job, clamp);
        y = job.y;
    }
    if (cout % 2) { /* the last channel, alone: bias, weights, multiplier, shift */
        const int16_t *c = cols;
        int32_t a0 = w[0], a1 = w[0];
        ++w;
        for (int32_t g = 0; g < groups; ++g) {
            MB_GEMM_1X1(w[g], c, a0);
            MB_GEMM_1X1(w[g], c + 4, a1);
            c += 8;
        }
        const mb_q_rescale r = mb_q_rescale_of(w[groups], -mb_stream_e(w[groups + 1], 0));
        if (ncols == 2) {
            y[col_stride] = mb_q_store_value(mb_q_rescale_apply(a1, r), out_zp, act_min, act_max, clamp);
        }
        y[0] = mb_q_store_value(mb_q_rescale_apply(a0, r), out_zp, act_min, act_max, clamp);
    }
}

/* Four channels, one column: every weight is used once, so per group 4 weight words, 8 SXTB16 and
 * 8 SMLAD for 16 MACs, the column's 2 loads shared. */
void mb_q_matvec_s8(const int32_t *w, const int16_t *col, int32_t groups, int32_t cout, const int32_t *bias,
                    const int32_t *mult, const int8_t *shift, int8_t *y, int32_t out_zp, int32_t act_min,
                    int32_t act_max)
{
    const int clamp = !mb_q_full_range(act_min, act_max);
    int32_t o = 0;
    for (; o + 4 <= cout; o += 4) {
        int32_t acc[4] = {bias[o], bias[o + 1], bias[o + 2], bias[o + 3]};
        mb_q_matvec_quad(w, col, groups, acc);
        w += 4 * groups;
        for (int32_t k = 0; k < 4; ++k) {
            const mb_q_rescale r = mb_q_rescale_of(mult[o + k], shift[o + k]);
            y[o + k] = mb_q_store_value(mb_q_rescale_apply(acc[k], r), out_zp, act_min, act_max, clamp);
        }
    }
    /* the last 1..3 channels are laid out as gemm blocks (a pair, then one) */
    for (int32_t size = 2; size >= 1; --size) {
        for (; cout - o >= size; o += size) {
            int32_t acc[2] = {bias[o], size == 2 ? bias[o + 1] : 0};
            for (int32_t g = 0; g < groups; ++g) {
                for (int32_t k = 0; k < size; ++k) {
                    MB_GEMM_1X1(w[size * g + k], col + 4 * g, acc[k]);
                }
            }
            w += size * groups;
            for (int32_t k = 0; k < size; ++k) {
                const mb_q_rescale r = mb_q_rescale_of(mult[o + k], shift[o + k]);
                y[o + k] = mb_q_store_value(mb_q_rescale_apply(acc[k], r), out_zp, act_min, act_max, clamp);
            }
        }
    }
}

/* int8 x[0..count) as int16 (x - in_zp) into a column, zeros up to `padded` (a multiple of 4).
 * slot 0: a lone column; 1 and 2: the first and second column of an interleaved pair. */
void mb_q_pack_column(const int8_t *x, int16_t *col, int32_t count, int32_t padded, int32_t slot, int32_t in_zp)
{
    const int32_t step = slot ? 8 : 4;
    int16_t *dst = col + (slot == 2 ? 4 : 0);
    int32_t i = 0;
    for (; i + 4 <= count; i += 4) {
        dst[0] = (int16_t)(x[i] - in_zp);
        dst[1] = (int16_t)(x[i + 1] - in_zp);
        dst[2] = (int16_t)(x[i + 2] - in_zp);
        dst[3] = (int16_t)(x[i + 3] - in_zp);
        dst += step;
    }
    for (; i < padded; i += 4) {
        for (int32_t t = 0; t < 4; ++t) {
            dst[t] = (int16_t)(i + t < count ? x[i + t] - in_zp : 0);
        }
        dst += step;
    }
}
