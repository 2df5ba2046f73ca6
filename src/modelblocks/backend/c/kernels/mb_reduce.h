#ifndef MB_REDUCE_H
#define MB_REDUCE_H
#include <stdint.h>

#define MB_REDUCE_SUM 0
#define MB_REDUCE_MEAN 1
#define MB_REDUCE_MAX 2
#define MB_REDUCE_MIN 3
#define MB_REDUCE_VAR 4
#define MB_REDUCE_STD 5

/* Reduction of x over a set of dimensions. The kept dimensions (`out_rank` >= 1 of them,
 * `out_dims`, with x's element strides `out_strides`) enumerate the outputs, y contiguous in
 * that order; the reduced dimensions (`red_rank` >= 1, `red_dims`, `red_strides`) enumerate
 * the values combined into one output. `kind` is one of MB_REDUCE_*; VAR and STD divide the
 * sum of squared deviations from the mean by (count - correction). MAX and MIN propagate NaN. */
void mb_reduce_f32(const float *x, float *y, int32_t kind,
                   int32_t out_rank, const int32_t *out_dims, const int32_t *out_strides,
                   int32_t red_rank, const int32_t *red_dims, const int32_t *red_strides,
                   float correction);

/* Index of the largest (is_min = 0) or smallest (is_min != 0) value along one dimension of a
 * contiguous tensor seen as [outer][n][inner]; y is [outer][inner]. Ties give the first index;
 * a NaN wins (its first index), as in PyTorch. */
void mb_argmax_f32(const float *x, int32_t *y, int32_t outer, int32_t n, int32_t inner, int32_t is_min);

#endif
