#ifndef MB_CONV_F32_OPT_H
#define MB_CONV_F32_OPT_H
#include <stdint.h>

/* Optimised float32 2-D convolutions, NCHW, with the arguments of mb_conv_f32 (mb_conv.h). They
 * compute what mb_conv_f32 computes, each output summed in another order with fmaf (float results
 * within about 1e-6 relative of it). A 1-D convolution is the same call with h = kh = oh = 1. */

/* Any convolution (stride, padding, dilation, groups) as a GEMM: the input patches of 4 output
 * positions are copied into `scratch` and multiplied with 4 output channels at a time. wp holds the
 * weights of each group (cog = cout / groups channels, K = kh * kw * (cin / groups) patch elements
 * ordered (i, j, ci)) in panels of 4 output channels (mb_gemm_f32_opt.h), as many floats as w:
 *   wp[g * cog * K + (q * K + t) * 4 + c] = w[g * cog + 4 q + c][element t]    for q < cog / 4,
 *   wp[g * cog * K + (cog / 4) * 4 * K + t * rem + c] = w[g * cog + 4 (cog / 4) + c][element t]
 * for the last rem = cog % 4 channels. b may be NULL. The patches are read in place, with bounds
 * checks only for blocks that touch the padding, or with use_band (for few input channels) from a
 * band of zero-padded input rows. `scratch` holds, in floats: K * 4 (the patches), K (int32
 * offsets), and with use_band (cin / groups) *
 * ((R - 1) * sh + (kh - 1) * dh + 1) * sw * ceil(((ow - 1) * sw + (kw - 1) * dw + 1) / sw) with
 * R = (ow + 2) / ow + 1 (mb_band_shape). */
void mb_conv_im2col_f32_opt(const float *x, const float *wp, const float *b, float *y,
                            int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                            int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                            int32_t dh, int32_t dw, int32_t groups, float lo, float hi, int32_t use_band,
                            float *scratch);

/* 1x1 convolution, stride 1, no padding: per group a GEMM reading the input in place (hw = h * w
 * positions). wp as for mb_conv_im2col_f32_opt with K = cin / groups. `scratch` holds K * 4 floats
 * (the last hw % 4 positions, zero-padded) when hw % 4 > 0, else may be NULL. */
void mb_conv_pointwise_f32_opt(const float *x, const float *wp, const float *b, float *y,
                               int32_t n, int32_t cin, int32_t hw, int32_t cout, int32_t groups,
                               float lo, float hi, float *scratch);

/* Depthwise 3x3 convolution (groups = cin = cout = c), dilation 1, stride sh, sw in {1, 2}, any
 * padding: w [c][1][3][3] as in PyTorch. Each channel is copied into a zero-bordered `scratch` of
 * ((oh - 1) * sh + 3) * ((6 * ceil(ow / 6) - 1) * sw + 3) floats, then each output row is computed
 * 6 outputs at a time with the 9 weights in registers. */
void mb_conv_dw3x3_f32_opt(const float *x, const float *w, const float *b, float *y,
                           int32_t n, int32_t c, int32_t h, int32_t wd, int32_t oh, int32_t ow,
                           int32_t sh, int32_t sw, int32_t pt, int32_t pl, float lo, float hi, float *scratch);

#endif
