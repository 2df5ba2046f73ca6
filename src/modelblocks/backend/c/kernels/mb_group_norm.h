#ifndef MB_GROUP_NORM_H
#define MB_GROUP_NORM_H
#include <stdint.h>

/* Group normalisation of x [n][channels][inner] (inner = product of the spatial sizes):
 * for each sample and each of `groups` consecutive channel groups, subtract the mean and divide
 * by sqrt(biased variance + eps) over the group's channels * inner elements, then
 * y = that * gamma[c] + beta[c]. gamma and beta may each be NULL (1 and 0). InstanceNorm is
 * groups = channels. */
void mb_group_norm_f32(const float *x, const float *gamma, const float *beta, float *y,
                       int32_t n, int32_t channels, int32_t inner, int32_t groups, float eps);

#endif
