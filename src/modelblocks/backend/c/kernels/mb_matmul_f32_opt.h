#ifndef MB_MATMUL_F32_OPT_H
#define MB_MATMUL_F32_OPT_H
#include <stdint.h>

/* What mb_matmul_f32 (mb_matmul.h) computes, with the same arguments, each dot product summed with
 * fmaf in 4x4 register tiles (within about 1e-6 relative of it): 4 rows of a are packed into
 * `scratch` (8 * k floats: that panel and the last n % 4 columns of b, zero-padded); 4 columns of b
 * are read in place. */
void mb_matmul_f32_opt(const float *a, const float *b, const float *c, float *y,
                       int32_t batch_rank, const int32_t *batch_dims,
                       const int32_t *a_bs, const int32_t *b_bs, const int32_t *c_bs,
                       int32_t m, int32_t k, int32_t n, int32_t c_rs, int32_t c_cs,
                       float alpha, float beta, float lo, float hi, float *scratch);

#endif
