#include "mb_conv_f32_opt.h"
#include "mb_common.h"
#include "mb_gemm_f32_opt.h"

#include <stddef.h>

/* Four floats copied as one object: a load-multiple and a store-multiple on Armv7-M. */
typedef struct {
    float v[4];
} mb_f4;

static inline void mb_copy4(float *dst, const float *src)
{
    *(mb_f4 *)dst = *(const mb_f4 *)src;
}

/* -- im2col ------------------------------------------------------------------------------------
 *
 * The patch panel of 4 output positions: panel[4 t + q] is the input under element t = (i * kw + j)
 * * cig + ci of the patch of position q (taps first, the order of the weight panels). A block whose 4
 * windows lie inside the input reads element t at the position's offset + tapoff[t] (a table built
 * once per call), with one load-multiple and one store-multiple when the 4 positions are neighbours
 * of one row (stride 1); a block touching the padding checks each read. */

/* tapoff[t]: the input offset of element t from its window's top left corner */
static void mb_patch_offsets(int32_t *tapoff, int32_t cig, int32_t h, int32_t wd, int32_t kh, int32_t kw,
                             int32_t dh, int32_t dw)
{
    for (int32_t i = 0; i < kh; ++i) {
        for (int32_t j = 0; j < kw; ++j) {
            for (int32_t ci = 0; ci < cig; ++ci) {
                *tapoff++ = ci * h * wd + i * dh * wd + j * dw;
            }
        }
    }
}

/* a block inside the input: panel[4 t + q] = xg[off[q] + tapoff[t]] */
static void mb_panel_inside(float *panel, const float *xg, const int32_t *tapoff, int32_t k, const int32_t *off,
                            int neighbours)
{
    if (neighbours) { /* 4 consecutive floats per element */
        const float *src = xg + off[0];
        int32_t t = 0;
        for (; t + 2 <= k; t += 2) {
            mb_copy4(panel, src + tapoff[t]);
            mb_copy4(panel + 4, src + tapoff[t + 1]);
            panel += 8;
        }
        if (t < k) {
            mb_copy4(panel, src + tapoff[t]);
        }
        return;
    }
    const float *s0 = xg + off[0], *s1 = xg + off[1], *s2 = xg + off[2], *s3 = xg + off[3];
    for (int32_t t = 0; t < k; ++t) {
        const int32_t o = tapoff[t];
        panel[0] = s0[o];
        panel[1] = s1[o];
        panel[2] = s2[o];
        panel[3] = s3[o];
        panel += 4;
    }
}

/* a block touching the padding: windows at (bh[q], bw[q]) (top left, negative in the padding); a
 * missing position has bh[q] = h and reads zeros */
static void mb_panel_border(float *panel, const float *xg, const int32_t *bh, const int32_t *bw, int32_t cig,
                            int32_t h, int32_t wd, int32_t kh, int32_t kw, int32_t dh, int32_t dw)
{
    const int64_t plane = (int64_t)h * wd;
    for (int32_t i = 0; i < kh; ++i) {
        for (int32_t j = 0; j < kw; ++j) {
            int32_t off[4];
            uint32_t mask = 0;
            for (int32_t q = 0; q < 4; ++q) {
                const int32_t ih = bh[q] + i * dh, iw = bw[q] + j * dw;
                const int ok = (uint32_t)ih < (uint32_t)h && (uint32_t)iw < (uint32_t)wd;
                off[q] = ok ? ih * wd + iw : 0;
                mask |= (uint32_t)ok << q;
            }
            const float *src = xg;
            if (mask == 15u && off[1] == off[0] + 1 && off[2] == off[0] + 2 && off[3] == off[0] + 3) {
                for (int32_t ci = 0; ci < cig; ++ci, src += plane, panel += 4) {
                    mb_copy4(panel, src + off[0]);
                }
            } else if (mask == 0u) {
                for (int32_t t = 0; t < 4 * cig; ++t) {
                    panel[t] = 0.0f;
                }
                panel += 4 * cig;
            } else {
                for (int32_t ci = 0; ci < cig; ++ci, src += plane, panel += 4) {
                    panel[0] = mask & 1u ? src[off[0]] : 0.0f;
                    panel[1] = mask & 2u ? src[off[1]] : 0.0f;
                    panel[2] = mask & 4u ? src[off[2]] : 0.0f;
                    panel[3] = mask & 8u ? src[off[3]] : 0.0f;
                }
            }
        }
    }
}

/* -- im2col through a band (few input channels) -----------------------------------------------------
 *
 * With few input channels a block's patch is short and the per-tap bookkeeping of the border path
 * costs more than the copy; and first layers are often all border (a tall kernel on a narrow input).
 * Then the patches are read from a `band` instead: the input rows that R consecutive output rows
 * need, copied with their zero padding, so that no read needs a check. Each band row is split by
 * column phase (padded column c goes to phase c % sw, index c / sw): the 4 outputs of one row read 4
 * consecutive floats per element whatever the stride. */

typedef struct {
    int32_t rows_out; /* R: output rows one block of 4 positions can span */
    int32_t bh;       /* band rows: (R - 1) * sh + (kh - 1) * dh + 1 */
    int32_t wq;       /* floats per phase of a band row: ceil(wp / sw) */
    int32_t rs;       /* floats per band row: sw * wq */
    int32_t plane;    /* floats per channel: bh * rs */
} mb_band;

