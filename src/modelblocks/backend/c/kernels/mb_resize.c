#include "mb_resize.h"
#include "mb_common.h"

void mb_upsample_nearest_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                             int32_t oh, int32_t ow, const int32_t *rows, const int32_t *cols)
{
    for (int32_t p = 0; p < planes; ++p) {
        const float *xp = x + (int64_t)p * h * w;
        float *yp = y + (int64_t)p * oh * ow;
        for (int32_t r = 0; r < oh; ++r) {
            const float *xr = xp + (int64_t)rows[r] * w;
            for (int32_t c = 0; c < ow; ++c) {
                yp[(int64_t)r * ow + c] = xr[cols[c]];
            }
        }
    }
}

void mb_upsample_linear_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                            int32_t oh, int32_t ow, const int32_t *rows, const int32_t *cols,
                            const float *row_w, const float *col_w)
{
    for (int32_t p = 0; p < planes; ++p) {
        const float *xp = x + (int64_t)p * h * w;
        float *yp = y + (int64_t)p * oh * ow;
        for (int32_t r = 0; r < oh; ++r) {
            const float *x0 = xp + (int64_t)rows[r] * w;
            const float *x1 = xp + (int64_t)rows[oh + r] * w;
            const float wr0 = row_w[r], wr1 = row_w[oh + r];
            for (int32_t c = 0; c < ow; ++c) {
                const int32_t c0 = cols[c], c1 = cols[ow + c];
                const float wc0 = col_w[c], wc1 = col_w[ow + c];
                yp[(int64_t)r * ow + c] = wr0 * (wc0 * x0[c0] + wc1 * x0[c1]) + wr1 * (wc0 * x1[c0] + wc1 * x1[c1]);
            }
        }
    }
}

void mb_pad_f32(const float *x, float *y, int32_t rank, const int32_t *in_shape, const int32_t *out_shape,
                const int32_t *begin, int32_t mode, float value)
{
    int64_t total = 1;
    for (int32_t d = 0; d < rank; ++d) {
        total *= out_shape[d];
    }
    for (int64_t o = 0; o < total; ++o) {
        /* decompose o into coordinates from the last dimension, building the source offset */
        int64_t rem = o, src = 0, stride = 1;
        int inside = 1;
        for (int32_t d = rank - 1; d >= 0; --d) {
            const int32_t n = in_shape[d];
            int32_t i = (int32_t)(rem % out_shape[d]) - begin[d];
            rem /= out_shape[d];
            if (i < 0 || i >= n) {
                if (mode == 0) {
                    inside = 0;
                    break;
                } else if (mode == 1) {
                    i = i < 0 ? -i : 2 * (n - 1) - i;
                } else if (mode == 2) {
                    i = i < 0 ? 0 : n - 1;
                } else {
                    i = ((i % n) + n) % n;
                }
            }
            src += (int64_t)i * stride;
            stride *= n;
        }
        y[o] = inside ? x[src] : value;
    }
}
