#include "mb_gemm_f32_opt.h"

#include <stddef.h>

#if MB_FP_ASM
/* Register use: accumulators s0..s15 (s[4 i + j]); one step's a in s16..s19 and b in s20..s23, the
 * next step's in s24..s27 and s28..s31 (loads of both steps come before their multiply-adds). */
#define MB_FMA4X4_A \
    "vfma.f32 s0, s16, s20\n\t" "vfma.f32 s1, s16, s21\n\t" "vfma.f32 s2, s16, s22\n\t" "vfma.f32 s3, s16, s23\n\t" \
    "vfma.f32 s4, s17, s20\n\t" "vfma.f32 s5, s17, s21\n\t" "vfma.f32 s6, s17, s22\n\t" "vfma.f32 s7, s17, s23\n\t" \
    "vfma.f32 s8, s18, s20\n\t" "vfma.f32 s9, s18, s21\n\t" "vfma.f32 s10, s18, s22\n\t" "vfma.f32 s11, s18, s23\n\t" \
    "vfma.f32 s12, s19, s20\n\t" "vfma.f32 s13, s19, s21\n\t" "vfma.f32 s14, s19, s22\n\t" "vfma.f32 s15, s19, s23\n\t"

#define MB_FMA4X4_B \
    "vfma.f32 s0, s24, s28\n\t" "vfma.f32 s1, s24, s29\n\t" "vfma.f32 s2, s24, s30\n\t" "vfma.f32 s3, s24, s31\n\t" \
    "vfma.f32 s4, s25, s28\n\t" "vfma.f32 s5, s25, s29\n\t" "vfma.f32 s6, s25, s30\n\t" "vfma.f32 s7, s25, s31\n\t" \
    "vfma.f32 s8, s26, s28\n\t" "vfma.f32 s9, s26, s29\n\t" "vfma.f32 s10, s26, s30\n\t" "vfma.f32 s11, s26, s31\n\t" \
    "vfma.f32 s12, s27, s28\n\t" "vfma.f32 s13, s27, s29\n\t" "vfma.f32 s14, s27, s30\n\t" "vfma.f32 s15, s27, s31\n\t"

#define MB_GEMV_LO \
    "vfma.f32 s0, s12, s4\n\t" "vfma.f32 s1, s13, s4\n\t" "vfma.f32 s2, s14, s4\n\t" "vfma.f32 s3, s15, s4\n\t" \
    "vfma.f32 s0, s16, s5\n\t" "vfma.f32 s1, s17, s5\n\t" "vfma.f32 s2, s18, s5\n\t" "vfma.f32 s3, s19, s5\n\t" \
    "vfma.f32 s0, s20, s6\n\t" "vfma.f32 s1, s21, s6\n\t" "vfma.f32 s2, s22, s6\n\t" "vfma.f32 s3, s23, s6\n\t" \
    "vfma.f32 s0, s24, s7\n\t" "vfma.f32 s1, s25, s7\n\t" "vfma.f32 s2, s26, s7\n\t" "vfma.f32 s3, s27, s7\n\t"

#define MB_GEMV_HI \
    "vfma.f32 s0, s12, s8\n\t" "vfma.f32 s1, s13, s8\n\t" "vfma.f32 s2, s14, s8\n\t" "vfma.f32 s3, s15, s8\n\t" \
    "vfma.f32 s0, s16, s9\n\t" "vfma.f32 s1, s17, s9\n\t" "vfma.f32 s2, s18, s9\n\t" "vfma.f32 s3, s19, s9\n\t" \
    "vfma.f32 s0, s20, s10\n\t" "vfma.f32 s1, s21, s10\n\t" "vfma.f32 s2, s22, s10\n\t" "vfma.f32 s3, s23, s10\n\t" \
    "vfma.f32 s0, s24, s11\n\t" "vfma.f32 s1, s25, s11\n\t" "vfma.f32 s2, s26, s11\n\t" "vfma.f32 s3, s27, s11\n\t"

