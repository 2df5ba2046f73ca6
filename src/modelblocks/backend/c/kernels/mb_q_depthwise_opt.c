/* Optimised int8 depthwise convolution, NCHW: mb_q_depthwise_conv_s8 (mb_q_conv.c), bit for bit.
 *
 * Per input channel, its plane as int16 (x - in_zp) in `buf`: the padding zeroed once per layer, the
 * image widened into it per channel, every row word-aligned. 3x3 kernels without dilation, stride 1 or
 * 2 across (any stride down), take six outputs of a row per step, where the int16 pairs of inputs that
 * the row of outputs reads meet pairs of taps prepared once per channel:
 *   stride 1, inputs p0 = (x0, x1), p1 = (x2, x3), ... of a kernel row (w0, w1, w2):
 *     out_2m += p_m.(w0, w1) + p_m+1.(w2, 0)    out_2m+1 += p_m.(0, w0) + p_m+1.(w1, w2)
 *   stride 2, p0 = (x0, x1), p1 = (x2, x3), ...: out_k += p_k.(w0, w1) + p_k+1.(w2, 0),
 * 5 loads and 12 SMLAD for 18 MACs per kernel row. A row's other outputs (ow % 6) take a step of one,
 * four (storing two to four), or five; a row of six takes one step without the steps' loop. The
 * requantization is mb_q_output_fast's in 5 instructions per output (SMMLAR, ADD, ASR, SSAT, STRB)
 * with terms prepared per channel: the taps are doubled, so that the accumulator is the 2 * acc
 * that SMMULR takes, and out_zp is added before the rounding shift, as out_zp * 2^e (mb_dw3x3_output).
 * On Armv7E-M the channel loop, each channel's widening and preparation and its rows are Thumb-2
 * (GCC spills the steps' 14 live registers); elsewhere, and for layers with a narrower clamp than
 * int8's (rare: a fused activation's range is usually the output's), the same steps in C. Other
 * kernels, and layers with a channel whose shift is outside 1..MB_DW_MAX_SHIFT, take tap pairs by
 * SMLAD one output at a time (mb_dw_channel). */
#include "mb_q_depthwise_opt.h"

#include <stddef.h>

#include "mb_q_gemm.h"

/* Largest right shift e of the per-channel form: |v + 2^(e-1) + out_zp * 2^e| stays below 2^31 for
 * every |v| <= 2^30 (the high multiply of |2 * acc| < 2^31) and |out_zp| <= 128. */
#define MB_DW_MAX_SHIFT 22

/* Where a channel's image goes in the plane: `rows` rows of `cols` columns from `src` (row stride
 * cols + src_skip) to `dst` (row stride cols + dst_skip / 2). The assembly reads it at the offsets in
 * the comments. */
typedef struct {
    const int8_t *src; /*  0 */
    int16_t *dst;      /*  4 */
    int32_t rows;      /*  8 */
    int32_t cols;      /* 12 */
    int32_t back;      /* 16: cols >= 4 and not a multiple of 4: 4 - cols % 4 (the last four columns overlap) */
    int32_t src_skip;  /* 20: wd - cols */
    int32_t dst_skip;  /* 24: (wp - cols) int16, in bytes */
    int32_t negzp;     /* 28: (-in_zp, -in_zp) as int16 pairs */
    int32_t in_zp;
} mb_dw_image;

/* A run of channels of a 3x3 layer: the channel pointers move on as each channel is done. */
typedef struct {
    const int8_t *x;       /*  0: the next channel's image (when `widen`) */
    const int8_t *w;       /*  4 */
    const int32_t *bias;   /*  8 */
    const int32_t *mult;   /* 12 */
    const int8_t *shift;   /* 16 */
    int8_t *y;             /* 20 */
    int32_t channels;      /* 24 */
    int32_t widen;         /* 28: each channel's image into the plane first (else it is there) */
    const int16_t *plane;  /* 32 */
    int32_t row_bytes;     /* 36 */
    int32_t outputs;       /* 40: oh * ow */
    int32_t step_outputs;  /* 44: outputs of a row's six-output steps */
    int32_t tail;          /* 48: the row's other outputs (6 when ow is 6: one step, without its loop) */
    int32_t in_skip;       /* 52: bytes from a row's first tail input to the next row's first input */
    int32_t out_zp;        /* 56 */
    int32_t x_step;        /* 60: h * wd */
    mb_dw_image image;     /* 64 */
    int32_t rows;
    int32_t act_min, act_max;
} mb_dw3x3_layer;

/* A channel's prepared terms (the assembly keeps them in its stack frame, at the same offsets). */
typedef struct {
    int32_t taps[12]; /*  0: per kernel row (w0, w1), (w2, 0), (0, w0), (w1, w2), doubled, as int16 pairs */
    int32_t bias2;    /* 48: 2 * bias */
    int32_t mult;     /* 52 */
    int32_t addend;   /* 56: 2^(e-1) + out_zp * 2^e */
    int32_t shift;    /* 60: e = -shift, 1 <= e <= MB_DW_MAX_SHIFT */
} mb_dw3x3_terms;

static int32_t mb_dw_pair(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* -- the steps in C: the assembly's twin ------------------------------------------------------------ */

#if !MB_ARM_DSP
/* The next channel's terms; moves the layer's channel pointers on. */
static void mb_dw3x3_setup(mb_dw3x3_terms *t, mb_dw3x3_layer *L)
{
    const int32_t e = -*L->shift;
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t a = 2 * L->w[3 * i], b = 2 * L->w[3 * i + 1], c = 2 * L->w[3 * i + 2];
        t->taps[4 * i] = mb_dw_pair(a, b);
        t->taps[4 * i + 1] = mb_dw_pair(c, 0);
        t->taps[4 * i + 2] = mb_dw_pair(0, a);
        t->taps[4 * i + 3] = mb_dw_pair(b, c);
    }
    t->bias2 = 2 * *L->bias;
    t->mult = *L->mult;
    t->shift = e;
    t->addend = (int32_t)((1u << e) >> 1) + L->out_zp * (int32_t)(1u << e);
    L->x += L->x_step;
    L->w += 9;
    ++L->bias;
    ++L->mult;
    ++L->shift;
}

