#ifndef MB_LINEAR_F32_OPT_H
#define MB_LINEAR_F32_OPT_H
#include <stdint.h>

/* y[r][o] = clamp(b[o] + sum_i x[r][i] * w[o][i], lo, hi), what mb_linear_f32 computes, each sum in
 * another order with fmaf (within about 1e-6 relative of it); b may be NULL. wp holds w in panels
 * of 4 outputs (mb_gemm_f32_opt.h), as many floats as w: wp[(q * in_features + i) * 4 + k] =
 * w[4 q + k][i] for q < out_features / 4, then the last rem = out_features % 4 outputs as
 * wp[(out_features / 4) * 4 * in_features + i * rem + k] = w[4 (out_features / 4) + k][i].
 * `scratch` holds in_features * 4 floats (4 input rows packed) when rows >= 4, else may be NULL.
 * Rows are taken 4 at a time against 4 outputs; the other rows are matrix-vector products reading
 * x in place. The last rem outputs are plain C loops. */
void mb_linear_f32_opt(const float *x, const float *wp, const float *b, float *y,
                       int32_t rows, int32_t in_features, int32_t out_features, float lo, float hi,
                       float *scratch);

#endif
