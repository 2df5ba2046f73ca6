#ifndef MB_Q_CONV_H
#define MB_Q_CONV_H
#include <stdint.h>

/* int8 2-D convolution, NCHW (TFLite int8 scheme, CMSIS-NN arm_convolve_s8):
 *   acc = bias[o] + sum_{ci, i, j} (x[bi][c0 + ci][r*sh - pt + i*dh][c*sw - pl + j*dw] - in_zp) * w[o][ci][i][j]
 *   y[bi][o][r][c] = clamp(mb_requantize(acc, mult[o], shift[o]) + out_zp, act_min, act_max)
 * with c0 = (o / (cout/groups)) * (cin/groups); taps outside the input (padding) contribute nothing,
 * i.e. the input is padded with in_zp. The bottom/right padding is implied by oh, ow.
 * x     int8  [n][cin][h][wd]
 * w     int8  [cout][cin/groups][kh][kw], symmetric per output channel
 * bias  int32 [cout] (never NULL)
 * mult  int32 [cout], shift int8 [cout]: per-channel requantization
 * y     int8  [n][cout][oh][ow]
 * A 1-D convolution is the same call with h = kh = oh = sh = dh = 1 and pt = 0.
 * The caller guarantees |bias| + (cin/groups) * kh * kw * 255 * 128 < 2^31. */
void mb_q_conv_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult, const int8_t *shift,
                  int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                  int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl, int32_t dh, int32_t dw,
                  int32_t groups, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max);

/* The same for a depthwise convolution (groups == cin, w [cout][1][kh][kw], cout a multiple of cin:
 * output channel o reads input channel o / (cout/cin)); parameters as mb_q_conv_s8 without groups. */
void mb_q_depthwise_conv_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                            const int8_t *shift, int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd,
                            int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
                            int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp, int32_t out_zp,
                            int32_t act_min, int32_t act_max);

#endif
