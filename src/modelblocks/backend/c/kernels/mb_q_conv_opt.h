/* Optimised int8 convolution (ops/q_conv.py variant "rows"; "depthwise" is mb_q_depthwise_opt.h). */
#ifndef MB_Q_CONV_OPT_H
#define MB_Q_CONV_OPT_H

#include <stdint.h>

/* Most segments (kernel rows when the dilation along W is 1, else taps) of the rows kernel. */
#define MB_Q_ROWS_MAX_SEGMENTS 64

void mb_q_conv_s8_rows(const int8_t *x, const int32_t *stream, int8_t *y, int32_t n, int32_t cin, int32_t h,
                       int32_t wd, int32_t cout, int32_t oh, int32_t ow, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
                       int32_t pt, int32_t pl, int32_t dh, int32_t dw, int32_t in_zp, int32_t out_zp, int32_t act_min,
                       int32_t act_max, int16_t *buf);

#endif /* MB_Q_CONV_OPT_H */
