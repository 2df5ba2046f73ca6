/* Optimised int8 convolutions (NCHW, groups = 1): the reference kernels' arithmetic (mb_q_conv.c), bit
 * for bit.
 *
 * rows: the input rows an output row reads are kept as int16 (x - in_zp) in a ring of
 * R = (kh - 1) * dh + 1 rows in `buf` (R + sh when the output width is odd: see below), channels
 * innermost (HWC) and zeros in the padding, each input row converted once. For two neighbouring output
 * positions (in plane order: a pair may span two rows), their patches are copied from the ring
 * into two interleaved int16 columns (mb_q_gemm.c), segment by segment: a kernel row (kw * cin values,
 * contiguous in HWC) when dw == 1, else one tap (cin values); each segment padded to a multiple of 4.
 * Then the SMLAD GEMM core computes two output channels x two positions at a time, the
 * requantization fused into its stores. Weights come packed offline in the same k order (i, j, c)
 * (ops/q_conv.py `conv_weight_matrix`, then q_linear.py `pack_gemm_stream`). The depthwise kernel is
 * mb_q_depthwise_opt.c. */
#include "mb_q_conv_opt.h"
#include "mb_q_gemm.h"

static int32_t mb_round4(int32_t v)
{
    return (v + 3) & ~3;
}

static int32_t mb_ring_slot(int32_t row, int32_t rows)
{
    const int32_t m = row % rows;
    return m < 0 ? m + rows : m;
}

/* Input row ih (any row: outside the image it is all padding) into a ring row of wp * cin int16. */
static void mb_q_conv_load_row(const int8_t *xb, int16_t *dst, int32_t cin, int32_t h, int32_t wd, int32_t wp,
                               int32_t pl, int32_t ih, int32_t in_zp)
{
    const int32_t first = pl < wp ? pl : wp, last = (wd + pl < wp) ? wd + pl : wp; /* columns with image data */
    if (ih < 0 || ih >= h) {
        memset(dst, 0, (size_t)(wp * cin) * sizeof(int16_t));
        return;
    }
    memset(dst, 0, (size_t)(first * cin) * sizeof(int16_t));
    memset(dst + last * cin, 0, (size_t)((wp - last) * cin) * sizeof(int16_t));
    for (int32_t c = 0; c < cin; ++c) {
        const int8_t *src = xb + ((int64_t)c * h + ih) * wd - pl;
        int16_t *d = dst + c;
        for (int32_t p = first; p < last; ++p) {
            d[p * cin] = (int16_t)(src[p] - in_zp);
        }
    }
}

/* Copy `len` int16 into a column slot of an interleaved pair at `dst` (a group's first value), four
 * at a time (two words: LDR/STR take any alignment on Armv7-M); returns the next group's place. A
 * segment whose length is not a multiple of 4 takes up to 3 values past its end with it: their weights
 * are zero (the segments are padded so in the packed weights), and they are initialised int16 of the
 * same range (the next ring values, or the column buffer behind the ring), so they add nothing. */
static int16_t *mb_q_conv_copy_segment(const int16_t *src, int32_t len, int16_t *dst)
{
    for (int32_t t = 0; t < len; t += 4) {
        memcpy(dst, src + t, 8);
        dst += 8;
    }
    return dst;
}

/* A 1x1 convolution with stride 1 and no padding reads its two positions' channels straight from the
 * NCHW input (no ring): column slot 1 gets position p, slot 2 position p + 1 (`ncols` 2; a lone
 * position leaves slot 2 as it was); zeros pad the channels to `groups` * 4. */
static void mb_q_pack_pointwise(const int8_t *x, int32_t plane, int32_t cin, int32_t ncols, int16_t *cols,
                                int32_t groups, int32_t in_zp)
{
    const int32_t step = 8;
    int16_t *dst = cols;
    int32_t c = 0;
    for (; c + 4 <= cin; c += 4) {
        for (int32_t t = 0; t < 4; ++t) {
            const int8_t *src = x + (int64_t)(c + t) * plane;
            dst[t] = (int16_t)(src[0] - in_zp);
            if (ncols == 2) {
                dst[t + 4] = (int16_t)(src[1] - in_zp);
            }
        }
        dst += step;
    }
    for (int32_t g = c / 4; g < groups; ++g, c += 4) {
        for (int32_t t = 0; t < step; ++t) {
            dst[t] = 0;
        }
        for (int32_t t = 0; t < 4 && c + t < cin; ++t) {
            const int8_t *src = x + (int64_t)(c + t) * plane;
            dst[t] = (int16_t)(src[0] - in_zp);
            if (ncols == 2) {
                dst[t + 4] = (int16_t)(src[1] - in_zp);
            }
        }
        dst += step;
    }
}

