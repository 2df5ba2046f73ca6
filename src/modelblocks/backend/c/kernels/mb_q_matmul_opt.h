/* Optimised int8 batched matmul (ops/q_matmul.py variant "dsp"). */
#ifndef MB_Q_MATMUL_OPT_H
#define MB_Q_MATMUL_OPT_H

#include <stdint.h>

void mb_q_matmul_s8_dsp(const int8_t *a, const int8_t *b, int8_t *y, int32_t batch_rank, const int32_t *batch_dims,
                        const int32_t *a_bs, const int32_t *b_bs, int32_t m, int32_t k, int32_t n, int32_t a_zp,
                        int32_t b_zp, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max,
                        int16_t *buf);

#endif /* MB_Q_MATMUL_OPT_H */
