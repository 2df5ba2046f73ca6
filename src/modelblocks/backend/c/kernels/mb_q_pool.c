#include "mb_q_pool.h"
#include "mb_common.h"
#include "mb_quant.h"

/* num / den rounded half away from zero, den > 0 (TFLite's average pooling rounding). */
static inline int32_t mb_q_div_round(int32_t num, int32_t den)
{
    return num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
}

static inline int8_t mb_q_sat(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

void mb_q_max_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                      int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                      int32_t dh, int32_t dw)
{
    for (int32_t p = 0; p < planes; ++p) {
        const int8_t *xp = x + (int64_t)p * h * w;
        int8_t *yp = y + (int64_t)p * oh * ow;
        for (int32_t r = 0; r < oh; ++r) {
            for (int32_t c = 0; c < ow; ++c) {
                int32_t m = -128;
                for (int32_t i = 0; i < kh; ++i) {
                    const int32_t ih = r * sh - ph + i * dh;
                    if (ih < 0 || ih >= h) {
                        continue;
                    }
                    for (int32_t j = 0; j < kw; ++j) {
                        const int32_t iw = c * sw - pw + j * dw;
                        if (iw >= 0 && iw < w && xp[(int64_t)ih * w + iw] > m) {
                            m = xp[(int64_t)ih * w + iw];
                        }
                    }
                }
                yp[(int64_t)r * ow + c] = (int8_t)m;
            }
        }
    }
}

void mb_q_avg_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                      int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                      int32_t count_include_pad, int32_t divisor, int32_t zp)
{
    for (int32_t r = 0; r < oh; ++r) {
        for (int32_t c = 0; c < ow; ++c) {
            int32_t h0 = r * sh - ph, w0 = c * sw - pw;
            int32_t h1 = h0 + kh < h + ph ? h0 + kh : h + ph;
            int32_t w1 = w0 + kw < w + pw ? w0 + kw : w + pw;
            const int32_t padded_size = (h1 - h0) * (w1 - w0);
            h0 = h0 > 0 ? h0 : 0;
            w0 = w0 > 0 ? w0 : 0;
            h1 = h1 < h ? h1 : h;
            w1 = w1 < w ? w1 : w;
            const int32_t empty = h0 >= h1 || w0 >= w1;
            int32_t div = divisor;
            if (div == 0) {
                div = count_include_pad ? padded_size : (h1 - h0) * (w1 - w0);
            }
            for (int32_t p = 0; p < planes; ++p) {
                const int8_t *xp = x + (int64_t)p * h * w;
                int32_t acc = 0;
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        acc += (int32_t)xp[(int64_t)i * w + j] - zp;
                    }
                }
                y[((int64_t)p * oh + r) * ow + c] = empty ? (int8_t)zp : mb_q_sat(zp + mb_q_div_round(acc, div));
            }
        }
    }
}

/* PyTorch's adaptive bins (as in mb_pool.c). */
static inline int32_t mb_q_bin_start(int32_t i, int32_t in, int32_t out)
{
    return (int32_t)(((int64_t)i * in) / out);
}

static inline int32_t mb_q_bin_end(int32_t i, int32_t in, int32_t out)
{
    return (int32_t)(((int64_t)(i + 1) * in + out - 1) / out);
}

void mb_q_adaptive_avg_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w,
                               int32_t oh, int32_t ow, int32_t zp)
{
    for (int32_t r = 0; r < oh; ++r) {
        const int32_t h0 = mb_q_bin_start(r, h, oh), h1 = mb_q_bin_end(r, h, oh);
        for (int32_t c = 0; c < ow; ++c) {
            const int32_t w0 = mb_q_bin_start(c, w, ow), w1 = mb_q_bin_end(c, w, ow);
            const int32_t count = (h1 - h0) * (w1 - w0);
            for (int32_t p = 0; p < planes; ++p) {
                const int8_t *xp = x + (int64_t)p * h * w;
                int32_t acc = 0;
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        acc += (int32_t)xp[(int64_t)i * w + j] - zp;
                    }
                }
                y[((int64_t)p * oh + r) * ow + c] = mb_q_sat(zp + mb_q_div_round(acc, count));
            }
        }
    }
}

void mb_q_adaptive_max_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w,
                               int32_t oh, int32_t ow)
{
    for (int32_t r = 0; r < oh; ++r) {
        const int32_t h0 = mb_q_bin_start(r, h, oh), h1 = mb_q_bin_end(r, h, oh);
        for (int32_t c = 0; c < ow; ++c) {
            const int32_t w0 = mb_q_bin_start(c, w, ow), w1 = mb_q_bin_end(c, w, ow);
            for (int32_t p = 0; p < planes; ++p) {
                const int8_t *xp = x + (int64_t)p * h * w;
                int32_t m = -128;
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        m = xp[(int64_t)i * w + j] > m ? xp[(int64_t)i * w + j] : m;
                    }
                }
                y[((int64_t)p * oh + r) * ow + c] = (int8_t)m;
            }
        }
    }
}

/* Advance an odometer over `dims`, last dimension fastest; returns the element offset change. */
static int64_t mb_q_step(int32_t *idx, const int32_t *dims, const int32_t *strides, int32_t rank)
{
    int64_t delta = 0;
    for (int32_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < dims[d]) {
            return delta + strides[d];
        }
        delta -= (int64_t)(dims[d] - 1) * strides[d];
        idx[d] = 0;
    }
    return delta;
}

void mb_q_mean_s8(const int8_t *x, int8_t *y, int32_t out_rank, const int32_t *out_dims, const int32_t *out_strides,
                  int32_t red_rank, const int32_t *red_dims, const int32_t *red_strides,
                  int32_t in_zp, int32_t left_shift, int32_t mult, int32_t shift, int32_t out_zp)
{
    int32_t oidx[MB_MAX_RANK] = {0};
    int32_t ridx[MB_MAX_RANK] = {0};
    const int32_t scale = (int32_t)1 << left_shift;
    if (out_rank > MB_MAX_RANK || red_rank > MB_MAX_RANK) {
        return;
    }
    const int64_t outs = mb_numel(out_dims, out_rank), count = mb_numel(red_dims, red_rank);
    int64_t base = 0;
    for (int64_t o = 0; o < outs; ++o) {
        int64_t off = base;
        int32_t acc = 0;
        for (int64_t r = 0; r < count; ++r) {
            acc += (int32_t)x[off] - in_zp;
            off += mb_q_step(ridx, red_dims, red_strides, red_rank);
        }
        const int64_t v = (int64_t)mb_requantize(acc * scale, mult, shift) + out_zp;
        y[o] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
        base += mb_q_step(oidx, out_dims, out_strides, out_rank);
    }
}