static mb_band mb_band_shape(int32_t ow, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw)
{
    mb_band bd;
    const int32_t wp = (ow - 1) * sw + (kw - 1) * dw + 1; /* padded columns the outputs read */
    bd.rows_out = (ow + 2) / ow + 1;
    bd.bh = (bd.rows_out - 1) * sh + (kh - 1) * dh + 1;
    bd.wq = (wp + sw - 1) / sw;
    bd.rs = sw * bd.wq;
    bd.plane = bd.bh * bd.rs;
    return bd;
}

/* The band of output rows r0 .. r0 + R - 1 for the cig channels of xg. */
static void mb_band_fill(float *band, const mb_band *bd, const float *xg, int32_t cig, int32_t h, int32_t wd,
                         int32_t r0, int32_t sh, int32_t sw, int32_t pt, int32_t pl)
{
    const int32_t c_end = pl + wd < bd->rs ? pl + wd : bd->rs; /* padded columns [pl, c_end) hold input */
    for (int32_t ci = 0; ci < cig; ++ci) {
        const float *xc = xg + (int64_t)ci * h * wd;
        for (int32_t t = 0; t < bd->bh; ++t) {
            float *row = band + (int64_t)ci * bd->plane + (int64_t)t * bd->rs;
            const int32_t ih = r0 * sh - pt + t;
            if ((uint32_t)ih >= (uint32_t)h || c_end <= pl) {
                for (int32_t c = 0; c < bd->rs; ++c) {
                    row[c] = 0.0f;
                }
                continue;
            }
            const float *xr = xc + (int64_t)ih * wd; /* padded column c is xr[c - pl] */
            for (int32_t ph = 0; ph < sw; ++ph) { /* columns k * sw + ph hold input for k in [klo, khi) */
                float *dst = row + ph * bd->wq;
                const int32_t klo = pl > ph ? (pl - ph + sw - 1) / sw : 0;
                const int32_t khi = c_end > ph ? (c_end - ph + sw - 1) / sw : 0;
                int32_t k = 0;
                for (; k < klo && k < bd->wq; ++k) {
                    dst[k] = 0.0f;
                }
                if (k < khi) {
                    const float *src = xr + (k * sw + ph - pl);
                    for (; k < khi; ++k) {
                        dst[k] = *src;
                        src += sw;
                    }
                }
                for (; k < bd->wq; ++k) {
                    dst[k] = 0.0f;
                }
            }
        }
    }
}

/* tapoff[t]: the band offset of patch element t = (i * kw + j) * cig + ci from its position's */
static void mb_band_offsets(int32_t *tapoff, const mb_band *bd, int32_t cig, int32_t kh, int32_t kw, int32_t sw,
                            int32_t dh, int32_t dw)
{
    for (int32_t i = 0; i < kh; ++i) {
        for (int32_t j = 0; j < kw; ++j) {
            const int32_t tap = i * dh * bd->rs + (j * dw) % sw * bd->wq + (j * dw) / sw;
            for (int32_t ci = 0; ci < cig; ++ci) {
                *tapoff++ = ci * bd->plane + tap;
            }
        }
    }
}

/* One 4x4 tile of output channels 4 q.. x positions p0.. (np of them; starting values as
 * mb_gemm4x4_f32_opt takes them): straight into y when whole, else through a scratch tile. */
static inline void mb_conv_tile(const float *wq, const float *panel, int32_t stride, int32_t k, const float *init,
                                int init_rows, float *y, int32_t positions, int32_t np, const float *lohi)
{
    if (np == 4) {
        if (mb_gemm4x4_f32_opt(wq, panel, stride, k, init, init_rows, y, positions, lohi)) {
            mb_clamp_rows_f32_opt(y, positions, 4, 4, lohi);
        }
    } else {
        float tile[16];
        if (mb_gemm4x4_f32_opt(wq, panel, stride, k, init, init_rows, tile, 4, lohi)) {
            mb_clamp_rows_f32_opt(tile, 4, 4, 4, lohi);
        }
        mb_tile_copy_f32_opt(tile, y, positions, 1, 4, np);
    }
}

