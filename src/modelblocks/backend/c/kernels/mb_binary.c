#include "mb_binary.h"
#include "mb_common.h"


/* The broadcast walk computing y from `expr` of the elements u (of a) and v (of b). The innermost
 * dimension is a plain loop; the outer ones advance like an odometer. */
#define MB_BINARY_WALK(expr)                                                                  \
    {                                                                                         \
        int32_t idx[MB_MAX_RANK] = {0};                                                       \
        const int32_t inner = dims[rank - 1], sa = as[rank - 1], sb = bs[rank - 1];           \
        const int64_t outer = mb_numel(dims, rank - 1);                                       \
        for (int64_t o = 0; o < outer; ++o) {                                                 \
            const float *pa = a + mb_offset(idx, as, rank - 1);                               \
            const float *pb = b + mb_offset(idx, bs, rank - 1);                               \
            for (int32_t i = 0; i < inner; ++i) {                                             \
                const float u = pa[i * sa], v = pb[i * sb];                                   \
                y[i] = (expr);                                                                \
            }                                                                                 \
            y += inner;                                                                       \
            mb_next_index(idx, dims, rank - 1);                                               \
        }                                                                                     \
    }

/* One kernel per op from one expression of u and v. */
#define MB_BINARY(name, expr)                                                                 \
    void mb_##name##_f32(const float *a, const float *b, float *y, const int32_t *dims,       \
                         const int32_t *as, const int32_t *bs, int32_t rank)                  \
    MB_BINARY_WALK(expr)

/* The same with a fused clamp (a residual connection's ReLU). */
#define MB_BINARY_CLAMP(name, expr)                                                           \
    void mb_##name##_clamp_f32(const float *a, const float *b, float *y, const int32_t *dims, \
                               const int32_t *as, const int32_t *bs, int32_t rank, float lo,  \
                               float hi)                                                      \
    MB_BINARY_WALK(mb_clampf((expr), lo, hi))

MB_BINARY(add, u + v)
MB_BINARY(sub, u - v)
MB_BINARY(mul, u * v)
MB_BINARY(div, u / v)
MB_BINARY(pow, powf(u, v))
MB_BINARY(maximum, (u != u || u > v) ? u : v)
MB_BINARY(minimum, (u != u || u < v) ? u : v)
MB_BINARY_CLAMP(add, u + v)
MB_BINARY_CLAMP(sub, u - v)
