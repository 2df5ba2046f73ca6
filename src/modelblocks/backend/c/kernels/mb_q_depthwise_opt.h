/* Optimised int8 depthwise convolution (ops/q_conv.py variant "depthwise"). */
#ifndef MB_Q_DEPTHWISE_OPT_H
#define MB_Q_DEPTHWISE_OPT_H

#include <stdint.h>

/* Most tap pairs kh * ceil(kw / 2) of a depthwise kernel the optimised kernel takes (11 x 11). */
#define MB_Q_DW_MAX_PAIRS 66

/* mb_q_depthwise_conv_s8 (mb_q_conv.h), bit for bit, for |accumulators| < 2^30 and shifts <= 0 (the
 * variant's applies()), with `buf` the scratch of ops/q_conv.py `_plane_scratch`: one input channel's
 * padded plane, int16 [hp * wp + 1], hp and wp as the kernel computes them (mb_dw_plane_width). */
void mb_q_depthwise_conv_s8_rows(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                                 const int8_t *shift, int8_t *y, int32_t n, int32_t cin, int32_t h, int32_t wd,
                                 int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh,
                                 int32_t sw, int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp,
                                 int32_t out_zp, int32_t act_min, int32_t act_max, int16_t *buf);

#endif /* MB_Q_DEPTHWISE_OPT_H */