void mb_conv_im2col_f32_opt(const float *x, const float *wp, const float *b, float *y,
                            int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                            int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                            int32_t dh, int32_t dw, int32_t groups, float lo, float hi, int32_t use_band,
                            float *scratch)
{
    const int32_t cig = cin / groups, cog = cout / groups;
    const int32_t taps = cig * kh * kw, full = cog / 4, quads = (cog + 3) / 4, positions = oh * ow;
    const int32_t span_h = (kh - 1) * dh, span_w = (kw - 1) * dw; /* window extent - 1 */
    const mb_band bd = mb_band_shape(ow, kh, kw, sh, sw, dh, dw);
    const float bounds[2] = {lo, hi};
    const float *lohi = mb_lohi_f32_opt(bounds);
    float *panel = scratch;
    int32_t *tapoff = (int32_t *)(void *)(panel + 4 * (int64_t)taps);
    float *band = (float *)(void *)(tapoff + taps);
    const float zero4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (use_band) {
        mb_band_offsets(tapoff, &bd, cig, kh, kw, sw, dh, dw);
    } else {
        mb_patch_offsets(tapoff, cig, h, wd, kh, kw, dh, dw);
    }
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t g = 0; g < groups; ++g) {
            const float *xg = x + ((int64_t)bi * cin + (int64_t)g * cig) * h * wd;
            float *yg = y + ((int64_t)bi * cout + (int64_t)g * cog) * positions;
            const float *wg = wp + (int64_t)g * cog * taps;
            const float *bg = b ? b + g * cog : NULL;
            int32_t r0 = -bd.rows_out; /* the band's first output row: none yet */
            for (int32_t p0 = 0; p0 < positions; p0 += 4) {
                const int32_t np = positions - p0 < 4 ? positions - p0 : 4;
                int32_t bh[4], bw[4], off[4];
                if (use_band) {
                    const int32_t r_first = p0 / ow, r_last = (p0 + np - 1) / ow;
                    if (r_last >= r0 + bd.rows_out) {
                        r0 = r_first;
                        mb_band_fill(band, &bd, xg, cig, h, wd, r0, sh, sw, pt, pl);
                    }
                    for (int32_t q = 0; q < 4; ++q) { /* a missing position repeats the last one */
                        const int32_t p = p0 + (q < np ? q : np - 1), r = p / ow;
                        off[q] = (r - r0) * sh * bd.rs + (p - r * ow);
                    }
                    mb_panel_inside(panel, band, tapoff, taps, off, np == 4 && r_first == r_last);
                } else {
                    int inside = np == 4;
                    for (int32_t q = 0; q < 4; ++q) {
                        const int32_t r = (p0 + q) / ow, col = p0 + q - r * ow;
                        bh[q] = q < np ? r * sh - pt : h;
                        bw[q] = col * sw - pl;
                        inside = inside && bh[q] >= 0 && bh[q] + span_h < h && bw[q] >= 0 && bw[q] + span_w < wd;
                        off[q] = inside ? bh[q] * wd + bw[q] : 0;
                    }
                    if (inside) {
                        mb_panel_inside(panel, xg, tapoff, taps, off, sw == 1 && bh[0] == bh[3]);
                    } else {
                        mb_panel_border(panel, xg, bh, bw, cig, h, wd, kh, kw, dh, dw);
                    }
                }
                for (int32_t q = 0; q < full; ++q) {
                    mb_conv_tile(wg + (int64_t)q * taps * 4, panel, 4, taps, bg ? bg + 4 * q : zero4, 1,
                                 yg + (int64_t)4 * q * positions + p0, positions, np, lohi);
                }
                if (full < quads) { /* the last cog % 4 channels, stored [taps][rem] after the panels */
                    mb_gemm_rows_f32_opt(wg + (int64_t)full * 4 * taps, cog - 4 * full, panel, 4, taps,
                                         bg ? bg + 4 * full : NULL, yg + (int64_t)4 * full * positions + p0,
                                         positions, 1, np, lohi);
                }
            }
        }
    }
}

void mb_conv_pointwise_f32_opt(const float *x, const float *wp, const float *b, float *y,
                               int32_t n, int32_t cin, int32_t hw, int32_t cout, int32_t groups,
                               float lo, float hi, float *scratch)
{
    const int32_t cig = cin / groups, cog = cout / groups, full = cog / 4, rem = cog % 4;
    const int32_t p4 = hw - hw % 4; /* positions in whole blocks of 4 */
    const float bounds[2] = {lo, hi};
    const float *lohi = mb_lohi_f32_opt(bounds);
    float *tail = scratch; /* the last hw % 4 positions, packed and zero-padded */
    float init[16];
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t g = 0; g < groups; ++g) {
            const float *xg = x + ((int64_t)bi * cin + (int64_t)g * cig) * hw;
            float *yg = y + ((int64_t)bi * cout + (int64_t)g * cog) * hw;
            const float *wg = wp + (int64_t)g * cog * cig;
            const float *bg = b ? b + g * cog : NULL;
            if (p4 < hw) { /* so that no read passes the input */
                for (int32_t ci = 0; ci < cig; ++ci) {
                    for (int32_t q = 0; q < 4; ++q) {
                        tail[4 * ci + q] = p4 + q < hw ? xg[(int64_t)ci * hw + p4 + q] : 0.0f;
                    }
                }
            }
            for (int32_t q = 0; q < full; ++q) {
                const float *wq = wg + (int64_t)q * cig * 4;
                float *yq = yg + (int64_t)4 * q * hw;
                for (int32_t t = 0; t < 16; ++t) { /* the whole starting tile: read with one load */
                    init[t] = bg ? bg[4 * q + t / 4] : 0.0f;
                }
                for (int32_t p0 = 0; p0 < p4; p0 += 4) { /* channel ci of 4 positions at xg + ci * hw + p0 */
                    mb_conv_tile(wq, xg + p0, hw, cig, init, 0, yq + p0, hw, 4, lohi);
                }
                if (p4 < hw) {
                    mb_conv_tile(wq, tail, 4, cig, init, 0, yq + p4, hw, hw - p4, lohi);
                }
            }
            if (rem) { /* the last cog % 4 channels, stored [cig][rem] after the panels */
                const float *wr = wg + (int64_t)full * 4 * cig;
                const float *br = bg ? bg + 4 * full : NULL;
                float *yr = yg + (int64_t)4 * full * hw;
                for (int32_t p0 = 0; p0 < p4; p0 += 4) {
                    mb_gemm_rows_f32_opt(wr, rem, xg + p0, hw, cig, br, yr + p0, hw, 1, 4, lohi);
                }
                if (p4 < hw) {
                    mb_gemm_rows_f32_opt(wr, rem, tail, 4, cig, br, yr + p4, hw, 1, hw - p4, lohi);
                }
            }
        }
    }
}