#define MB_CLAMP16 \
    "vadd.f32 s16, s0, s1\n\t" "vadd.f32 s17, s2, s3\n\t" "vadd.f32 s18, s4, s5\n\t" "vadd.f32 s19, s6, s7\n\t" \
    "vadd.f32 s20, s8, s9\n\t" "vadd.f32 s21, s10, s11\n\t" "vadd.f32 s22, s12, s13\n\t" "vadd.f32 s23, s14, s15\n\t" \
    "vadd.f32 s16, s16, s17\n\t" "vadd.f32 s18, s18, s19\n\t" "vadd.f32 s20, s20, s21\n\t" "vadd.f32 s22, s22, s23\n\t" \
    "vadd.f32 s16, s16, s18\n\t" "vadd.f32 s20, s20, s22\n\t" "vadd.f32 s16, s16, s20\n\t" \
    "vcmp.f32 s16, s16\n\t" "vmrs APSR_nzcv, fpscr\n\t" \
    "bvs 7f\n\t" \
    "ldr %[a], [%[prm], %[o_lohi]]\n\t" "vldmia %[a], {s30-s31}\n\t" \
    "vmaxnm.f32 s0, s0, s30\n\t" "vmaxnm.f32 s1, s1, s30\n\t" "vmaxnm.f32 s2, s2, s30\n\t" "vmaxnm.f32 s3, s3, s30\n\t" \
    "vmaxnm.f32 s4, s4, s30\n\t" "vmaxnm.f32 s5, s5, s30\n\t" "vmaxnm.f32 s6, s6, s30\n\t" "vmaxnm.f32 s7, s7, s30\n\t" \
    "vmaxnm.f32 s8, s8, s30\n\t" "vmaxnm.f32 s9, s9, s30\n\t" "vmaxnm.f32 s10, s10, s30\n\t" "vmaxnm.f32 s11, s11, s30\n\t" \
    "vmaxnm.f32 s12, s12, s30\n\t" "vmaxnm.f32 s13, s13, s30\n\t" "vmaxnm.f32 s14, s14, s30\n\t" "vmaxnm.f32 s15, s15, s30\n\t" \
    "vminnm.f32 s0, s0, s31\n\t" "vminnm.f32 s1, s1, s31\n\t" "vminnm.f32 s2, s2, s31\n\t" "vminnm.f32 s3, s3, s31\n\t" \
    "vminnm.f32 s4, s4, s31\n\t" "vminnm.f32 s5, s5, s31\n\t" "vminnm.f32 s6, s6, s31\n\t" "vminnm.f32 s7, s7, s31\n\t" \
    "vminnm.f32 s8, s8, s31\n\t" "vminnm.f32 s9, s9, s31\n\t" "vminnm.f32 s10, s10, s31\n\t" "vminnm.f32 s11, s11, s31\n\t" \
    "vminnm.f32 s12, s12, s31\n\t" "vminnm.f32 s13, s13, s31\n\t" "vminnm.f32 s14, s14, s31\n\t" "vminnm.f32 s15, s15, s31\n\t" \
    "movs %[nan], #0\n\t" \
    "7:\n\t"

#define MB_CLAMP4 \
    "vadd.f32 s4, s0, s1\n\t" "vadd.f32 s5, s2, s3\n\t" "vadd.f32 s4, s4, s5\n\t" \
    "vcmp.f32 s4, s4\n\t" "vmrs APSR_nzcv, fpscr\n\t" \
    "bvs 7f\n\t" \
    "ldr %[a], [%[prm], %[o_lohi]]\n\t" "vldmia %[a], {s30-s31}\n\t" \
    "vmaxnm.f32 s0, s0, s30\n\t" "vmaxnm.f32 s1, s1, s30\n\t" "vmaxnm.f32 s2, s2, s30\n\t" "vmaxnm.f32 s3, s3, s30\n\t" \
    "vminnm.f32 s0, s0, s31\n\t" "vminnm.f32 s1, s1, s31\n\t" "vminnm.f32 s2, s2, s31\n\t" "vminnm.f32 s3, s3, s31\n\t" \
    "movs %[nan], #0\n\t" \
    "7:\n\t"


#if MB_FAST_MINMAX
#define MB_CLAMP16_OR_FLAG MB_CLAMP16
#define MB_CLAMP4_OR_FLAG MB_CLAMP4
#else /* FPv4 has no VMAXNM / VMINNM: store as computed and let the caller clamp */
#define MB_CLAMP16_OR_FLAG
#define MB_CLAMP4_OR_FLAG
#endif

#define MB_CLOBBER_S0_S31 \
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", \
    "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31"

/* the 4 rows of the tile to y, ys bytes apart */
#define MB_STORE16 \
    "ldr %[y], [%[prm], %[o_y]]\n\t" "ldr %[pairs], [%[prm], %[o_ys]]\n\t" \
    "vstmia %[y], {s0-s3}\n\t" "add %[y], %[y], %[pairs]\n\t" "vstmia %[y], {s4-s7}\n\t" \
    "add %[y], %[y], %[pairs]\n\t" "vstmia %[y], {s8-s11}\n\t" "add %[y], %[y], %[pairs]\n\t" \
    "vstmia %[y], {s12-s15}\n\t"

