#include "mb_q_conv.h"
#include "mb_quant.h"

/* first tap t with 0 <= base + t * d (base may be negative), and one past the last tap with base + t * d < size */
static int32_t mb_q_conv_first(int32_t base, int32_t d)
{
    return base >= 0 ? 0 : (-base + d - 1) / d;
}

static int32_t mb_q_conv_end(int32_t base, int32_t d, int32_t size, int32_t k)
{
    if (base >= size) {
        return 0;
    }
    const int32_t e = (size - 1 - base) / d + 1;
    return e < k ? e : k;
}

void mb_q_conv_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult, const int8_t *shift,
                  int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                  int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl, int32_t dh, int32_t dw,
                  int32_t groups, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    const int32_t cig = cin / groups;
    const int32_t cog = cout / groups;
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t o = 0; o < cout; ++o) {
            const int32_t c0 = (o / cog) * cig;
            const int8_t *wo = w + (int64_t)o * cig * kh * kw;
            int8_t *yo = y + ((int64_t)bi * cout + o) * oh * ow;
            for (int32_t r = 0; r < oh; ++r) {
                const int32_t ih0 = r * sh - pt;
                const int32_t i0 = mb_q_conv_first(ih0, dh), i1 = mb_q_conv_end(ih0, dh, h, kh);
                for (int32_t c = 0; c < ow; ++c) {
                    const int32_t iw0 = c * sw - pl;
                    const int32_t j0 = mb_q_conv_first(iw0, dw), j1 = mb_q_conv_end(iw0, dw, wd, kw);
                    int32_t acc = bias[o];
                    for (int32_t ci = 0; ci < cig; ++ci) {
                        const int8_t *xc = x + ((int64_t)bi * cin + c0 + ci) * h * wd;
                        const int8_t *wc = wo + (int64_t)ci * kh * kw;
                        for (int32_t i = i0; i < i1; ++i) {
                            const int8_t *xr = xc + (int64_t)(ih0 + i * dh) * wd;
                            const int8_t *wr = wc + i * kw;
                            for (int32_t j = j0; j < j1; ++j) {
                                acc += ((int32_t)xr[iw0 + j * dw] - in_zp) * (int32_t)wr[j];
                            }
                        }
                    }
                    yo[(int64_t)r * ow + c] = mb_q_output(acc, mult[o], shift[o], out_zp, act_min, act_max);
                }
            }
        }
    }
}

void mb_q_depthwise_conv_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                            const int8_t *shift, int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd,
                            int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
                            int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp, int32_t out_zp,
                            int32_t act_min, int32_t act_max)
{
    const int32_t mult_per_channel = cout / cin;
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t o = 0; o < cout; ++o) {
            const int8_t *xc = x + ((int64_t)bi * cin + o / mult_per_channel) * h * wd;
            const int8_t *wo = w + (int64_t)o * kh * kw;
            const int32_t bo = bias[o], mo = mult[o], so = shift[o];
            int8_t *yo = y + ((int64_t)bi * cout + o) * oh * ow;
            for (int32_t r = 0; r < oh; ++r) {
                const int32_t ih0 = r * sh - pt;
                const int32_t i0 = mb_q_conv_first(ih0, dh), i1 = mb_q_conv_end(ih0, dh, h, kh);
                for (int32_t c = 0; c < ow; ++c) {
                    const int32_t iw0 = c * sw - pl;
                    const int32_t j0 = mb_q_conv_first(iw0, dw), j1 = mb_q_conv_end(iw0, dw, wd, kw);
                    int32_t acc = bo;
                    for (int32_t i = i0; i < i1; ++i) {
                        const int8_t *xr = xc + (int64_t)(ih0 + i * dh) * wd;
                        const int8_t *wr = wo + i * kw;
                        for (int32_t j = j0; j < j1; ++j) {
                            acc += ((int32_t)xr[iw0 + j * dw] - in_zp) * (int32_t)wr[j];
                        }
                    }
                    yo[(int64_t)r * ow + c] = mb_q_output(acc, mo, so, out_zp, act_min, act_max);
                }
            }
        }
    }
}
