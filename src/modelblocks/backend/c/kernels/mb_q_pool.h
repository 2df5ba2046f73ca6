#ifndef MB_Q_POOL_H
#define MB_Q_POOL_H
#include <stdint.h>

/* Int8 pooling and mean. Tensors are int8, per-tensor asymmetric (real = scale * (q - zp)).
 *
 * Window pools work on the last two dimensions of `planes` independent [h][w] planes (N * C of
 * NCHW), x [planes][h][w] -> y [planes][oh][ow], exactly as mb_pool.h: 1-D pooling is h = oh = kh =
 * sh = 1, ph = 0; window (r, c) starts at input row r * sh - ph and column c * sw - pw; the caller
 * gives the output sizes (they encode ceil_mode). Input and output share their parameters. */

/* Max over the window, taps dh, dw apart; padding never wins. A window with no input element
 * (possible only in odd ceil_mode / dilation cases) gives -128. */
void mb_q_max_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                      int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                      int32_t dh, int32_t dw);

/* y = zp + round_half_away(sum(x - zp) / div), clamped to int8. The sum covers the window clipped
 * to the input; div is `divisor` when non-zero, else the window clipped to the padded input when
 * count_include_pad is non-zero, else the number of summed elements (PyTorch's rule). An empty
 * window gives zp (real 0). */
void mb_q_avg_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w, int32_t oh, int32_t ow,
                      int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                      int32_t count_include_pad, int32_t divisor, int32_t zp);

/* Adaptive pools: output (r, c) covers rows [floor(r * h / oh), ceil((r + 1) * h / oh)) and the
 * same for columns (PyTorch's bins). avg: y = zp + round_half_away(sum(x - zp) / count). */
void mb_q_adaptive_avg_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w,
                               int32_t oh, int32_t ow, int32_t zp);
void mb_q_adaptive_max_pool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t h, int32_t w,
                               int32_t oh, int32_t ow);

/* Sum / mean over any set of axes: x is walked as in mb_reduce_f32, the kept dimensions
 * (out_dims [out_rank], x's element strides out_strides) in y's order, and for each output the reduced
 * dimensions (red_dims [red_rank], red_strides); ranks <= 8 after merging. acc = sum(x - in_zp) (int32),
 * y = clamp(requantize(acc * 2^left_shift, mult, shift) + out_zp, -128, 127), real
 * s_in / (s_out * count * 2^left_shift) for a mean (s_in / (s_out * 2^left_shift) for a sum). */
void mb_q_mean_s8(const int8_t *x, int8_t *y, int32_t out_rank, const int32_t *out_dims, const int32_t *out_strides,
                  int32_t red_rank, const int32_t *red_dims, const int32_t *red_strides,
                  int32_t in_zp, int32_t left_shift, int32_t mult, int32_t shift, int32_t out_zp);

#endif
