#include "mb_softmax.h"
#include "mb_common.h"

static void mb_softmax_impl(const float *x, float *y, int32_t outer, int32_t n, int32_t inner, int log_out)
{
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t j = 0; j < inner; ++j) {
            const int64_t base = (int64_t)o * n * inner + j;
            const float *xr = x + base;
            float *yr = y + base;
            float m = -INFINITY;
            for (int32_t i = 0; i < n; ++i) {
                const float v = xr[(int64_t)i * inner];
                m = (v > m || v != v) ? v : m;
            }
            /* A row of -inf (fully masked) gives NaN, as in torch: m is then -inf and
             * -inf - -inf is NaN. */
            /* compensated (Kahan) sum: a plain float sum of n terms drifts by ~sqrt(n) ulp,
             * which exceeds 1e-5 relative for rows of a few thousand */
            float sum = 0.0f, comp = 0.0f;
            for (int32_t i = 0; i < n; ++i) {
                const float term = expf(xr[(int64_t)i * inner] - m) - comp;
                const float next = sum + term;
                comp = (next - sum) - term;
                sum = next;
            }
            if (log_out) {
                const float ls = logf(sum);
                for (int32_t i = 0; i < n; ++i) {
                    yr[(int64_t)i * inner] = (xr[(int64_t)i * inner] - m) - ls;
                }
            } else {
                for (int32_t i = 0; i < n; ++i) {
                    yr[(int64_t)i * inner] = expf(xr[(int64_t)i * inner] - m) / sum;
                }
            }
        }
    }
}

void mb_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner)
{
    mb_softmax_impl(x, y, outer, n, inner, 0);
}

void mb_log_softmax_f32(const float *x, float *y, int32_t outer, int32_t n, int32_t inner)
{
    mb_softmax_impl(x, y, outer, n, inner, 1);
}
