#include "mb_linear_f32_opt.h"
#include "mb_common.h"
#include "mb_gemm_f32_opt.h"

void mb_linear_f32_opt(const float *x, const float *wp, const float *b, float *y,
                       int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi,
                       float *scratch)
{
    const int32_t full = out_features / 4, rem = out_features % 4;
    const float bounds[2] = {lo, hi};
    const float *lohi = mb_lohi_f32_opt(bounds);
    const float *w_last = wp + (int64_t)full * in_features * 4; /* [in_features][rem] */
    float *x_panel = scratch;
    float init[16];
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) { /* 4 rows x 4 outputs per tile: the rows are the panel a */
        mb_pack4_f32_opt(x_panel, x + (int64_t)r * in_features, in_features, 4, in_features);
        float *yr = y + (int64_t)r * out_features;
        for (int32_t q = 0; q < full; ++q) {
            for (int32_t j = 0; j < 4; ++j) {
                init[j] = b ? b[4 * q + j] : 0.0f;
            }
            for (int32_t t = 4; t < 16; ++t) {
                init[t] = init[t - 4];
            }
            if (mb_gemm4x4_f32_opt(x_panel, wp + (int64_t)q * in_features * 4, 4, in_features, init, 0,
                                   yr + 4 * q, out_features, lohi)) {
                mb_clamp_rows_f32_opt(yr + 4 * q, out_features, 4, 4, lohi);
            }
        }
        if (rem) { /* outputs 4 full + i of the 4 rows */
            mb_gemm_rows_f32_opt(w_last, rem, x_panel, 4, in_features, b ? b + 4 * full : NULL, yr + 4 * full, 1,
                                 out_features, 4, lohi);
        }
    }
    for (; r < rows; ++r) { /* the other rows: 4 outputs at a time */
        const float *xr = x + (int64_t)r * in_features;
        float *yr = y + (int64_t)r * out_features;
        for (int32_t q = 0; q < full; ++q) {
            for (int32_t j = 0; j < 4; ++j) {
                init[j] = b ? b[4 * q + j] : 0.0f;
            }
            if (mb_gemv4_f32_opt(wp + (int64_t)q * in_features * 4, xr, in_features, init, yr + 4 * q, lohi)) {
                mb_clamp_rows_f32_opt(yr + 4 * q, 4, 1, 4, lohi);
            }
        }
        if (rem) {
            mb_gemv_rows_f32_opt(w_last, rem, xr, in_features, b ? b + 4 * full : NULL, yr + 4 * full, lohi);
        }
    }
}
