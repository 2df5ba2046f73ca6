#include "mb_conv.h"
#include "mb_common.h"

void mb_conv_f32(const float *x, const float *w, const float *b, float *y,
                 int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                 int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                 int32_t dh, int32_t dw, int32_t groups, float lo, float hi)
{
    const int32_t cig = cin / groups;
    const int32_t cog = cout / groups;
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t o = 0; o < cout; ++o) {
            const int32_t c0 = (o / cog) * cig;
            const float *wo = w + (int64_t)o * cig * kh * kw;
            float *yo = y + ((int64_t)bi * cout + o) * oh * ow;
            for (int32_t r = 0; r < oh; ++r) {
                for (int32_t c = 0; c < ow; ++c) {
                    float acc = b ? b[o] : 0.0f;
                    for (int32_t ci = 0; ci < cig; ++ci) {
                        const float *xc = x + ((int64_t)bi * cin + c0 + ci) * h * wd;
                        const float *wc = wo + (int64_t)ci * kh * kw;
                        for (int32_t i = 0; i < kh; ++i) {
                            const int32_t ih = r * sh - pt + i * dh;
                            if (ih < 0 || ih >= h) {
                                continue; /* zero padding contributes nothing */
                            }
                            for (int32_t j = 0; j < kw; ++j) {
                                const int32_t iw = c * sw - pl + j * dw;
                                if (iw >= 0 && iw < wd) {
                                    acc += xc[(int64_t)ih * wd + iw] * wc[i * kw + j];
                                }
                            }
                        }
                    }
                    yo[(int64_t)r * ow + c] = mb_clampf(acc, lo, hi);
                }
            }
        }
    }
}

void mb_conv_transpose_f32(const float *x, const float *w, const float *b, float *y,
                           int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                           int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                           int32_t dh, int32_t dw, int32_t groups, float lo, float hi)
{
    const int32_t cig = cin / groups;
    const int32_t cog = cout / groups;
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t o = 0; o < cout; ++o) {
            const int32_t g = o / cog;
            const int32_t ol = o - g * cog;
            float *yo = y + ((int64_t)bi * cout + o) * oh * ow;
            for (int32_t r = 0; r < oh; ++r) {
                for (int32_t c = 0; c < ow; ++c) {
                    float acc = b ? b[o] : 0.0f;
                    for (int32_t ci = g * cig; ci < (g + 1) * cig; ++ci) {
                        const float *xc = x + ((int64_t)bi * cin + ci) * h * wd;
                        const float *wc = w + ((int64_t)ci * cog + ol) * kh * kw;
                        for (int32_t i = 0; i < kh; ++i) {
                            /* input row ih scatters to r = ih * sh - ph + i * dh: invert that */
                            const int32_t th = r + ph - i * dh;
                            if (th < 0 || th % sh != 0 || th / sh >= h) {
                                continue;
                            }
                            for (int32_t j = 0; j < kw; ++j) {
                                const int32_t tw = c + pw - j * dw;
                                if (tw >= 0 && tw % sw == 0 && tw / sw < wd) {
                                    acc += xc[(int64_t)(th / sh) * wd + tw / sw] * wc[i * kw + j];
                                }
                            }
                        }
                    }
                    yo[(int64_t)r * ow + c] = mb_clampf(acc, lo, hi);
                }
            }
        }
    }
}