/* The output of an accumulator 2 * acc: mb_q_output_fast (mb_q_gemm.h) with the prepared terms. With
 * v = SMMULR(2 * acc, mult), it adds -1 when acc < 0 where that adds -1 when v < 0: they differ only at
 * v = 0, where (2^(e-1) - 1) >> e and 2^(e-1) >> e are both 0 for e >= 1. Adding out_zp * 2^e before the
 * shift is adding out_zp after it; saturating to int8 then is the same as bounding to [-256, 255] first. */
static int8_t mb_dw3x3_output(int32_t acc2, const mb_dw3x3_terms *t, const mb_dw3x3_layer *L, int clamp)
{
    int32_t v = mb_smmlar(acc2, t->mult, t->addend);
    v = mb_ssat8((v + (acc2 >> 31)) >> t->shift);
    if (clamp) {
        v = v < L->act_min ? L->act_min : v;
        v = v > L->act_max ? L->act_max : v;
    }
    return (int8_t)v;
}

/* `n` outputs of a row from the inputs at `in` (rows wp int16 apart), as the assembly's steps sum them. */
static void mb_dw3x3_step_c(const int16_t *in, int32_t wp, int32_t sw, const mb_dw3x3_terms *t, int32_t n,
                            int32_t *acc)
{
    for (int32_t k = 0; k < n; ++k) {
        acc[k] = t->bias2;
    }
    for (int32_t i = 0; i < 3; ++i) {
        const int16_t *p = in + i * wp;
        const int32_t *tap = t->taps + 4 * i;
        for (int32_t k = 0; k < n; ++k) {
            if (sw == 1) { /* out_2m: p_m.(w0, w1) + p_m+1.(w2, 0); out_2m+1: p_m.(0, w0) + p_m+1.(w1, w2) */
                const int32_t m = k / 2, odd = k % 2;
                acc[k] = mb_smlad(mb_load_s16x2(p + 2 * m), tap[2 * odd], acc[k]);
                acc[k] = mb_smlad(mb_load_s16x2(p + 2 * m + 2), tap[2 * odd + 1], acc[k]);
            } else {
                acc[k] = mb_smlad(mb_load_s16x2(p + 2 * k), tap[0], acc[k]);
                acc[k] = mb_smlad(mb_load_s16x2(p + 2 * k + 2), tap[1], acc[k]);
            }
        }
    }
}

/* One output alone: (w0, w1) and (w2, 0) per kernel row, at either stride. */
static int32_t mb_dw3x3_single_c(const int16_t *in, int32_t wp, const mb_dw3x3_terms *t)
{
    int32_t acc = t->bias2;
    for (int32_t i = 0; i < 3; ++i) {
        acc = mb_smlad(mb_load_s16x2(in + i * wp), t->taps[4 * i], acc);
        acc = mb_smlad(mb_load_s16x2(in + i * wp + 2), t->taps[4 * i + 1], acc);
    }
    return acc;
}

/* Every row of a channel: its six-output steps, then its tail (as the assembly's dispatch). */
static void mb_dw3x3_rows_c(mb_dw3x3_layer *L, const mb_dw3x3_terms *t, int32_t sw, int clamp)
{
    const int16_t *in = L->plane;
    const int32_t wp = L->row_bytes / 2;
    int32_t acc[6];
    for (int32_t r = 0; r < L->rows; ++r) {
        for (int32_t s = 0; s < L->step_outputs; s += 6) {
            mb_dw3x3_step_c(in, wp, sw, t, 6, acc);
            for (int32_t k = 0; k < 6; ++k) {
                *L->y++ = mb_dw3x3_output(acc[k], t, L, clamp);
            }
            in += 6 * sw;
        }
        if (L->tail == 1) {
            *L->y++ = mb_dw3x3_output(mb_dw3x3_single_c(in, wp, t), t, L, clamp);
        } else if (L->tail > 1) {
            mb_dw3x3_step_c(in, wp, sw, t, L->tail < 4 ? 4 : L->tail, acc);
            for (int32_t k = 0; k < L->tail; ++k) {
                *L->y++ = mb_dw3x3_output(acc[k], t, L, clamp);
            }
        }
        in += L->in_skip / 2;
    }
}

static void mb_dw_widen(const mb_dw_image *m)
{
    const int8_t *src = m->src;
    int16_t *dst = m->dst;
    for (int32_t r = 0; r < m->rows; ++r) {
        int32_t p = 0;
        for (; p + 4 <= m->cols; p += 4) {
            mb_widen4_s8(src + p, dst + p, m->negzp);
        }
        for (; p < m->cols; ++p) {
            dst[p] = (int16_t)(src[p] - m->in_zp);
        }
        src += m->cols + m->src_skip;
        dst += m->cols + m->dst_skip / 2;
    }
}

/* The layer's channels (L->channels >= 1, L->rows >= 1). */
static void mb_dw3x3_channels(mb_dw3x3_layer *L, int32_t sw)
{
    const int clamp = L->act_min > -128 || L->act_max < 127;
    for (int32_t c = 0; c < L->channels; ++c) {
        mb_dw3x3_terms t;
        if (L->widen) {
            L->image.src = L->x;
            mb_dw_widen(&L->image);
        }
        mb_dw3x3_setup(&t, L);
        mb_dw3x3_rows_c(L, &t, sw, clamp);
    }
}
#endif

/* -- the steps in Thumb-2 ---------------------------------------------------------------------------- */

