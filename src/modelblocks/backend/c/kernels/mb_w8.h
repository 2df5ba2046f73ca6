#ifndef MB_W8_H
#define MB_W8_H
#include <stdint.h>

/* Int8-weights kernels: weights int8, symmetric per output channel (zero point 0), activations and
 * bias float32. The dot product accumulates x * (float)w in float and is scaled once per output,
 * so dequantizing the weights costs no multiply per MAC:
 *     y = clamp(scale[o] * sum_i x[i] * (float)w[o][i] + b[o], lo, hi).
 * Flash holds 1 byte per weight plus one float scale per output channel. */

/* Linear. x [rows][in_features] float, w [out_features][in_features] int8,
 * scales [out_features] float, b [out_features] float or NULL, y [rows][out_features] float. */
void mb_linear_w8_f32(const float *x, const int8_t *w, const float *scales, const float *b, float *y,
                      int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi);

/* 2-D convolution, NCHW (same geometry as mb_conv_f32). x [n][cin][h][wd] float,
 * w [cout][cin/groups][kh][kw] int8, scales [cout] float, b [cout] float or NULL,
 * y [n][cout][oh][ow] float. stride sh, sw; zero padding pt (top), pl (left) (bottom/right implied
 * by oh, ow); dilation dh, dw; output channel o reads the input channels of group o / (cout/groups).
 * A 1-D convolution is the same call with h = kh = oh = sh = dh = 1 and pt = 0. */
void mb_conv_w8_f32(const float *x, const int8_t *w, const float *scales, const float *b, float *y,
                    int32_t n, int32_t cin, int32_t h, int32_t wd, int32_t cout, int32_t oh, int32_t ow,
                    int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                    int32_t dh, int32_t dw, int32_t groups, float lo, float hi);

/* Table lookup with an int8 table and one float scale per row: y[t][d] = scales[i] * (float)w[i][d]
 * for i = idx[t], t in [0, count). w [num][dim] int8, scales [num] float, idx [count] int32,
 * y [count][dim] float. An index outside [0, num) writes a row of zeros (never reads outside the
 * table); returns the number of such indices. */
int32_t mb_embedding_w8_f32(const int8_t *w, const float *scales, const int32_t *idx, float *y,
                            int32_t count, int32_t num, int32_t dim);

#endif
