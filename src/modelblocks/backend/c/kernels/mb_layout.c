#include "mb_layout.h"
#include "mb_common.h"

/* The innermost dimension is a plain loop (the compiler emits a fast copy when its stride is 1);
 * the outer ones advance like an odometer that keeps the running input position `base`, so no
 * multiplication is needed per row. */
#define MB_STRIDED_COPY(sfx, T)                                                               \
    void mb_strided_copy_##sfx(const T *x, T *y, const int32_t *dims, const int32_t *strides, \
                               int32_t rank, int32_t offset)                                  \
    {                                                                                         \
        int32_t idx[MB_LAYOUT_MAX_RANK] = {0};                                                \
        if (rank < 1 || rank > MB_LAYOUT_MAX_RANK) {                                          \
            return;                                                                           \
        }                                                                                     \
        const int32_t inner = dims[rank - 1], s = strides[rank - 1];                          \
        int32_t outer = 1;                                                                    \
        for (int32_t d = 0; d < rank - 1; ++d) {                                              \
            outer *= dims[d];                                                                 \
        }                                                                                     \
        int32_t base = offset;                                                                \
        for (int32_t o = 0; o < outer; ++o) {                                                 \
            if (s == 1) {                                                                     \
                memcpy(y, x + base, (size_t)inner * sizeof(T));                               \
            } else {                                                                          \
                for (int32_t i = 0; i < inner; ++i) {                                         \
                    y[i] = x[base + i * s];                                                   \
                }                                                                             \
            }                                                                                 \
            y += inner;                                                                       \
            for (int32_t d = rank - 2; d >= 0; --d) {                                         \
                if (++idx[d] < dims[d]) {                                                     \
                    base += strides[d];                                                       \
                    break;                                                                    \
                }                                                                             \
                idx[d] = 0;                                                                   \
                base -= (dims[d] - 1) * strides[d];                                           \
            }                                                                                 \
        }                                                                                     \
    }

#define MB_CONCAT(sfx, T)                                                                     \
    void mb_concat_##sfx(const T *const *parts, const int32_t *widths, int32_t n,             \
                         int32_t outer, T *y)                                                 \
    {                                                                                         \
        for (int32_t o = 0; o < outer; ++o) {                                                 \
            for (int32_t k = 0; k < n; ++k) {                                                 \
                const int32_t w = widths[k];                                                  \
                memcpy(y, parts[k] + o * w, (size_t)w * sizeof(T));                           \
                y += w;                                                                       \
            }                                                                                 \
        }                                                                                     \
    }

#define MB_INDEX_SELECT(sfx, T)                                                               \
    void mb_index_select_##sfx(const T *x, T *y, const int32_t *idx, int32_t n_idx,           \
                               int32_t outer, int32_t n_in, int32_t inner)                    \
    {                                                                                         \
        for (int32_t o = 0; o < outer; ++o) {                                                 \
            const T *row = x + o * n_in * inner;                                              \
            for (int32_t i = 0; i < n_idx; ++i) {                                             \
                memcpy(y, row + idx[i] * inner, (size_t)inner * sizeof(T));                   \
                y += inner;                                                                   \
            }                                                                                 \
        }                                                                                     \
    }

#define MB_LAYOUT(sfx, T)                                                                     \
    MB_STRIDED_COPY(sfx, T)                                                                   \
    MB_CONCAT(sfx, T)                                                                         \
    MB_INDEX_SELECT(sfx, T)

MB_LAYOUT(f32, float)
MB_LAYOUT(i32, int32_t)
MB_LAYOUT(i16, int16_t)
MB_LAYOUT(i8, int8_t)
MB_LAYOUT(u8, uint8_t)