#if MB_ARM_DSP
typedef char mb_dw_layout_check[(offsetof(mb_dw_image, cols) == 12 && offsetof(mb_dw_image, negzp) == 28 &&
                                 offsetof(mb_dw3x3_layer, channels) == 24 && offsetof(mb_dw3x3_layer, x_step) == 60 &&
                                 offsetof(mb_dw3x3_layer, image) == 64 && offsetof(mb_dw3x3_terms, shift) == 60)
                                    ? 1
                                    : -1];

/* Whole functions in assembly (naked: no code of GCC's around it) take all 14 registers; the argument
 * comes in r0. `used`: some are called from assembly only. */
#define MB_DW_ASM_FUNCTION(NAME, TYPE, BODY)                                                       \
    __attribute__((naked, noinline, used)) static void NAME(TYPE *arg __attribute__((unused)))    \
    {                                                                                             \
        __asm__ volatile(BODY);                                                                   \
    }

/* Four int8 at r1 + SRC as int16 x - in_zp at DST, with r4 = negzp: (x0, x2) and (x1, x3) by SXTAB16, then
 * repacked as (x0, x1), (x2, x3). */
#define MB_DW_WIDEN4(LOAD, STORE_HI, STORE_LO)                                                     \
    LOAD                                                                                          \
    "sxtab16 r7, r4, r6\n\t"                                                                      \
    "sxtab16 r8, r4, r6, ror #8\n\t"                                                              \
    "pkhbt r6, r7, r8, lsl #16\n\t"                                                               \
    "pkhtb r8, r8, r7, asr #16\n\t"                                                               \
    STORE_HI                                                                                      \
    STORE_LO
#define MB_DW_WIDEN4_NEXT                                                                          \
    MB_DW_WIDEN4("ldr r6, [r1], #4\n\t", "str r8, [r2, #4]\n\t", "str r6, [r2], #8\n\t")

/* mb_dw_widen. Rows of more than 8 columns: cols / 4 groups (two per loop pass), then the last
 * cols % 4 columns as a group overlapping the previous one (nothing is read past the row); of 4 to 8
 * columns: the first four and the last four; of fewer: column by column. (In C, GCC builds the
 * halfword packs from masks and a literal: 13 instructions a group.) */
MB_DW_ASM_FUNCTION(mb_dw_widen, const mb_dw_image,
    "push {r4-r11, lr}\n\t"
    "ldr r1, [r0, #0]\n\t"
    "ldr r2, [r0, #4]\n\t"
    "ldr r3, [r0, #8]\n\t"
    "ldr r9, [r0, #12]\n\t"
    "ldr r5, [r0, #16]\n\t"
    "ldr r11, [r0, #20]\n\t"
    "ldr r12, [r0, #24]\n\t"
    "ldr r4, [r0, #28]\n\t"
    "cmp r9, #4\n\t"
    "blt 6f\n\t"
    "cmp r9, #8\n\t"
    "ble 5f\n"
    "1:\n\t"
    "lsrs lr, r9, #3\n\t"
    "tst r9, #4\n\t"
    "beq 3f\n\t"
    MB_DW_WIDEN4_NEXT
    "b 3f\n"
    "2:\n\t"
    MB_DW_WIDEN4_NEXT
    MB_DW_WIDEN4_NEXT
    "3:\n\t"
    "subs lr, lr, #1\n\t"
    "bpl 2b\n\t"
    "cbz r5, 4f\n\t"
    "sub r1, r1, r5\n\t"
    "sub r2, r2, r5, lsl #1\n\t"
    MB_DW_WIDEN4_NEXT
    "4:\n\t"
    "add r1, r1, r11\n\t"
    "add r2, r2, r12\n\t"
    "subs r3, r3, #1\n\t"
    "bne 1b\n\t"
    "pop {r4-r11, pc}\n"
    "5:\n\t"                            /* 4 to 8 columns: r5 the last group's column, r10 its offset */
    "sub r5, r9, #4\n\t"
    "lsl r10, r5, #1\n\t"
    "add r11, r11, r9\n\t"
    "add r12, r12, r9, lsl #1\n"
    "8:\n\t"
    MB_DW_WIDEN4("ldr r6, [r1]\n\t", "str r8, [r2, #4]\n\t", "str r6, [r2]\n\t")
    MB_DW_WIDEN4("ldr r6, [r1, r5]\n\t", "add lr, r2, r10\n\t" "str r8, [lr, #4]\n\t", "str r6, [lr]\n\t")
    "add r1, r1, r11\n\t"
    "add r2, r2, r12\n\t"
    "subs r3, r3, #1\n\t"
    "bne 8b\n\t"
    "pop {r4-r11, pc}\n"
    "6:\n\t"
    "mov lr, r9\n"
    "7:\n\t"
    "ldrb r6, [r1], #1\n\t"
    "sxtab r6, r4, r6\n\t"
    "strh r6, [r2], #2\n\t"
    "subs lr, lr, #1\n\t"
    "bne 7b\n\t"
    "add r1, r1, r11\n\t"
    "add r2, r2, r12\n\t"
    "subs r3, r3, #1\n\t"
    "bne 6b\n\t"
    "pop {r4-r11, pc}\n\t")

/* The layer functions' stack frame: the channel's terms (mb_dw3x3_terms) at 0..63, then */
#define MB_DW_F_STEP_OUTPUTS "64"
#define MB_DW_F_CHANNEL_END "68"
#define MB_DW_F_IN_SKIP "72"
#define MB_DW_F_TAIL "76"
#define MB_DW_F_ROW_END "80"
#define MB_DW_F_LAYER "84"
#define MB_DW_F_CHANNELS_LEFT "88"
#define MB_DW_F_RETURN "92"
#define MB_DW_FRAME "96"

