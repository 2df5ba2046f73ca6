/* Optimised int8 fully connected layers: the reference kernel's arithmetic (mb_q_linear.c), bit for
 * bit, on the SMLAD cores of mb_q_gemm.c. Weights come packed into int32 words (ops/q_linear.py
 * `pack_weights`); `buf` is scratch for the int16 input columns.
 * matvec: one input row at a time (batch 1), four output channels per pass over the row.
 * gemm:   two input rows at a time (a batch, or a sequence of tokens), two channels x two rows. */
#include "mb_q_linear_opt.h"
#include "mb_q_gemm.h"

static int32_t mb_padded8(int32_t n)
{
    return (n + 7) & ~7;
}

void mb_q_linear_s8_matvec(const int8_t *x, const int32_t *w, const int32_t *bias, const int32_t *mult,
                           const int8_t *shift, int8_t *y, int32_t rows, int32_t in_features, int32_t out_features,
                           int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max, int16_t *buf)
{
    const int32_t k8 = mb_padded8(in_features);
    for (int32_t r = 0; r < rows; ++r) {
        mb_q_pack_column(x + (int64_t)r * in_features, buf, in_features, k8, 0, in_zp);
        mb_q_matvec_s8(w, buf, k8 / 4, out_features, bias, mult, shift, y + (int64_t)r * out_features, out_zp,
                       act_min, act_max);
    }
}

void mb_q_linear_s8_gemm(const int8_t *x, const int32_t *stream, int8_t *y, int32_t rows, int32_t in_features,
                         int32_t out_features, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max,
                         int16_t *buf)
{
    const int32_t k8 = mb_padded8(in_features);
    int16_t *cols = buf; /* two interleaved columns */
    for (int32_t r = 0; r < rows; r += 2) {
        const int32_t ncols = rows - r >= 2 ? 2 : 1;
        const int8_t *xr = x + (int64_t)r * in_features;
        mb_q_pack_column(xr, cols, in_features, k8, 1, in_zp);
        if (ncols == 2) {
            mb_q_pack_column(xr + in_features, cols, in_features, k8, 2, in_zp);
        } /* a lone last row's partner is the row before it, computed again and not stored */
        mb_q_gemm_s8(stream, cols, k8 / 4, ncols, out_features, y + (int64_t)r * out_features, 1,
                     out_features, out_zp, act_min, act_max);
    }
}