/* -- depthwise 3x3 ------------------------------------------------------------------------------ */

static void mb_copy_floats(float *dst, const float *src, int32_t count)
{
    for (; count >= 8; count -= 8) {
        mb_copy4(dst, src);
        mb_copy4(dst + 4, src + 4);
        dst += 8;
        src += 8;
    }
    if (count >= 4) {
        mb_copy4(dst, src);
        dst += 4;
        src += 4;
        count -= 4;
    }
    for (; count > 0; --count) {
        *dst++ = *src++;
    }
}

/* What the row kernels read besides their operands (b6 first: the assembly loads it from the
 * struct's address). */
typedef struct {
    float b6[6];      /* the bias, once per output of a step */
    const float *w;   /* the channel's 9 weights */
    const float *lohi;
} mb_dw_args;

#if !(MB_FP_ASM && MB_FAST_MINMAX)
/* Six outputs of a 3x3 depthwise row per step in portable C (input stride 1 or 2): the assembly's sums,
 * in the same order. */
static int mb_dw_row6_c(const float *p, int32_t wp, const mb_dw_args *args, float *y, int32_t ntiles, int clamp,
                        int32_t stride)
{
    const float *wk = args->w, *b6 = args->b6, *lohi = args->lohi;
    int nan = 0;
    (void)lohi;
    for (int32_t s = 0; s < ntiles; ++s, p += 6 * stride, y += 6) {
        float a[6];
        for (int32_t o = 0; o < 6; ++o) {
            a[o] = b6[o];
        }
        for (int32_t i = 0; i < 3; ++i) {
            for (int32_t j = 0; j < 3; ++j) {
                for (int32_t o = 0; o < 6; ++o) {
                    a[o] = fmaf(wk[3 * i + j], p[i * wp + stride * o + j], a[o]);
                }
            }
        }
        if (clamp) {
#if MB_FAST_MINMAX
            const float sum = ((a[0] + a[1]) + (a[2] + a[3])) + (a[4] + a[5]);
            if (sum == sum) {
                for (int32_t o = 0; o < 6; ++o) {
                    a[o] = fminf(fmaxf(a[o], lohi[0]), lohi[1]);
                }
            } else {
                nan = 1;
            }
#else
            nan = 1;
#endif
        }
        for (int32_t o = 0; o < 6; ++o) {
            y[o] = a[o];
        }
    }
    return nan;
}
#endif

/* Stride 1: ntiles steps of 6 outputs of one row into y (then y += 6): output o of a step reads
 * columns o .. o + 2 of the 3 padded rows p, p + wp, p + 2 wp (wp in floats), and p moves
 * 6 floats per step; weights args->w, starting values args->b6. With `clamp`, the outputs are
 * clamped to args->lohi with max / min unless the step's sum shows a NaN; returns nonzero when the
 * caller must clamp (then exactly, as mb_clampf). */