/* What the assembly reads from memory besides the operands (few registers are left at -O0). */
typedef struct {
    const float *init;
    float *y;
    int32_t ys_bytes;
    const float *lohi;
    int32_t k;
    int32_t clamp;
    int32_t init_rows;
} mb_gemm_args;

#define MB_GEMM_ARGS \
    [prm] "r"(&args), [o_init] "i"(offsetof(mb_gemm_args, init)), [o_y] "i"(offsetof(mb_gemm_args, y)), \
    [o_ys] "i"(offsetof(mb_gemm_args, ys_bytes)), [o_lohi] "i"(offsetof(mb_gemm_args, lohi)), \
    [o_k] "i"(offsetof(mb_gemm_args, k)), [o_clamp] "i"(offsetof(mb_gemm_args, clamp)), \
    [o_rows] "i"(offsetof(mb_gemm_args, init_rows))

/* s0..s15 = the 16 starting values, or init[i] along row i (s[4i .. 4i + 3]) */
#define MB_INIT16 \
    "ldr %[y], [%[prm], %[o_rows]]\n\t" "cmp %[y], #0\n\t" "ldr %[y], [%[prm], %[o_init]]\n\t" "bne 5f\n\t" \
    "vldmia %[y], {s0-s15}\n\t" "b 6f\n" \
    "5:\n\t" "vldmia %[y], {s16-s19}\n\t" \
    "vmov.f32 s0, s16\n\t" "vmov.f32 s1, s16\n\t" "vmov.f32 s2, s16\n\t" "vmov.f32 s3, s16\n\t" \
    "vmov.f32 s4, s17\n\t" "vmov.f32 s5, s17\n\t" "vmov.f32 s6, s17\n\t" "vmov.f32 s7, s17\n\t" \
    "vmov.f32 s8, s18\n\t" "vmov.f32 s9, s18\n\t" "vmov.f32 s10, s18\n\t" "vmov.f32 s11, s18\n\t" \
    "vmov.f32 s12, s19\n\t" "vmov.f32 s13, s19\n\t" "vmov.f32 s14, s19\n\t" "vmov.f32 s15, s19\n" \
    "6:\n\t"
#endif

