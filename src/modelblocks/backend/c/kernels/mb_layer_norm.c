#include "mb_layer_norm.h"
#include "mb_common.h"

void mb_layer_norm_f32(const float *x, const float *w, const float *b, float *y,
                       int32_t rows, int32_t cols, float eps)
{
    if (cols <= 0) {
        return;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const float *xr = x + (int64_t)r * cols;
        float *yr = y + (int64_t)r * cols;
        /* Two passes (mean, then squared deviations) instead of E[x^2] - E[x]^2, which loses
         * the variance to cancellation when |mean| >> std. */
        /* Sum deviations from the first element: a plain float sum of values with a large
         * common offset loses the mean to rounding (error ~ |mean| * sqrt(cols) * eps). */
        const float shift = xr[0];
        float sum = 0.0f;
        for (int32_t i = 0; i < cols; ++i) {
            sum += xr[i] - shift;
        }
        const float mean = shift + sum / (float)cols;
        float sq = 0.0f;
        for (int32_t i = 0; i < cols; ++i) {
            const float d = xr[i] - mean;
            sq += d * d;
        }
        const float rstd = 1.0f / sqrtf(sq / (float)cols + eps);
        for (int32_t i = 0; i < cols; ++i) {
            float v = (xr[i] - mean) * rstd;
            if (w) {
                v *= w[i];
            }
            if (b) {
                v += b[i];
            }
            yr[i] = v;
        }
    }
}
