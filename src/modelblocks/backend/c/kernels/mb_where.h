#ifndef MB_WHERE_H
#define MB_WHERE_H
#include <stdint.h>

/* Selection, comparisons and logic over a broadcast shape `dims` of `rank` (1..8) dimensions;
 * the *s arrays are each operand's element strides per dimension (0 where broadcast) and the
 * output is contiguous. Booleans are uint8_t holding 0 or 1. */

/* y = cond ? a : b (cond nonzero selects a). */
void mb_where_f32(const uint8_t *cond, const float *a, const float *b, float *y, const int32_t *dims,
                  const int32_t *cs, const int32_t *as, const int32_t *bs, int32_t rank);

#define MB_CMP_GT 0
#define MB_CMP_LT 1
#define MB_CMP_GE 2
#define MB_CMP_LE 3
#define MB_CMP_EQ 4
#define MB_CMP_NE 5

/* y = (a <kind> b), kind one of MB_CMP_*; any comparison with NaN is false except NE. */
void mb_compare_f32(const float *a, const float *b, uint8_t *y, const int32_t *dims,
                    const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind);
void mb_compare_i32(const int32_t *a, const int32_t *b, uint8_t *y, const int32_t *dims,
                    const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind);
void mb_compare_u8(const uint8_t *a, const uint8_t *b, uint8_t *y, const int32_t *dims,
                   const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind);

#define MB_LOGIC_AND 0
#define MB_LOGIC_OR 1
#define MB_LOGIC_XOR 2

/* y = a <kind> b on booleans, kind one of MB_LOGIC_*. */
void mb_logical_u8(const uint8_t *a, const uint8_t *b, uint8_t *y, const int32_t *dims,
                   const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind);

/* y[i] = !x[i] for n booleans. */
void mb_logical_not_u8(const uint8_t *x, uint8_t *y, int32_t n);

#endif
