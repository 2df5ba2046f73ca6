#ifndef MB_CONV_H
#define MB_CONV_H
#include <stdint.h>

/* 2-D convolution, NCHW. x [n][cin][h][w], w [cout][cin/groups][kh][kw], b [cout] or NULL,
 * y [n][cout][oh][ow]. stride sh, sw; padding pt (top), pl (left) with zeros (the bottom/right
 * padding is implied by oh, ow); dilation dh, dw. Output channel o reads input channels of
 * group o / (cout/groups). Each output is clamped to [lo, hi] (fused ReLU / ReLU6).
 * A 1-D convolution is the same call with h = kh = oh = sh = dh = 1 and pt = 0. */
void mb_conv_f32(const float *x, const float *w, const float *b, float *y,
                 int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                 int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                 int32_t dh, int32_t dw, int32_t groups, float lo, float hi);

/* 2-D transposed convolution, NCHW. x [n][cin][h][w], w [cin][cout/groups][kh][kw] (PyTorch's
 * layout), b [cout] or NULL, y [n][cout][oh][ow]. stride sh, sw; padding ph, pw (cropped from
 * both sides of the full output; output_padding is implied by oh, ow); dilation dh, dw.
 * Each output is clamped to [lo, hi]. 1-D: h = kh = oh = sh = dh = 1, ph = 0. */
void mb_conv_transpose_f32(const float *x, const float *w, const float *b, float *y,
                           int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                           int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                           int32_t dh, int32_t dw, int32_t groups, float lo, float hi);

#endif