void mb_q_conv_s8_rows(const int8_t *x, const int32_t *stream, int8_t *y, int32_t n, int32_t cin, int32_t h,
                       int32_t wd, int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
                       int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp, int32_t out_zp, int32_t act_min,
                       int32_t act_max, int16_t *buf)
{
    const int32_t rows = (kh - 1) * dh + 1;          /* input rows an output row reads */
    const int32_t ring = rows + (ow % 2 ? sh : 0);   /* ... and those of the next one when pairs span rows */
    const int32_t wp = (ow - 1) * sw + (kw - 1) * dw + 1;
    const int32_t row_len = wp * cin;
    /* a 1x1 convolution with stride 1 and no padding reads its columns straight from the input */
    const int pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && oh == h && ow == wd;
    int16_t *cols = pointwise ? buf : buf + mb_round4(ring * row_len);
    const int32_t seg_len = dw == 1 ? kw * cin : cin;
    const int32_t segs_per_row = dw == 1 ? 1 : kw, segments = kh * segs_per_row;
    const int32_t groups = ((segments * mb_round4(seg_len) / 4) + 1) & ~1; /* even: K padded to 8 */
    const int32_t plane = oh * ow;
    memset(cols, 0, (size_t)groups * 8 * sizeof(int16_t)); /* a lone column's unused partner */
    for (int32_t b = 0; b < n; ++b) {
        const int8_t *xb = x + (int64_t)b * cin * h * wd;
        int8_t *yb = y + (int64_t)b * cout * plane;
        if (pointwise) { /* positions pair up across rows, the output plane being contiguous too */
            for (int32_t p = 0; p < plane; p += 2) {
                const int32_t ncols = plane - p >= 2 ? 2 : 1;
                mb_q_pack_pointwise(xb + p, plane, cin, ncols, cols, groups, in_zp);
                mb_q_gemm_s8(stream, cols, groups, ncols, cout, yb + p, plane, 1, out_zp, act_min,
                             act_max);
            }
            continue;
        }
        /* Positions pair up in the order of the output plane, so when ow is odd a pair can span two output
         * rows: the ring then holds sh more input rows, those of the next output row too. */
        int32_t loaded = -pt - 1;               /* input rows up to `loaded` are in the ring */
        int32_t seg_row = -1;                   /* the output row whose segment starts are in seg_src */
        const int16_t *seg_src[MB_Q_ROWS_MAX_SEGMENTS]; /* where each segment starts for column 0 */
        int32_t r = 0, c = 0;                   /* the next position's output row and column */
        for (int32_t p = 0; p < plane; p += 2) {
            const int32_t ncols = plane - p >= 2 ? 2 : 1;
            for (int32_t col = 0; col < ncols; ++col) { /* a lone position's partner slot keeps its values */
                if (r != seg_row) {
                    const int32_t ih0 = r * sh - pt;
                    for (int32_t ih = (loaded + 1 > ih0 ? loaded + 1 : ih0); ih < ih0 + rows; ++ih) {
                        mb_q_conv_load_row(xb, buf + (int64_t)mb_ring_slot(ih, ring) * row_len, cin, h, wd, wp, pl,
                                           ih, in_zp);
                        loaded = ih;
                    }
                    for (int32_t i = 0, k = 0; i < kh; ++i) {
                        const int16_t *row = buf + (int64_t)mb_ring_slot(ih0 + i * dh, ring) * row_len;
                        for (int32_t j = 0; j < segs_per_row; ++j) {
                            seg_src[k++] = row + j * dw * cin;
                        }
                    }
                    seg_row = r;
                }
                const int32_t at = c * sw * cin;
                int16_t *dst = cols + (col ? 4 : 0);
                for (int32_t k = 0; k < segments; ++k) {
                    dst = mb_q_conv_copy_segment(seg_src[k] + at, seg_len, dst);
                } /* the zero-weight group that makes K a multiple of 8 keeps stale values too */
                if (++c == ow) {
                    c = 0;
                    ++r;
                }
            }
            mb_q_gemm_s8(stream, cols, groups, ncols, cout, yb + p, plane, 1, out_zp, act_min, act_max);
        }
    }
}