int mb_gemm4x4_f32_opt(const float *a, const float *b, int32_t b_stride, int32_t k, const float *init,
                       int init_rows, float *y, int32_t ys, const float *lohi)
{
#if MB_FP_ASM
    const mb_gemm_args args = {init, y, ys * (int32_t)sizeof(float), lohi, k, lohi != NULL, init_rows};
    uint32_t pairs = (uint32_t)k >> 1;
    int32_t nan = 0;
    float *yr = y;
    if (b_stride == 4) { /* a packed b panel: both operands stream with write-back */
        __asm__ volatile(
            MB_INIT16
            "cmp %[pairs], #0\n\t"
            "beq 2f\n"
            "1:\n\t"
            "vldmia %[a]!, {s16-s19}\n\t"
            "vldmia %[b]!, {s20-s23}\n\t"
            "vldmia %[a]!, {s24-s27}\n\t"
            "vldmia %[b]!, {s28-s31}\n\t"
            MB_FMA4X4_A
            MB_FMA4X4_B
            "subs %[pairs], %[pairs], #1\n\t"
            "bne 1b\n"
            "2:\n\t"
            "ldr %[pairs], [%[prm], %[o_k]]\n\t"
            "tst %[pairs], #1\n\t"
            "beq 3f\n\t"
            "vldmia %[a]!, {s16-s19}\n\t"
            "vldmia %[b]!, {s20-s23}\n\t"
            MB_FMA4X4_A
            "3:\n\t"
            "ldr %[nan], [%[prm], %[o_clamp]]\n\t"
            "cmp %[nan], #0\n\t"
            "beq 7f\n\t"
            MB_CLAMP16_OR_FLAG
            "7:\n\t"
            MB_STORE16
            : [a] "+r"(a), [b] "+r"(b), [pairs] "+r"(pairs), [nan] "+r"(nan), [y] "+r"(yr)
            : MB_GEMM_ARGS
            : "cc", "memory", MB_CLOBBER_S0_S31);
    } else {
        const int32_t step = b_stride * (int32_t)sizeof(float);
        __asm__ volatile(
            MB_INIT16
            "cmp %[pairs], #0\n\t"
            "beq 2f\n"
            "1:\n\t"
            "vldmia %[a]!, {s16-s19}\n\t"
            "vldmia %[b], {s20-s23}\n\t"
            "add %[b], %[b], %[step]\n\t"
            "vldmia %[a]!, {s24-s27}\n\t"
            "vldmia %[b], {s28-s31}\n\t"
            "add %[b], %[b], %[step]\n\t"
            MB_FMA4X4_A
            MB_FMA4X4_B
            "subs %[pairs], %[pairs], #1\n\t"
            "bne 1b\n"
            "2:\n\t"
            "ldr %[pairs], [%[prm], %[o_k]]\n\t"
            "tst %[pairs], #1\n\t"
            "beq 3f\n\t"
            "vldmia %[a]!, {s16-s19}\n\t"
            "vldmia %[b], {s20-s23}\n\t"
            MB_FMA4X4_A
            "3:\n\t"
            "ldr %[nan], [%[prm], %[o_clamp]]\n\t"
            "cmp %[nan], #0\n\t"
            "beq 7f\n\t"
            MB_CLAMP16_OR_FLAG
            "7:\n\t"
            MB_STORE16
            : [a] "+r"(a), [b] "+r"(b), [pairs] "+r"(pairs), [nan] "+r"(nan), [y] "+r"(yr)
            : MB_GEMM_ARGS, [step] "r"(step)
            : "cc", "memory", MB_CLOBBER_S0_S31);
    }
    return nan;
#else
    float c[16];
    for (int32_t t = 0; t < 16; ++t) {
        c[t] = init_rows ? init[t / 4] : init[t];
    }
    for (int32_t p = 0; p < k; ++p) {
        const float *ap = a + 4 * p;
        const float *bp = b + (int64_t)p * b_stride;
        for (int32_t i = 0; i < 4; ++i) {
            for (int32_t j = 0; j < 4; ++j) {
                c[4 * i + j] = fmaf(ap[i], bp[j], c[4 * i + j]);
            }
        }
    }
    int nan = lohi != NULL;
    if (lohi) {
        float s = 0.0f;
        for (int32_t t = 0; t < 16; ++t) {
            s += c[t];
        }
        if (s == s) { /* no NaN: max / min as VMAXNM / VMINNM */
            for (int32_t t = 0; t < 16; ++t) {
                c[t] = fminf(fmaxf(c[t], lohi[0]), lohi[1]);
            }
            nan = 0;
        }
    }
    for (int32_t i = 0; i < 4; ++i) {
        for (int32_t j = 0; j < 4; ++j) {
            y[(int64_t)i * ys + j] = c[4 * i + j];
        }
    }
    return nan;
#endif
}

void mb_clamp_rows_f32_opt(float *y, int32_t ys, int32_t rows, int32_t cols, const float *lohi)
{
    for (int32_t i = 0; i < rows; ++i) {
        for (int32_t j = 0; j < cols; ++j) {
            y[(int64_t)i * ys + j] = mb_clampf(y[(int64_t)i * ys + j], lohi[0], lohi[1]);
        }
    }
}

