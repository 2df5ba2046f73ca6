#ifndef MB_RESIZE_H
#define MB_RESIZE_H
#include <stdint.h>

/* Resize of `planes` independent [h][w] planes (N * C of NCHW) to [oh][ow]; 1-D is h = oh = 1.
 * The source positions were computed at compile time with PyTorch's rules, so these kernels
 * only gather. */

/* Nearest: y[p][r][c] = x[p][rows[r]][cols[c]]. rows has oh entries, cols ow entries. */
void mb_upsample_nearest_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                             int32_t oh, int32_t ow, const int32_t *rows, const int32_t *cols);

/* (Bi)linear: rows = {r0[oh], r1[oh]} (the two source rows of each output row), row_w =
 * {weight of r0[oh], weight of r1[oh]}, and the same for columns:
 * y = row_w0 * (col_w0 * x[r0][c0] + col_w1 * x[r0][c1]) + row_w1 * (... x[r1] ...). */
void mb_upsample_linear_f32(const float *x, float *y, int32_t planes, int32_t h, int32_t w,
                            int32_t oh, int32_t ow, const int32_t *rows, const int32_t *cols,
                            const float *row_w, const float *col_w);

/* Pad any rank: y has out_shape[d] = in_shape[d] + begin[d] + end[d]; output coordinate o reads
 * input coordinate o - begin[d], mapped by `mode` when it falls outside [0, in_shape[d]):
 * 0 constant (write `value`), 1 reflect (mirror, edge not repeated), 2 replicate (nearest edge),
 * 3 circular (wrap around). Negative begin / end crop (the caller rejects that for circular). */
void mb_pad_f32(const float *x, float *y, int32_t rank, const int32_t *in_shape, const int32_t *out_shape,
                const int32_t *begin, int32_t mode, float value);

#endif
