#include "mb_pool.h"
#include "mb_common.h"

void mb_max_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                     int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                     int32_t dh, int32_t dw)
{
    for (int32_t p = 0; p < planes; ++p) {
        const float *xp = x + (int64_t)p * h * w;
        float *yp = y + (int64_t)p * oh * ow;
        for (int32_t r = 0; r < oh; ++r) {
            for (int32_t c = 0; c < ow; ++c) {
                float m = -INFINITY;
                for (int32_t i = 0; i < kh; ++i) {
                    const int32_t ih = r * sh - ph + i * dh;
                    if (ih < 0 || ih >= h) {
                        continue;
                    }
                    for (int32_t j = 0; j < kw; ++j) {
                        const int32_t iw = c * sw - pw + j * dw;
                        if (iw >= 0 && iw < w) {
                            const float v = xp[(int64_t)ih * w + iw];
                            if (v > m || isnan(v)) {
                                m = v;
                            }
                        }
                    }
                }
                yp[(int64_t)r * ow + c] = m;
            }
        }
    }
}

void mb_avg_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                     int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                     int32_t count_include_pad, int32_t divisor)
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
            int32_t div = divisor;
            if (div == 0) {
                div = count_include_pad ? padded_size : (h1 - h0) * (w1 - w0);
            }
            for (int32_t p = 0; p < planes; ++p) {
                const float *xp = x + (int64_t)p * h * w;
                mb_sum_f32 sum = {0.0f, 0.0f};
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        mb_sum_add(&sum, xp[(int64_t)i * w + j]);
                    }
                }
                const float acc = mb_sum_value(&sum);
                /* an empty window (possible only in odd ceil_mode cases) gives 0, as in PyTorch */
                y[((int64_t)p * oh + r) * ow + c] = (h0 < h1 && w0 < w1) ? acc / (float)div : 0.0f;
            }
        }
    }
}

/* PyTorch's adaptive bins: output i of `out` covers [floor(i*in/out), ceil((i+1)*in/out)). */
static inline int32_t mb_bin_start(int32_t i, int32_t in, int32_t out)
{
    return (int32_t)(((int64_t)i * in) / out);
}

static inline int32_t mb_bin_end(int32_t i, int32_t in, int32_t out)
{
    return (int32_t)(((int64_t)(i + 1) * in + out - 1) / out);
}

void mb_adaptive_avg_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                              int32_t oh, int32_t ow)
{
    for (int32_t r = 0; r < oh; ++r) {
        const int32_t h0 = mb_bin_start(r, h, oh), h1 = mb_bin_end(r, h, oh);
        for (int32_t c = 0; c < ow; ++c) {
            const int32_t w0 = mb_bin_start(c, w, ow), w1 = mb_bin_end(c, w, ow);
            const float count = (float)((h1 - h0) * (w1 - w0));
            for (int32_t p = 0; p < planes; ++p) {
                const float *xp = x + (int64_t)p * h * w;
                mb_sum_f32 sum = {0.0f, 0.0f};
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        mb_sum_add(&sum, xp[(int64_t)i * w + j]);
                    }
                }
                const float acc = mb_sum_value(&sum);
                y[((int64_t)p * oh + r) * ow + c] = acc / count;
            }
        }
    }
}

void mb_adaptive_max_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                              int32_t oh, int32_t ow)
{
    for (int32_t r = 0; r < oh; ++r) {
        const int32_t h0 = mb_bin_start(r, h, oh), h1 = mb_bin_end(r, h, oh);
        for (int32_t c = 0; c < ow; ++c) {
            const int32_t w0 = mb_bin_start(c, w, ow), w1 = mb_bin_end(c, w, ow);
            for (int32_t p = 0; p < planes; ++p) {
                const float *xp = x + (int64_t)p * h * w;
                float m = -INFINITY;
                for (int32_t i = h0; i < h1; ++i) {
                    for (int32_t j = w0; j < w1; ++j) {
                        const float v = xp[(int64_t)i * w + j];
                        if (v > m || isnan(v)) {
                            m = v;
                        }
                    }
                }
                y[((int64_t)p * oh + r) * ow + c] = m;
            }
        }
    }
}