int mb_gemv4_f32_opt(const float *a, const float *x, int32_t k, const float *init, float *y, const float *lohi)
{
#if MB_FP_ASM
    const mb_gemm_args args = {init, y, 0, lohi, k, lohi != NULL, 0};
    uint32_t eights = (uint32_t)k >> 3;
    uint32_t rest = (uint32_t)k & 7u;
    int32_t nan = 0;
    __asm__ volatile(
        "ldr %[nan], [%[prm], %[o_init]]\n\t"
        "vldmia %[nan], {s0-s3}\n\t"
        "cmp %[eights], #0\n\t"
        "beq 2f\n"
        "1:\n\t"
        "vldmia %[x]!, {s4-s11}\n\t"
        "vldmia %[a]!, {s12-s27}\n\t"
        MB_GEMV_LO
        "vldmia %[a]!, {s12-s27}\n\t"
        MB_GEMV_HI
        "subs %[eights], %[eights], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "cmp %[rest], #0\n\t"
        "beq 4f\n"
        "3:\n\t"
        "vldmia %[x]!, {s4}\n\t"
        "vldmia %[a]!, {s12-s15}\n\t"
        "vfma.f32 s0, s12, s4\n\t"
        "vfma.f32 s1, s13, s4\n\t"
        "vfma.f32 s2, s14, s4\n\t"
        "vfma.f32 s3, s15, s4\n\t"
        "subs %[rest], %[rest], #1\n\t"
        "bne 3b\n"
        "4:\n\t"
        "ldr %[nan], [%[prm], %[o_clamp]]\n\t"
        "cmp %[nan], #0\n\t"
        "beq 7f\n\t"
        MB_CLAMP4_OR_FLAG
        "7:\n\t"
        "ldr %[x], [%[prm], %[o_y]]\n\t"
        "vstmia %[x], {s0-s3}\n\t"
        : [a] "+r"(a), [x] "+r"(x), [eights] "+r"(eights), [rest] "+r"(rest), [nan] "+r"(nan)
        : MB_GEMM_ARGS
        : "cc", "memory", MB_CLOBBER_S0_S31);
    return nan;
#else
    float c0 = init[0], c1 = init[1], c2 = init[2], c3 = init[3];
    for (int32_t p = 0; p < k; ++p) {
        const float xp = x[p];
        c0 = fmaf(a[0], xp, c0);
        c1 = fmaf(a[1], xp, c1);
        c2 = fmaf(a[2], xp, c2);
        c3 = fmaf(a[3], xp, c3);
        a += 4;
    }
    int nan = lohi != NULL;
    if (lohi) {
        const float s = (c0 + c1) + (c2 + c3);
        if (s == s) {
            c0 = fminf(fmaxf(c0, lohi[0]), lohi[1]);
            c1 = fminf(fmaxf(c1, lohi[0]), lohi[1]);
            c2 = fminf(fmaxf(c2, lohi[0]), lohi[1]);
            c3 = fminf(fmaxf(c3, lohi[0]), lohi[1]);
            nan = 0;
        }
    }
    y[0] = c0;
    y[1] = c1;
    y[2] = c2;
    y[3] = c3;
    return nan;
#endif
}

void mb_pack4_f32_opt(float *panel, const float *rows, int32_t row_stride, int32_t nrows, int32_t k)
{
    if (nrows == 4) {
        const float *r0 = rows, *r1 = rows + row_stride, *r2 = rows + 2 * (int64_t)row_stride;
        const float *r3 = rows + 3 * (int64_t)row_stride;
        for (int32_t p = 0; p < k; ++p) {
            panel[0] = r0[p];
            panel[1] = r1[p];
            panel[2] = r2[p];
            panel[3] = r3[p];
            panel += 4;
        }
        return;
    }
    for (int32_t p = 0; p < k; ++p) {
        for (int32_t i = 0; i < 4; ++i) {
            panel[4 * p + i] = i < nrows ? rows[(int64_t)i * row_stride + p] : 0.0f;
        }
    }
}

void mb_gemm_rows_f32_opt(const float *a, int32_t rows, const float *b, int32_t b_stride, int32_t k,
                          const float *bias, float *y, int32_t si, int32_t sj, int32_t nj, const float *lohi)
{
    for (int32_t i = 0; i < rows; ++i) {
        const float start = bias ? bias[i] : 0.0f;
        float c0 = start, c1 = start, c2 = start, c3 = start;
        const float *ai = a + i, *bp = b;
        for (int32_t p = 0; p < k; ++p) {
            const float w = *ai;
            c0 = fmaf(w, bp[0], c0);
            c1 = fmaf(w, bp[1], c1);
            c2 = fmaf(w, bp[2], c2);
            c3 = fmaf(w, bp[3], c3);
            ai += rows;
            bp += b_stride;
        }
        const float c[4] = {c0, c1, c2, c3};
        for (int32_t j = 0; j < nj; ++j) {
            y[(int64_t)i * si + (int64_t)j * sj] = lohi ? mb_clampf(c[j], lohi[0], lohi[1]) : c[j];
        }
    }
}

void mb_gemv_rows_f32_opt(const float *a, int32_t rows, const float *x, int32_t k, const float *bias, float *y,
                          const float *lohi)
{
    for (int32_t i = 0; i < rows; ++i) {
        float c = bias ? bias[i] : 0.0f;
        const float *ai = a + i;
        for (int32_t p = 0; p < k; ++p) {
            c = fmaf(*ai, x[p], c);
            ai += rows;
        }
        y[i] = lohi ? mb_clampf(c, lohi[0], lohi[1]) : c;
    }
}