/* One kernel row (w0 w1 w2 in bytes 0..2 of R) as its four tap pairs, doubled, at sp + OFF */
#define MB_DW_TAP_ROW(R, OFF, OFF8)                                                                \
    "sxtb16 r10, " R "\n\t"                                                                       \
    "sxtb16 r11, " R ", ror #8\n\t"                                                               \
    "sadd16 r10, r10, r10\n\t"                                                                    \
    "sadd16 r11, r11, r11\n\t"                                                                    \
    "pkhbt r12, r10, r11, lsl #16\n\t"                                                            \
    "lsr lr, r10, #16\n\t"                                                                        \
    "strd r12, lr, [sp, #" OFF "]\n\t"                                                            \
    "lsl r12, r10, #16\n\t"                                                                       \
    "pkhbt lr, r11, r10\n\t"                                                                      \
    "strd r12, lr, [sp, #" OFF8 "]\n\t"

/* mb_dw3x3_setup into the caller's frame (called with BL from the layer functions, sp unchanged):
 * widens the channel's image first when the layer says so; returns r0 = the plane, r1 = row_bytes,
 * r2 = the channel's outputs. */
MB_DW_ASM_FUNCTION(mb_dw3x3_setup_asm, mb_dw3x3_layer,
    "str lr, [sp, #" MB_DW_F_RETURN "]\n\t"
    "ldr r0, [sp, #" MB_DW_F_LAYER "]\n\t"
    "ldr r1, [r0, #28]\n\t"
    "cbz r1, 1f\n\t"
    "ldr r1, [r0, #0]\n\t"
    "str r1, [r0, #64]\n\t"
    "add r0, r0, #64\n\t"
    "bl mb_dw_widen\n\t"
    "ldr r0, [sp, #" MB_DW_F_LAYER "]\n"
    "1:\n\t"
    "ldm r0, {r1-r6}\n\t"                /* x w bias mult shift y */
    "ldr r7, [r2]\n\t"                   /* w0 w1 w2 (w3) */
    "ldr r8, [r2, #3]\n\t"               /* w3 w4 w5 (w6) */
    "ldr r9, [r2, #5]\n\t"
    "lsr r9, r9, #8\n\t"                 /* w6 w7 w8 */
    "add r2, r2, #9\n\t"
    MB_DW_TAP_ROW("r7", "0", "8")
    MB_DW_TAP_ROW("r8", "16", "24")
    MB_DW_TAP_ROW("r9", "32", "40")
    "ldr r7, [r3], #4\n\t"
    "lsl r7, r7, #1\n\t"
    "str r7, [sp, #48]\n\t"              /* bias2 */
    "ldr r7, [r4], #4\n\t"
    "str r7, [sp, #52]\n\t"              /* mult */
    "ldrsb r8, [r5], #1\n\t"
    "rsb r8, r8, #0\n\t"
    "str r8, [sp, #60]\n\t"              /* e */
    "mov r9, #1\n\t"
    "lsl r9, r9, r8\n\t"
    "ldr r10, [r0, #56]\n\t"
    "mul r10, r10, r9\n\t"
    "add r10, r10, r9, lsr #1\n\t"
    "str r10, [sp, #56]\n\t"             /* addend */
    "ldr r7, [r0, #60]\n\t"
    "add r1, r1, r7\n\t"
    "stm r0, {r1-r5}\n\t"
    "ldr r7, [r0, #40]\n\t"
    "add r7, r6, r7\n\t"
    "str r7, [sp, #" MB_DW_F_CHANNEL_END "]\n\t"
    "mov r2, r6\n\t"
    "ldr r1, [r0, #36]\n\t"
    "ldr r0, [r0, #32]\n\t"
    "ldr lr, [sp, #" MB_DW_F_RETURN "]\n\t"
    "bx lr\n\t")

/* Requantization (mb_dw3x3_output) of accumulator A with mult r9, addend r10, e r11; r2 the output. */
#define MB_DW_TERMS                                                                                \
    "ldrd r9, r10, [sp, #52]\n\t"                                                                 \
    "ldr r11, [sp, #60]\n\t"

#define MB_DW_OUT(A)                                                                               \
    "smmlar r12, " A ", r9, r10\n\t"                                                              \
    "add r12, r12, " A ", asr #31\n\t"                                                            \
    "asr r12, r12, r11\n\t"                                                                       \
    "ssat r12, #8, r12\n\t"                                                                       \
    "strb r12, [r2], #1\n\t"

/* Six-output steps. Accumulators out0..out5 in r3..r8, tap pairs in r9 r10, input pairs in r11 r12 lr;
 * r0 the step's inputs in kernel row 0, r1 row_bytes. The accumulators start at the bias, in the one
 * whose first SMLAD comes last. */

