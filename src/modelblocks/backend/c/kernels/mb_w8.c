#include "mb_w8.h"
#include "mb_common.h"

void mb_linear_w8_f32(const float *x, const int8_t *w, const float *scales, const float *b, float *y,
                      int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi)
{
    for (int32_t r = 0; r < rows; ++r) {
        const float *xr = x + (int64_t)r * in_features;
        float *yr = y + (int64_t)r * out_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const int8_t *wo = w + (int64_t)o * in_features;
            float acc = 0.0f;
            for (int32_t i = 0; i < in_features; ++i) {
                acc += xr[i] * (float)wo[i];
            }
            acc *= scales[o];
            if (b) {
                acc += b[o];
            }
            yr[o] = mb_clampf(acc, lo, hi);
        }
    }
}

void mb_conv_w8_f32(const float *x, const int8_t *w, const float *scales, const float *b, float *y,
                    int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                    int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                    int32_t dh, int32_t dw, int32_t groups, float lo, float hi)
{
    const int32_t cig = cin / groups;
    const int32_t cog = cout / groups;
    for (int32_t bi = 0; bi < n; ++bi) {
        for (int32_t o = 0; o < cout; ++o) {
            const int32_t c0 = (o / cog) * cig;
            const int8_t *wo = w + (int64_t)o * cig * kh * kw;
            const float scale = scales[o];
            const float bias = b ? b[o] : 0.0f;
            float *yo = y + ((int64_t)bi * cout + o) * oh * ow;
            for (int32_t r = 0; r < oh; ++r) {
                for (int32_t c = 0; c < ow; ++c) {
                    float acc = 0.0f;
                    for (int32_t ci = 0; ci < cig; ++ci) {
                        const float *xc = x + ((int64_t)bi * cin + c0 + ci) * h * wd;
                        const int8_t *wc = wo + (int64_t)ci * kh * kw;
                        for (int32_t i = 0; i < kh; ++i) {
                            const int32_t ih = r * sh - pt + i * dh;
                            if (ih < 0 || ih >= h) {
                                continue; /* zero padding contributes nothing */
                            }
                            for (int32_t j = 0; j < kw; ++j) {
                                const int32_t iw = c * sw - pl + j * dw;
                                if (iw >= 0 && iw < wd) {
                                    acc += xc[(int64_t)ih * wd + iw] * (float)wc[i * kw + j];
                                }
                            }
                        }
                    }
                    yo[(int64_t)r * ow + c] = mb_clampf(acc * scale + bias, lo, hi);
                }
            }
        }
    }
}

int32_t mb_embedding_w8_f32(const int8_t *w, const float *scales, const int32_t *idx, float *y,
                            int32_t count, int32_t num, int32_t dim)
{
    int32_t bad = 0;
    for (int32_t t = 0; t < count; ++t) {
        float *yt = y + (int64_t)t * dim;
        /* [-num, 0) counts from the end, as NumPy and ONNX Gather do */
        const int32_t i = (idx[t] < 0 && idx[t] >= -num) ? idx[t] + num : idx[t];
        if (i < 0 || i >= num) {
            ++bad;
            for (int32_t d = 0; d < dim; ++d) {
                yt[d] = 0.0f;
            }
            continue;
        }
        const int8_t *wi = w + (int64_t)i * dim;
        const float scale = scales[i];
        for (int32_t d = 0; d < dim; ++d) {
            yt[d] = scale * (float)wi[d];
        }
    }
    return bad;
}
