#ifndef MB_POOL_H
#define MB_POOL_H
#include <stdint.h>

/* Pooling over the last two dimensions of `planes` independent [h][w] planes (N * C of NCHW).
 * x [planes][h][w] -> y [planes][oh][ow]. 1-D pooling is h = oh = kh = sh = 1, ph = 0.
 * Window (r, c) starts at input row r * sh - ph and column c * sw - pw; the output sizes oh, ow
 * (which encode ceil_mode) come from the caller. */

/* Max over the window, taps dh, dw apart (dilation). Padding is ignored, as if it were -inf;
 * NaN wins, as in PyTorch. */
void mb_max_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                     int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                     int32_t dh, int32_t dw);

/* Mean over the window. The sum covers the window clipped to the input. The divisor is
 * `divisor` when it is non-zero; else the window clipped to the padded input when
 * count_include_pad is non-zero; else the number of summed elements. */
void mb_avg_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                     int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                     int32_t count_include_pad, int32_t divisor);

/* Adaptive pools: output (r, c) covers rows [floor(r * h / oh), ceil((r + 1) * h / oh)) and the
 * same for columns (PyTorch's bins; every bin holds at least one element). */
void mb_adaptive_avg_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                              int32_t oh, int32_t ow);
void mb_adaptive_max_pool_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                              int32_t oh, int32_t ow);

#endif