static int mb_dw_row6_s1(const float *p, int32_t wp, const mb_dw_args *args, float *y, int32_t ntiles, int clamp)
{
#if MB_FP_ASM && MB_FAST_MINMAX
    int32_t nan = 0;
    const float *t = p;
    const int32_t wp_bytes = wp * (int32_t)sizeof(float);
    if (ntiles <= 0) {
        return 0;
    }
    if (clamp) {
        __asm__ volatile(
            "ldr %[t], [%[prm], %[o_w]]\n\t"
            "vldmia %[t], {s19-s27}\n\t"
            "ldr %[t], [%[prm], %[o_lohi]]\n\t"
            "vldmia %[t], {s28-s29}\n"
            "1:\n\t"
            "vldmia %[prm], {s0-s5}\n\t"
            "vldmia %[p], {s6-s13}\n\t"
            "vfma.f32 s0, s19, s6\n\t" "vfma.f32 s1, s19, s7\n\t" "vfma.f32 s2, s19, s8\n\t" "vfma.f32 s3, s19, s9\n\t" "vfma.f32 s4, s19, s10\n\t" "vfma.f32 s5, s19, s11\n\t"
            "vfma.f32 s0, s20, s7\n\t" "vfma.f32 s1, s20, s8\n\t" "vfma.f32 s2, s20, s9\n\t" "vfma.f32 s3, s20, s10\n\t" "vfma.f32 s4, s20, s11\n\t" "vfma.f32 s5, s20, s12\n\t"
            "vfma.f32 s0, s21, s8\n\t" "vfma.f32 s1, s21, s9\n\t" "vfma.f32 s2, s21, s10\n\t" "vfma.f32 s3, s21, s11\n\t" "vfma.f32 s4, s21, s12\n\t" "vfma.f32 s5, s21, s13\n\t"
            "add %[t], %[p], %[wp]\n\t" "vldmia %[t], {s6-s13}\n\t"
            "vfma.f32 s0, s22, s6\n\t" "vfma.f32 s1, s22, s7\n\t" "vfma.f32 s2, s22, s8\n\t" "vfma.f32 s3, s22, s9\n\t" "vfma.f32 s4, s22, s10\n\t" "vfma.f32 s5, s22, s11\n\t"
            "vfma.f32 s0, s23, s7\n\t" "vfma.f32 s1, s23, s8\n\t" "vfma.f32 s2, s23, s9\n\t" "vfma.f32 s3, s23, s10\n\t" "vfma.f32 s4, s23, s11\n\t" "vfma.f32 s5, s23, s12\n\t"
            "vfma.f32 s0, s24, s8\n\t" "vfma.f32 s1, s24, s9\n\t" "vfma.f32 s2, s24, s10\n\t" "vfma.f32 s3, s24, s11\n\t" "vfma.f32 s4, s24, s12\n\t" "vfma.f32 s5, s24, s13\n\t"
            "add %[t], %[t], %[wp]\n\t" "vldmia %[t], {s6-s13}\n\t"
            "vfma.f32 s0, s25, s6\n\t" "vfma.f32 s1, s25, s7\n\t" "vfma.f32 s2, s25, s8\n\t" "vfma.f32 s3, s25, s9\n\t" "vfma.f32 s4, s25, s10\n\t" "vfma.f32 s5, s25, s11\n\t"
            "vfma.f32 s0, s26, s7\n\t" "vfma.f32 s1, s26, s8\n\t" "vfma.f32 s2, s26, s9\n\t" "vfma.f32 s3, s26, s10\n\t" "vfma.f32 s4, s26, s11\n\t" "vfma.f32 s5, s26, s12\n\t"
            "vfma.f32 s0, s27, s8\n\t" "vfma.f32 s1, s27, s9\n\t" "vfma.f32 s2, s27, s10\n\t" "vfma.f32 s3, s27, s11\n\t" "vfma.f32 s4, s27, s12\n\t" "vfma.f32 s5, s27, s13\n\t"
            "add %[p], %[p], #24\n\t"
            "vadd.f32 s6, s0, s1\n\t" "vadd.f32 s7, s2, s3\n\t" "vadd.f32 s8, s4, s5\n\t"
            "vadd.f32 s6, s6, s7\n\t" "vadd.f32 s6, s6, s8\n\t"
            "vcmp.f32 s6, s6\n\t" "vmrs APSR_nzcv, fpscr\n\t"
            "bvs 4f\n\t"
            "vmaxnm.f32 s0, s0, s28\n\t" "vmaxnm.f32 s1, s1, s28\n\t" "vmaxnm.f32 s2, s2, s28\n\t" "vmaxnm.f32 s3, s3, s28\n\t" "vmaxnm.f32 s4, s4, s28\n\t" "vmaxnm.f32 s5, s5, s28\n\t"
            "vminnm.f32 s0, s0, s29\n\t" "vminnm.f32 s1, s1, s29\n\t" "vminnm.f32 s2, s2, s29\n\t" "vminnm.f32 s3, s3, s29\n\t" "vminnm.f32 s4, s4, s29\n\t" "vminnm.f32 s5, s5, s29\n\t"
            "b 5f\n\t"
            "4:\n\t"
            "movs %[nan], #1\n\t"
            "5:\n\t"
            "vstmia %[y]!, {s0-s5}\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [p] "+r"(p), [t] "+r"(t), [y] "+r"(y), [n] "+r"(ntiles), [nan] "+r"(nan)
            : [prm] "r"(args), [wp] "r"(wp_bytes), [o_w] "i"(offsetof(mb_dw_args, w)),
              [o_lohi] "i"(offsetof(mb_dw_args, lohi))
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29");
    } else {
        __asm__ volatile(
            "ldr %[t], [%[prm], %[o_w]]\n\t"
            "vldmia %[t], {s19-s27}\n"
            "1:\n\t"
            "vldmia %[prm], {s0-s5}\n\t"
            "vldmia %[p], {s6-s13}\n\t"
            "vfma.f32 s0, s19, s6\n\t" "vfma.f32 s1, s19, s7\n\t" "vfma.f32 s2, s19, s8\n\t" "vfma.f32 s3, s19, s9\n\t" "vfma.f32 s4, s19, s10\n\t" "vfma.f32 s5, s19, s11\n\t"
            "vfma.f32 s0, s20, s7\n\t" "vfma.f32 s1, s20, s8\n\t" "vfma.f32 s2, s20, s9\n\t" "vfma.f32 s3, s20, s10\n\t" "vfma.f32 s4, s20, s11\n\t" "vfma.f32 s5, s20, s12\n\t"
            "vfma.f32 s0, s21, s8\n\t" "vfma.f32 s1, s21, s9\n\t" "vfma.f32 s2, s21, s10\n\t" "vfma.f32 s3, s21, s11\n\t" "vfma.f32 s4, s21, s12\n\t" "vfma.f32 s5, s21, s13\n\t"
            "add %[t], %[p], %[wp]\n\t" "vldmia %[t], {s6-s13}\n\t"
            "vfma.f32 s0, s22, s6\n\t" "vfma.f32 s1, s22, s7\n\t" "vfma.f32 s2, s22, s8\n\t" "vfma.f32 s3, s22, s9\n\t" "vfma.f32 s4, s22, s10\n\t" "vfma.f32 s5, s22, s11\n\t"
            "vfma.f32 s0, s23, s7\n\t" "vfma.f32 s1, s23, s8\n\t" "vfma.f32 s2, s23, s9\n\t" "vfma.f32 s3, s23, s10\n\t" "vfma.f32 s4, s23, s11\n\t" "vfma.f32 s5, s23, s12\n\t"
            "vfma.f32 s0, s24, s8\n\t" "vfma.f32 s1, s24, s9\n\t" "vfma.f32 s2, s24, s10\n\t" "vfma.f32 s3, s24, s11\n\t" "vfma.f32 s4, s24, s12\n\t" "vfma.f32 s5, s24, s13\n\t"
            "add %[t], %[t], %[wp]\n\t" "vldmia %[t], {s6-s13}\n\t"
            "vfma.f32 s0, s25, s6\n\t" "vfma.f32 s1, s25, s7\n\t" "vfma.f32 s2, s25, s8\n\t" "vfma.f32 s3, s25, s9\n\t" "vfma.f32 s4, s25, s10\n\t" "vfma.f32 s5, s25, s11\n\t"
            "vfma.f32 s0, s26, s7\n\t" "vfma.f32 s1, s26, s8\n\t" "vfma.f32 s2, s26, s9\n\t" "vfma.f32 s3, s26, s10\n\t" "vfma.f32 s4, s26, s11\n\t" "vfma.f32 s5, s26, s12\n\t"
            "vfma.f32 s0, s27, s8\n\t" "vfma.f32 s1, s27, s9\n\t" "vfma.f32 s2, s27, s10\n\t" "vfma.f32 s3, s27, s11\n\t" "vfma.f32 s4, s27, s12\n\t" "vfma.f32 s5, s27, s13\n\t"
            "add %[p], %[p], #24\n\t"
            "vstmia %[y]!, {s0-s5}\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [p] "+r"(p), [t] "+r"(t), [y] "+r"(y), [n] "+r"(ntiles)
            : [prm] "r"(args), [wp] "r"(wp_bytes), [o_w] "i"(offsetof(mb_dw_args, w))
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29");
    }
    return nan;
#else
    return mb_dw_row6_c(p, wp, args, y, ntiles, clamp, 1);
#endif
}

/* Stride 2: ntiles steps of 6 outputs of one row into y (then y += 6): output o of a step reads
 * columns 2* o .. 2* o + 2 of the 3 padded rows p, p + wp, p + 2 wp (wp in floats), and p moves
 * 12 floats per step; weights args->w, starting values args->b6. With `clamp`, the outputs are
 * clamped to args->lohi with max / min unless the step's sum shows a NaN; returns nonzero when the
 * caller must clamp (then exactly, as mb_clampf). */
static int mb_dw_row6_s2(const float *p, int32_t wp, const mb_dw_args *args, float *y, int32_t ntiles, int clamp)
{
#if MB_FP_ASM && MB_FAST_MINMAX
    int32_t nan = 0;
    const float *t = p;
    const int32_t wp_bytes = wp * (int32_t)sizeof(float);
    if (ntiles <= 0) {
        return 0;
    }
    if (clamp) {
        __asm__ volatile(
            "ldr %[t], [%[prm], %[o_w]]\n\t"
            "vldmia %[t], {s19-s27}\n\t"
            "ldr %[t], [%[prm], %[o_lohi]]\n\t"
            "vldmia %[t], {s28-s29}\n"
            "1:\n\t"
            "vldmia %[prm], {s0-s5}\n\t"
            "vldmia %[p], {s6-s18}\n\t"
            "vfma.f32 s0, s19, s6\n\t" "vfma.f32 s1, s19, s8\n\t" "vfma.f32 s2, s19, s10\n\t" "vfma.f32 s3, s19, s12\n\t" "vfma.f32 s4, s19, s14\n\t" "vfma.f32 s5, s19, s16\n\t"
            "vfma.f32 s0, s20, s7\n\t" "vfma.f32 s1, s20, s9\n\t" "vfma.f32 s2, s20, s11\n\t" "vfma.f32 s3, s20, s13\n\t" "vfma.f32 s4, s20, s15\n\t" "vfma.f32 s5, s20, s17\n\t"
            "vfma.f32 s0, s21, s8\n\t" "vfma.f32 s1, s21, s10\n\t" "vfma.f32 s2, s21, s12\n\t" "vfma.f32 s3, s21, s14\n\t" "vfma.f32 s4, s21, s16\n\t" "vfma.f32 s5, s21, s18\n\t"
            "add %[t], %[p], %[wp]\n\t" "vldmia %[t], {s6-s18}\n\t"
            "vfma.f32 s0, s22, s6\n\t" "vfma.f32 s1, s22, s8\n\t" "vfma.f32 s2, s22, s10\n\t" "vfma.f32 s3, s22, s12\n\t" "vfma.f32 s4, s22, s14\n\t" "vfma.f32 s5, s22, s16\n\t"
            "vfma.f32 s0, s23, s7\n\t" "vfma.f32 s1, s23, s9\n\t" "vfma.f32 s2, s23, s11\n\t" "vfma.f32 s3, s23, s13\n\t" "vfma.f32 s4, s23, s15\n\t" "vfma.f32 s5, s23, s17\n\t"
            "vfma.f32 s0, s24, s8\n\t" "vfma.f32 s1, s24, s10\n\t" "vfma.f32 s2, s24, s12\n\t" "vfma.f32 s3, s24, s14\n\t" "vfma.f32 s4, s24, s16\n\t" "vfma.f32 s5, s24, s18\n\t"
            "add %[t], %[t], %[wp]\n\t" "vldmia %[t], {s6-s18}\n\t"
            "vfma.f32 s0, s25, s6\n\t" "vfma.f32 s1, s25, s8\n\t" "vfma.f32 s2, s25, s10\n\t" "vfma.f32 s3, s25, s12\n\t" "vfma.f32 s4, s25, s14\n\t" "vfma.f32 s5, s25, s16\n\t"
            "vfma.f32 s0, s26, s7\n\t" "vfma.f32 s1, s26, s9\n\t" "vfma.f32 s2, s26, s11\n\t" "vfma.f32 s3, s26, s13\n\t" "vfma.f32 s4, s26, s15\n\t" "vfma.f32 s5, s26, s17\n\t"
            "vfma.f32 s0, s27, s8\n\t" "vfma.f32 s1, s27, s10\n\t" "vfma.f32 s2, s27, s12\n\t" "vfma.f32 s3, s27, s14\n\t" "vfma.f32 s4, s27, s16\n\t" "vfma.f32 s5, s27, s18\n\t"
            "add %[p], %[p], #48\n\t"
            "vadd.f32 s6, s0, s1\n\t" "vadd.f32 s7, s2, s3\n\t" "vadd.f32 s8, s4, s5\n\t"
            "vadd.f32 s6, s6, s7\n\t" "vadd.f32 s6, s6, s8\n\t"
            "vcmp.f32 s6, s6\n\t" "vmrs APSR_nzcv, fpscr\n\t"
            "bvs 4f\n\t"
            "vmaxnm.f32 s0, s0, s28\n\t" "vmaxnm.f32 s1, s1, s28\n\t" "vmaxnm.f32 s2, s2, s28\n\t" "vmaxnm.f32 s3, s3, s28\n\t" "vmaxnm.f32 s4, s4, s28\n\t" "vmaxnm.f32 s5, s5, s28\n\t"
            "vminnm.f32 s0, s0, s29\n\t" "vminnm.f32 s1, s1, s29\n\t" "vminnm.f32 s2, s2, s29\n\t" "vminnm.f32 s3, s3, s29\n\t" "vminnm.f32 s4, s4, s29\n\t" "vminnm.f32 s5, s5, s29\n\t"
            "b 5f\n\t"
            "4:\n\t"
            "movs %[nan], #1\n\t"
            "5:\n\t"
            "vstmia %[y]!, {s0-s5}\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [p] "+r"(p), [t] "+r"(t), [y] "+r"(y), [n] "+r"(ntiles), [nan] "+r"(nan)
            : [prm] "r"(args), [wp] "r"(wp_bytes), [o_w] "i"(offsetof(mb_dw_args, w)),
              [o_lohi] "i"(offsetof(mb_dw_args, lohi))
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29");
    } else {
        __asm__ volatile(
            "ldr %[t], [%[prm], %[o_w]]\n\t"
            "vldmia %[t], {s19-s27}\n"
            "1:\n\t"
            "vldmia %[prm], {s0-s5}\n\t"
            "vldmia %[p], {s6-s18}\n\t"
            "vfma.f32 s0, s19, s6\n\t" "vfma.f32 s1, s19, s8\n\t" "vfma.f32 s2, s19, s10\n\t" "vfma.f32 s3, s19, s12\n\t" "vfma.f32 s4, s19, s14\n\t" "vfma.f32 s5, s19, s16\n\t"
            "vfma.f32 s0, s20, s7\n\t" "vfma.f32 s1, s20, s9\n\t" "vfma.f32 s2, s20, s11\n\t" "vfma.f32 s3, s20, s13\n\t" "vfma.f32 s4, s20, s15\n\t" "vfma.f32 s5, s20, s17\n\t"
            "vfma.f32 s0, s21, s8\n\t" "vfma.f32 s1, s21, s10\n\t" "vfma.f32 s2, s21, s12\n\t" "vfma.f32 s3, s21, s14\n\t" "vfma.f32 s4, s21, s16\n\t" "vfma.f32 s5, s21, s18\n\t"
            "add %[t], %[p], %[wp]\n\t" "vldmia %[t], {s6-s18}\n\t"
            "vfma.f32 s0, s22, s6\n\t" "vfma.f32 s1, s22, s8\n\t" "vfma.f32 s2, s22, s10\n\t" "vfma.f32 s3, s22, s12\n\t" "vfma.f32 s4, s22, s14\n\t" "vfma.f32 s5, s22, s16\n\t"
            "vfma.f32 s0, s23, s7\n\t" "vfma.f32 s1, s23, s9\n\t" "vfma.f32 s2, s23, s11\n\t" "vfma.f32 s3, s23, s13\n\t" "vfma.f32 s4, s23, s15\n\t" "vfma.f32 s5, s23, s17\n\t"
            "vfma.f32 s0, s24, s8\n\t" "vfma.f32 s1, s24, s10\n\t" "vfma.f32 s2, s24, s12\n\t" "vfma.f32 s3, s24, s14\n\t" "vfma.f32 s4, s24, s16\n\t" "vfma.f32 s5, s24, s18\n\t"
            "add %[t], %[t], %[wp]\n\t" "vldmia %[t], {s6-s18}\n\t"
            "vfma.f32 s0, s25, s6\n\t" "vfma.f32 s1, s25, s8\n\t" "vfma.f32 s2, s25, s10\n\t" "vfma.f32 s3, s25, s12\n\t" "vfma.f32 s4, s25, s14\n\t" "vfma.f32 s5, s25, s16\n\t"
            "vfma.f32 s0, s26, s7\n\t" "vfma.f32 s1, s26, s9\n\t" "vfma.f32 s2, s26, s11\n\t" "vfma.f32 s3, s26, s13\n\t" "vfma.f32 s4, s26, s15\n\t" "vfma.f32 s5, s26, s17\n\t"
            "vfma.f32 s0, s27, s8\n\t" "vfma.f32 s1, s27, s10\n\t" "vfma.f32 s2, s27, s12\n\t" "vfma.f32 s3, s27, s14\n\t" "vfma.f32 s4, s27, s16\n\t" "vfma.f32 s5, s27, s18\n\t"
            "add %[p], %[p], #48\n\t"
            "vstmia %[y]!, {s0-s5}\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [p] "+r"(p), [t] "+r"(t), [y] "+r"(y), [n] "+r"(ntiles)
            : [prm] "r"(args), [wp] "r"(wp_bytes), [o_w] "i"(offsetof(mb_dw_args, w))
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29");
    }
    return nan;
#else
    return mb_dw_row6_c(p, wp, args, y, ntiles, clamp, 2);
#endif
}

void mb_conv_dw3x3_f32_opt(const float *x, const float *w, const float *b, float *y,
                           int32_t n, int32_t c, int32_t h, int32_t wd, int32_t oh, int32_t ow,
                           int32_t sh, int32_t sw, int32_t pt, int32_t pl, float lo, float hi, float *scratch)
{
    const int32_t full = ow / 6, rem = ow - 6 * full, steps = full + (rem > 0);
    const int32_t wp = (6 * steps - 1) * sw + 3, hp = (oh - 1) * sh + 3;
    /* the input rows and columns that land inside the padded buffer */
    const int32_t r_end = h < hp - pt ? h : hp - pt, ncols = wd < wp - pl ? wd : wp - pl;
    const int clamp = !(lo == -INFINITY && hi == INFINITY);
    const float lohi[2] = {lo, hi};
    mb_dw_args args;
    float tail[6];
    args.lohi = lohi;
    for (int32_t t = 0; t < hp * wp; ++t) {
        scratch[t] = 0.0f; /* the border stays zero: every channel writes the same interior */
    }
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t ch = 0; ch < c; ++ch) {
            const float *xc = x + ((int64_t)bi * c + ch) * h * wd;
            float *yc = y + ((int64_t)bi * c + ch) * oh * ow;
            args.w = w + 9 * ch;
            for (int32_t o = 0; o < 6; ++o) {
                args.b6[o] = b ? b[ch] : 0.0f;
            }
            for (int32_t r = 0; r < r_end && ncols > 0; ++r) {
                mb_copy_floats(scratch + (int64_t)(r + pt) * wp + pl, xc + (int64_t)r * wd, ncols);
            }
            for (int32_t r = 0; r < oh; ++r) {
                const float *p = scratch + (int64_t)r * sh * wp;
                float *yr = yc + (int64_t)r * ow;
                /* The last step of a row writes 6 outputs: past the row's end it writes into the next
                 * row, computed afterwards; only the tensor's very last row goes through `tail`. */
                const int last = bi == n - 1 && ch == c - 1 && r == oh - 1;
                const int32_t direct = last ? full : steps;
                int nan = 0;
                if (sw == 1) {
                    nan = mb_dw_row6_s1(p, wp, &args, yr, direct, clamp);
                    if (direct < steps) {
                        nan |= mb_dw_row6_s1(p + 6 * full, wp, &args, tail, 1, clamp);
                    }
                } else {
                    nan = mb_dw_row6_s2(p, wp, &args, yr, direct, clamp);
                    if (direct < steps) {
                        nan |= mb_dw_row6_s2(p + 12 * full, wp, &args, tail, 1, clamp);
                    }
                }
                if (direct < steps) {
                    for (int32_t o = 0; o < rem; ++o) {
                        yr[6 * full + o] = tail[o];
                    }
                }
                if (nan) { /* a NaN (kept, as torch.clamp keeps it), or a core without VMAXNM */
                    for (int32_t o = 0; o < ow; ++o) {
                        yr[o] = mb_clampf(yr[o], lo, hi);
                    }
                }
            }
        }
    }
}
