#ifndef MB_LAYOUT_H
#define MB_LAYOUT_H
#include <stdint.h>

/* Data-movement kernels. They only move elements, so each one exists for every element width the
 * IR has, all generated from one definition: f32 (float), i32 (int32_t), i16 (int16_t),
 * i8 (int8_t) and u8 (uint8_t, also bool). All tensors are contiguous, row-major. */

/* Largest rank of a strided view after neighbouring dimensions were merged. repeat and
 * pixel_shuffle split each output dimension in two, so this is twice the deepest model tensor. */
#define MB_LAYOUT_MAX_RANK 16

/* y[i0, ..., ik] = x[offset + i0 * strides[0] + ... + ik * strides[k]] for 0 <= id < dims[d],
 * k = rank - 1 (1 <= rank <= MB_LAYOUT_MAX_RANK), y contiguous in that order. A stride is 0 on a
 * broadcast (expand/repeat) dimension and negative on a flipped one; the compiler guarantees every
 * index lies inside x. Covers permute, slice, select, expand, repeat, flip, unfold, pixel shuffle. */
#define MB_STRIDED_COPY_DECL(sfx, T)                                                          \
    void mb_strided_copy_##sfx(const T *x, T *y, const int32_t *dims, const int32_t *strides, \
                               int32_t rank, int32_t offset);

/* Concatenation along one axis: the output is `outer` rows, each the concatenation of one row of
 * every part; part k's row is `widths[k]` contiguous elements (its size along the axis times the
 * product of the dimensions after the axis). `parts` holds the n input pointers. */
#define MB_CONCAT_DECL(sfx, T)                                                                \
    void mb_concat_##sfx(const T *const *parts, const int32_t *widths, int32_t n,             \
                         int32_t outer, T *y);

/* index_select with constant indices: x is [outer, n_in, inner], y is [outer, n_idx, inner] and
 * y[o, i, :] = x[o, idx[i], :]. Every idx[i] is in [0, n_in). */
#define MB_INDEX_SELECT_DECL(sfx, T)                                                          \
    void mb_index_select_##sfx(const T *x, T *y, const int32_t *idx, int32_t n_idx,           \
                               int32_t outer, int32_t n_in, int32_t inner);

#define MB_LAYOUT_DECL(sfx, T)                                                                \
    MB_STRIDED_COPY_DECL(sfx, T)                                                              \
    MB_CONCAT_DECL(sfx, T)                                                                    \
    MB_INDEX_SELECT_DECL(sfx, T)

MB_LAYOUT_DECL(f32, float)
MB_LAYOUT_DECL(i32, int32_t)
MB_LAYOUT_DECL(i16, int16_t)
MB_LAYOUT_DECL(i8, int8_t)
MB_LAYOUT_DECL(u8, uint8_t)

#undef MB_LAYOUT_DECL
#undef MB_STRIDED_COPY_DECL
#undef MB_CONCAT_DECL
#undef MB_INDEX_SELECT_DECL

#endif