/* stride 1: p0 p1 in r11 r12, then p2 p3 in r11 lr; taps (w0, w1) (w2, 0) at T, (0, w0) (w1, w2) at T + 8 */
#define MB_DW_S1_ROW6(T, T8, LOAD01, LOAD23, A0, A1, A2, A3, A4, A5)                               \
    LOAD01                                                                                        \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r5, r12, r9, " A2 "\n\t"                                                               \
    "ldrd r9, r10, [sp, #" T8 "]\n\t"                                                             \
    "smlad r4, r11, r9, " A1 "\n\t"                                                               \
    "smlad r4, r12, r10, r4\n\t"                                                                  \
    "smlad r6, r12, r9, " A3 "\n\t"                                                               \
    LOAD23                                                                                        \
    "smlad r6, r11, r10, r6\n\t"                                                                  \
    "smlad r8, r11, r9, " A5 "\n\t"                                                               \
    "smlad r8, lr, r10, r8\n\t"                                                                   \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "smlad r5, r11, r10, r5\n\t"                                                                  \
    "smlad r7, r11, r9, " A4 "\n\t"                                                               \
    "smlad r7, lr, r10, r7\n\t"

#define MB_DW_S1_STEP6                                                                             \
    "ldr r7, [sp, #48]\n\t"                                                                       \
    MB_DW_S1_ROW6("0", "8", "ldrd r11, r12, [r0]\n\t", "ldrd r11, lr, [r0, #8]\n\t",              \
                  "r7", "r7", "r7", "r7", "r7", "r7")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW6("16", "24", "ldrd r11, r12, [r0]\n\t", "ldrd r11, lr, [r0, #8]\n\t",            \
                  "r3", "r4", "r5", "r6", "r7", "r8")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW6("32", "40", "ldrd r11, r12, [r0], #12\n\t", "ldrd r11, lr, [r0, #-4]\n\t",      \
                  "r3", "r4", "r5", "r6", "r7", "r8")                                             \
    "sub r0, r0, r1, lsl #1\n\t"

/* stride 2: p0..p6 through r11 r12 lr; taps (w0, w1) (w2, 0) at T */
#define MB_DW_S2_ROW6(T, LOAD01, LOAD23, LOAD45, LOAD6, A0, A1, A2, A3, A4, A5)                    \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    LOAD01                                                                                        \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r4, r12, r9, " A1 "\n\t"                                                               \
    LOAD23                                                                                        \
    "smlad r4, r11, r10, r4\n\t"                                                                  \
    "smlad r5, r11, r9, " A2 "\n\t"                                                               \
    "smlad r5, lr, r10, r5\n\t"                                                                   \
    "smlad r6, lr, r9, " A3 "\n\t"                                                                \
    LOAD45                                                                                        \
    "smlad r6, r11, r10, r6\n\t"                                                                  \
    "smlad r7, r11, r9, " A4 "\n\t"                                                               \
    "smlad r7, r12, r10, r7\n\t"                                                                  \
    "smlad r8, r12, r9, " A5 "\n\t"                                                               \
    LOAD6                                                                                         \
    "smlad r8, r11, r10, r8\n\t"

#define MB_DW_S2_STEP6                                                                             \
    "ldr r8, [sp, #48]\n\t"                                                                       \
    MB_DW_S2_ROW6("0", "ldrd r11, r12, [r0]\n\t", "ldrd r11, lr, [r0, #8]\n\t",                   \
                  "ldrd r11, r12, [r0, #16]\n\t", "ldr r11, [r0, #24]\n\t",                       \
                  "r8", "r8", "r8", "r8", "r8", "r8")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW6("16", "ldrd r11, r12, [r0]\n\t", "ldrd r11, lr, [r0, #8]\n\t",                  \
                  "ldrd r11, r12, [r0, #16]\n\t", "ldr r11, [r0, #24]\n\t",                       \
                  "r3", "r4", "r5", "r6", "r7", "r8")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW6("32", "ldrd r11, r12, [r0], #24\n\t", "ldrd r11, lr, [r0, #-16]\n\t",           \
                  "ldrd r11, r12, [r0, #-8]\n\t", "ldr r11, [r0]\n\t",                            \
                  "r3", "r4", "r5", "r6", "r7", "r8")                                             \
    "sub r0, r0, r1, lsl #1\n\t"

/* Five-output steps for a tail of 5: out0..out4 in r3..r7, tap pairs in r9 r10 (and r8 lr), input pairs
 * in r11 r12 (and lr), r0 left where it was. */
#define MB_DW_S1_ROW5(T, T8, A0, A1, A2, A3, A4)                                                   \
    "ldrd r11, r12, [r0]\n\t"                                                                     \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r5, r12, r9, " A2 "\n\t"                                                               \
    "ldrd r8, lr, [sp, #" T8 "]\n\t"                                                              \
    "smlad r4, r11, r8, " A1 "\n\t"                                                               \
    "smlad r4, r12, lr, r4\n\t"                                                                   \
    "smlad r6, r12, r8, " A3 "\n\t"                                                               \
    "ldrd r11, r12, [r0, #8]\n\t"                                                                 \
    "smlad r5, r11, r10, r5\n\t"                                                                  \
    "smlad r6, r11, lr, r6\n\t"                                                                   \
    "smlad r7, r11, r9, " A4 "\n\t"                                                               \
    "smlad r7, r12, r10, r7\n\t"

#define MB_DW_S1_STEP5                                                                             \
    "ldr r7, [sp, #48]\n\t"                                                                       \
    MB_DW_S1_ROW5("0", "8", "r7", "r7", "r7", "r7", "r7")                                         \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW5("16", "24", "r3", "r4", "r5", "r6", "r7")                                       \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW5("32", "40", "r3", "r4", "r5", "r6", "r7")                                       \
    "sub r0, r0, r1, lsl #1\n\t"

#define MB_DW_S2_ROW5(T, A0, A1, A2, A3, A4)                                                       \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "ldrd r11, r12, [r0]\n\t"                                                                     \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r4, r12, r9, " A1 "\n\t"                                                               \
    "ldrd r11, lr, [r0, #8]\n\t"                                                                  \
    "smlad r4, r11, r10, r4\n\t"                                                                  \
    "smlad r5, r11, r9, " A2 "\n\t"                                                               \
    "smlad r5, lr, r10, r5\n\t"                                                                   \
    "smlad r6, lr, r9, " A3 "\n\t"                                                                \
    "ldrd r11, r12, [r0, #16]\n\t"                                                                \
    "smlad r6, r11, r10, r6\n\t"                                                                  \
    "smlad r7, r11, r9, " A4 "\n\t"                                                               \
    "smlad r7, r12, r10, r7\n\t"

#define MB_DW_S2_STEP5                                                                             \
    "ldr r7, [sp, #48]\n\t"                                                                       \
    MB_DW_S2_ROW5("0", "r7", "r7", "r7", "r7", "r7")                                              \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW5("16", "r3", "r4", "r5", "r6", "r7")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW5("32", "r3", "r4", "r5", "r6", "r7")                                             \
    "sub r0, r0, r1, lsl #1\n\t"

/* Four-output steps for tails of 2 to 4: out0..out3 in r3..r6, r0 left where it was. */
#define MB_DW_S1_ROW4(T, T8, A0, A1, A2, A3)                                                       \
    "ldrd r11, r12, [r0]\n\t"                                                                     \
    "ldr lr, [r0, #8]\n\t"                                                                        \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r5, r12, r9, " A2 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r5, lr, r10, r5\n\t"                                                                   \
    "ldrd r9, r10, [sp, #" T8 "]\n\t"                                                             \
    "smlad r4, r11, r9, " A1 "\n\t"                                                               \
    "smlad r6, r12, r9, " A3 "\n\t"                                                               \
    "smlad r4, r12, r10, r4\n\t"                                                                  \
    "smlad r6, lr, r10, r6\n\t"

#define MB_DW_S1_STEP4                                                                             \
    "ldr r6, [sp, #48]\n\t"                                                                       \
    MB_DW_S1_ROW4("0", "8", "r6", "r6", "r6", "r6")                                               \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW4("16", "24", "r3", "r4", "r5", "r6")                                             \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S1_ROW4("32", "40", "r3", "r4", "r5", "r6")                                             \
    "sub r0, r0, r1, lsl #1\n\t"

/* stride 2: p0 p1 in r11 r12, p2 p3 in lr r7, p4 in r11 */
#define MB_DW_S2_ROW4(T, A0, A1, A2, A3)                                                           \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "ldrd r11, r12, [r0]\n\t"                                                                     \
    "ldrd lr, r7, [r0, #8]\n\t"                                                                   \
    "smlad r3, r11, r9, " A0 "\n\t"                                                               \
    "smlad r3, r12, r10, r3\n\t"                                                                  \
    "smlad r4, r12, r9, " A1 "\n\t"                                                               \
    "smlad r4, lr, r10, r4\n\t"                                                                   \
    "smlad r5, lr, r9, " A2 "\n\t"                                                                \
    "smlad r5, r7, r10, r5\n\t"                                                                   \
    "ldr r11, [r0, #16]\n\t"                                                                      \
    "smlad r6, r7, r9, " A3 "\n\t"                                                                \
    "smlad r6, r11, r10, r6\n\t"

#define MB_DW_S2_STEP4                                                                             \
    "ldr r6, [sp, #48]\n\t"                                                                       \
    MB_DW_S2_ROW4("0", "r6", "r6", "r6", "r6")                                                    \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW4("16", "r3", "r4", "r5", "r6")                                                   \
    "add r0, r0, r1\n\t"                                                                          \
    MB_DW_S2_ROW4("32", "r3", "r4", "r5", "r6")                                                   \
    "sub r0, r0, r1, lsl #1\n\t"

/* One output alone in r3 (either stride). */
#define MB_DW_SINGLE_ROW(T, BASE, A)                                                               \
    "ldrd r11, r12, [" BASE "]\n\t"                                                               \
    "ldrd r9, r10, [sp, #" T "]\n\t"                                                              \
    "smlad r3, r11, r9, " A "\n\t"                                                                \
    "smlad r3, r12, r10, r3\n\t"

#define MB_DW_SINGLE                                                                               \
    "ldr r3, [sp, #48]\n\t"                                                                       \
    MB_DW_SINGLE_ROW("0", "r0", "r3")                                                             \
    "add lr, r0, r1\n\t"                                                                          \
    MB_DW_SINGLE_ROW("16", "lr", "r3")                                                            \
    "add lr, lr, r1\n\t"                                                                          \
    MB_DW_SINGLE_ROW("32", "lr", "r3")

/* A layer function: for each channel, mb_dw3x3_setup_asm, then each row: its six-output steps (until
 * r2 reaches the row's end), its tail by a table on it (one output; two to four of a four-output
 * step; five or six of a six-output step), and r0 on to the next row, until r2 reaches the channel's
 * end. */
#define MB_DW_LAYER(STEP6, STEP5, STEP4, STEP_BYTES)                                                      \
    "push {r4-r11, lr}\n\t"                                                                       \
    "sub sp, sp, #" MB_DW_FRAME "\n\t"                                                            \
    "str r0, [sp, #" MB_DW_F_LAYER "]\n\t"                                                        \
    "ldr r1, [r0, #24]\n\t"                                                                       \
    "str r1, [sp, #" MB_DW_F_CHANNELS_LEFT "]\n\t"                                                \
    "ldr r1, [r0, #44]\n\t"                                                                       \
    "str r1, [sp, #" MB_DW_F_STEP_OUTPUTS "]\n\t"                                                 \
    "ldr r1, [r0, #48]\n\t"                                                                       \
    "str r1, [sp, #" MB_DW_F_TAIL "]\n\t"                                                         \
    "ldr r1, [r0, #52]\n\t"                                                                       \
    "str r1, [sp, #" MB_DW_F_IN_SKIP "]\n"                                                        \
    "20:\n\t"                                                                                     \
    "bl mb_dw3x3_setup_asm\n"                                                                     \
    "1:\n\t"                                                                                      \
    "ldr r3, [sp, #" MB_DW_F_STEP_OUTPUTS "]\n\t"                                                 \
    "cmp r3, #0\n\t"                                                                              \
    "beq 3f\n\t"                                                                                  \
    "add r3, r2, r3\n\t"                                                                          \
    "str r3, [sp, #" MB_DW_F_ROW_END "]\n"                                                        \
    "2:\n\t"                                                                                      \
    STEP6 MB_DW_TERMS MB_DW_OUT("r3") MB_DW_OUT("r4") MB_DW_OUT("r5") MB_DW_OUT("r6")             \
    MB_DW_OUT("r7") MB_DW_OUT("r8")                                                               \
    "ldr r12, [sp, #" MB_DW_F_ROW_END "]\n\t"                                                     \
    "cmp r2, r12\n\t"                                                                             \
    "bne 2b\n"                                                                                    \
    "3:\n\t"                                                                                      \
    "ldr r12, [sp, #" MB_DW_F_TAIL "]\n\t"                                                        \
    "tbh [pc, r12, lsl #1]\n"                                                                     \
    "4:\n\t"                                                                                      \
    ".hword (9f - 4b) / 2, (5f - 4b) / 2, (6f - 4b) / 2, (6f - 4b) / 2, (6f - 4b) / 2, (8f - 4b) / 2\n\t" \
    ".hword (7f - 4b) / 2\n"                                                                      \
    "5:\n\t"                                                                                      \
    MB_DW_SINGLE MB_DW_TERMS MB_DW_OUT("r3")                                                      \
    "b 9f\n"                                                                                      \
    "6:\n\t"                                                                                      \
    STEP4 MB_DW_TERMS MB_DW_OUT("r3") MB_DW_OUT("r4")                                             \
    "ldr lr, [sp, #" MB_DW_F_TAIL "]\n\t"                                                         \
    "cmp lr, #3\n\t"                                                                              \
    "blt 9f\n\t"                                                                                  \
    MB_DW_OUT("r5")                                                                               \
    "beq 9f\n\t"                                                                                  \
    MB_DW_OUT("r6")                                                                               \
    "b 9f\n"                                                                                      \
    "8:\n\t"                                                                                      \
    STEP5 MB_DW_TERMS MB_DW_OUT("r3") MB_DW_OUT("r4") MB_DW_OUT("r5") MB_DW_OUT("r6") MB_DW_OUT("r7") \
    "b 9f\n"                                                                                      \
    "7:\n\t"                                                                                      \
    STEP6 "sub r0, r0, #" STEP_BYTES "\n\t"                                                       \
    MB_DW_TERMS MB_DW_OUT("r3") MB_DW_OUT("r4") MB_DW_OUT("r5") MB_DW_OUT("r6") MB_DW_OUT("r7")   \
    MB_DW_OUT("r8")                                                                               \
    "9:\n\t"                                                                                      \
    "ldr r12, [sp, #" MB_DW_F_IN_SKIP "]\n\t"                                                     \
    "add r0, r0, r12\n\t"                                                                         \
    "ldr r12, [sp, #" MB_DW_F_CHANNEL_END "]\n\t"                                                 \
    "cmp r2, r12\n\t"                                                                             \
    "bne 1b\n\t"                                                                                  \
    "ldr r3, [sp, #" MB_DW_F_LAYER "]\n\t"                                                        \
    "str r2, [r3, #20]\n\t"                                                                       \
    "ldr r3, [sp, #" MB_DW_F_CHANNELS_LEFT "]\n\t"                                                \
    "subs r3, r3, #1\n\t"                                                                         \
    "str r3, [sp, #" MB_DW_F_CHANNELS_LEFT "]\n\t"                                                \
    "bne 20b\n\t"                                                                                 \
    "add sp, sp, #" MB_DW_FRAME "\n\t"                                                            \
    "pop {r4-r11, pc}\n\t"

MB_DW_ASM_FUNCTION(mb_dw3x3_layer_s1, mb_dw3x3_layer, MB_DW_LAYER(MB_DW_S1_STEP6, MB_DW_S1_STEP5, MB_DW_S1_STEP4, "12"))
MB_DW_ASM_FUNCTION(mb_dw3x3_layer_s2, mb_dw3x3_layer, MB_DW_LAYER(MB_DW_S2_STEP6, MB_DW_S2_STEP5, MB_DW_S2_STEP4, "24"))

/* [lo, hi] on `count` int8, four at a time: SSUB8 sets a GE flag per byte, SEL picks by them. Clamping
 * the steps' int8 outputs is clamping their values, as the outputs were saturated to int8 already. */
static void mb_dw_clamp(int8_t *y, int32_t count, int32_t lo, int32_t hi)
{
    const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u, hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
    int32_t i = 0;
    for (; i + 4 <= count; i += 4) {
        uint32_t v, ge;
        memcpy(&v, y + i, 4);
        __asm__("ssub8 %1, %0, %2\n\t"
                "sel %0, %0, %2\n\t"
                "ssub8 %1, %0, %3\n\t"
                "sel %0, %3, %0"
                : "+r"(v), "=&r"(ge)
                : "r"(lo4), "r"(hi4)
                : "cc");
        memcpy(y + i, &v, 4);
    }
    for (; i < count; ++i) {
        y[i] = (int8_t)(y[i] < lo ? lo : (y[i] > hi ? hi : y[i]));
    }
}

/* The layer's channels (L->channels >= 1, L->rows >= 1). */
static void mb_dw3x3_channels(mb_dw3x3_layer *L, int32_t sw)
{
    int8_t *y = L->y;
    if (sw == 1) {
        mb_dw3x3_layer_s1(L);
    } else {
        mb_dw3x3_layer_s2(L);
    }
    if (L->act_min > -128 || L->act_max < 127) {
        mb_dw_clamp(y, (int32_t)(L->y - y), L->act_min, L->act_max);
    }
}
#endif

/* -- any kernel ---------------------------------------------------------------------------------------- */

/* One channel over its plane: tap pairs by SMLAD when dw == 1 (a pair's two inputs are neighbours; an
 * odd last tap pairs with a zero column on its right), single taps otherwise. */
static void mb_dw_channel(const int16_t *plane, int32_t wp, const int8_t *wo, int8_t *yo, int32_t oh, int32_t ow,
                          int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw, int32_t bias,
                          int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    const int32_t pk = (kw + 1) / 2;
    int32_t taps[MB_Q_DW_MAX_PAIRS];
    for (int32_t i = 0; i < kh; ++i) {
        for (int32_t p = 0; p < pk; ++p) {
            const int32_t j = 2 * p;
            taps[i * pk + p] = mb_dw_pair(wo[i * kw + j], j + 1 < kw ? wo[i * kw + j + 1] : 0);
        }
    }
    for (int32_t r = 0; r < oh; ++r) {
        const int16_t *top = plane + (int64_t)r * sh * wp;
        int8_t *yr = yo + (int64_t)r * ow;
        for (int32_t c = 0; c < ow; ++c) {
            int32_t acc = bias;
            for (int32_t i = 0; i < kh; ++i) {
                const int16_t *src = top + (int64_t)i * dh * wp + c * sw;
                if (dw == 1) {
                    const int32_t *t = taps + i * pk;
                    for (int32_t p = 0; p < pk; ++p) {
                        acc = mb_smlad(t[p], mb_load_s16x2(src + 2 * p), acc);
                    }
                } else {
                    const int8_t *wr = wo + i * kw;
                    for (int32_t j = 0; j < kw; ++j) {
                        acc += (int32_t)src[j * dw] * wr[j];
                    }
                }
            }
            yr[c] = mb_q_output_fast(acc, mult, shift, out_zp, act_min, act_max);
        }
    }
}

/* Plane columns: those the kernel reads plus a spare zero (an odd last tap is read as a pair), and the
 * zero columns that a row's last step reads beyond ow; an even number, every row word-aligned. */
static int32_t mb_dw_plane_width(int32_t ow, int32_t kw, int32_t sw, int32_t dw)
{
    const int32_t read = (ow - 1) * sw + (kw - 1) * dw + 2;
    const int32_t steps = (ow + 2) * sw + 2;
    const int32_t wp = read > steps ? read : steps;
    return wp + (wp & 1);
}

static int mb_dw3x3_shifts_fit(const int8_t *shift, int32_t channels)
{
    for (int32_t o = 0; o < channels; ++o) {
        if (shift[o] > -1 || shift[o] < -MB_DW_MAX_SHIFT) {
            return 0;
        }
    }
    return 1;
}

void mb_q_depthwise_conv_s8_rows(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                                 const int8_t *shift, int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd,
                                 int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh,
                                 int32_t sw, int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp,
                                 int32_t out_zp, int32_t act_min, int32_t act_max, int16_t *buf)
{
    const int32_t mult_per_channel = cout / cin;
    const int32_t hp = (oh - 1) * sh + (kh - 1) * dh + 1; /* plane rows read */
    const int32_t wp = mb_dw_plane_width(ow, kw, sw, dw);
    const int32_t top = pt < hp ? pt : hp, bottom = h + pt < hp ? h + pt : hp; /* plane rows of the image */
    int16_t *plane = buf + (((uintptr_t)buf >> 1) & 1u);                        /* word-aligned (LDRD) */
    const int fast3x3 = kh == 3 && kw == 3 && dh == 1 && dw == 1 && (sw == 1 || sw == 2) &&
                        mb_dw3x3_shifts_fit(shift, cout);
    mb_dw3x3_layer L;
    L.image.rows = bottom - top;
    L.image.cols = (wd + pl < wp ? wd + pl : wp) - pl; /* the image columns inside the plane */
    const int has_image = L.image.rows > 0 && L.image.cols > 0;
    L.image.dst = has_image ? plane + (int64_t)top * wp + pl : plane;
    L.image.back = L.image.cols >= 4 && L.image.cols % 4 ? 4 - L.image.cols % 4 : 0;
    L.image.src_skip = wd - L.image.cols;
    L.image.dst_skip = (wp - L.image.cols) * (int32_t)sizeof(int16_t);
    L.image.negzp = mb_negzp_pair(in_zp);
    L.image.in_zp = in_zp;
    L.plane = plane;
    L.row_bytes = wp * (int32_t)sizeof(int16_t);
    L.rows = oh;
    L.outputs = oh * ow;
    L.step_outputs = ow == 6 ? 0 : ow / 6 * 6;
    L.tail = ow - L.step_outputs;
    L.in_skip = (sh * wp - sw * L.step_outputs) * (int32_t)sizeof(int16_t);
    L.out_zp = out_zp;
    L.x_step = h * wd;
    L.act_min = act_min;
    L.act_max = act_max;
    memset(plane, 0, (size_t)hp * (size_t)wp * sizeof(int16_t)); /* the padding, for every channel */
    if (fast3x3 && mult_per_channel == 1 && has_image) { /* the common case: all channels in one run */
        for (int32_t b = 0; b < n; ++b) {
            L.x = x + (int64_t)b * cin * h * wd;
            L.w = w;
            L.bias = bias;
            L.mult = mult;
            L.shift = shift;
            L.y = y + (int64_t)b * cout * oh * ow;
            L.channels = cout;
            L.widen = 1;
            mb_dw3x3_channels(&L, sw);
        }
        return;
    }
    for (int32_t b = 0; b < n; ++b) {
        for (int32_t o = 0; o < cout; ++o) {
            const int8_t *wo = w + (int64_t)o * kh * kw;
            int8_t *yo = y + ((int64_t)b * cout + o) * oh * ow;
            if (o % mult_per_channel == 0 && has_image) { /* a new input channel */
                L.image.src = x + ((int64_t)b * cin + o / mult_per_channel) * h * wd;
                mb_dw_widen(&L.image);
            }
            if (fast3x3) {
                L.x = x; /* not read (the plane holds the image) */
                L.w = wo;
                L.bias = bias + o;
                L.mult = mult + o;
                L.shift = shift + o;
                L.y = yo;
                L.channels = 1;
                L.widen = 0;
                mb_dw3x3_channels(&L, sw);
                continue;
            }
            mb_dw_channel(plane, wp, wo, yo, oh, ow, kh, kw, sh, sw, dh, dw, bias[o], mult[o], shift[o], out_zp,
                          act_min, act_max);
        }
    }
}
