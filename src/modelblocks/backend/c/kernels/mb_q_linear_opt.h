/* Optimised int8 fully connected kernels (ops/q_linear.py variants "matvec" and "gemm"). */
#ifndef MB_Q_LINEAR_OPT_H
#define MB_Q_LINEAR_OPT_H

#include <stdint.h>

void mb_q_linear_s8_matvec(const int8_t *x, const int32_t *w, const int32_t *bias, const int32_t *mult,
                           const int8_t *shift, int8_t *y, int32_t rows, int32_t in_features, int32_t out_features,
                           int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max, int16_t *buf);

void mb_q_linear_s8_gemm(const int8_t *x, const int32_t *stream, int8_t *y, int32_t rows, int32_t in_features,
                         int32_t out_features, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max,
                         int16_t *buf);

#endif /* MB_Q_LINEAR_OPT_H */
