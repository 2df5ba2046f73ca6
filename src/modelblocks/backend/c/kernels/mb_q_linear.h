#ifndef MB_Q_LINEAR_H
#define MB_Q_LINEAR_H
#include <stdint.h>

/* int8 fully connected layer (TFLite int8 scheme, CMSIS-NN arm_fully_connected_s8):
 *   acc = bias[o] + sum_i (x[r][i] - in_zp) * w[o][i]                         (int32)
 *   y[r][o] = clamp(mb_requantize(acc, mult[o], shift[o]) + out_zp, act_min, act_max)
 * x     int8  [rows][in_features], row-major (any leading dims flattened into rows)
 * w     int8  [out_features][in_features], row-major, symmetric per output channel
 * bias  int32 [out_features] (never NULL: zeros when the layer has no bias)
 * mult  int32 [out_features], shift int8 [out_features]: per-channel requantization
 * y     int8  [rows][out_features]
 * The caller guarantees |bias| + in_features * 255 * 128 < 2^31 (no accumulator overflow). */
void mb_q_linear_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                    const int8_t *shift, int8_t *y, int32_t rows, int32_t in_features, int32_t out_features,
                    int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max);

#endif
