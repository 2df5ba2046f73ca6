#ifndef MB_BINARY_H
#define MB_BINARY_H
#include <stdint.h>

/* y = a (op) b over a broadcast shape `dims` of `rank` <= 8 dimensions; `as` and `bs` are the
 * operands' element strides per dimension (0 where broadcast); y is contiguous. */
#define MB_BINARY_DECL(name)                                                                  \
    void mb_##name##_f32(const float *a, const float *b, float *y, const int32_t *dims,       \
                         const int32_t *as, const int32_t *bs, int32_t rank);
MB_BINARY_DECL(add)
MB_BINARY_DECL(sub)
MB_BINARY_DECL(mul)
MB_BINARY_DECL(div)
MB_BINARY_DECL(pow)
MB_BINARY_DECL(maximum)
MB_BINARY_DECL(minimum)
#undef MB_BINARY_DECL

/* The same, then clamped: y = min(max(a (op) b, lo), hi) (mb_clampf; NaN stays NaN). */
void mb_add_clamp_f32(const float *a, const float *b, float *y, const int32_t *dims, const int32_t *as,
                      const int32_t *bs, int32_t rank, float lo, float hi);
void mb_sub_clamp_f32(const float *a, const float *b, float *y, const int32_t *dims, const int32_t *as,
                      const int32_t *bs, int32_t rank, float lo, float hi);

#endif
