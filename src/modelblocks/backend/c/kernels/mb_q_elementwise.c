#include "mb_q_elementwise.h"
#include "mb_common.h"
#include "mb_quant.h"

/* v + zp clamped to [lo, hi]; in 64 bits because a saturated requantization may be near INT32_MAX. */
static inline int8_t mb_q_out(int32_t v, int32_t zp, int32_t lo, int32_t hi)
{
    int64_t t = (int64_t)v + zp;
    t = t < lo ? lo : t;
    return (int8_t)(t > hi ? hi : t);
}

/* The broadcast walk of mb_binary.c: the innermost dimension is a plain loop, the outer ones an odometer. */
#define MB_Q_BINARY_WALK(body)                                                                \
    do {                                                                                      \
        int32_t idx[MB_MAX_RANK] = {0};                                                       \
        const int32_t inner = dims[rank - 1], sa = as[rank - 1], sb = bs[rank - 1];           \
        const int64_t outer = mb_numel(dims, rank - 1);                                       \
        for (int64_t o = 0; o < outer; ++o) {                                                 \
            const int8_t *pa = a + mb_offset(idx, as, rank - 1);                              \
            const int8_t *pb = b + mb_offset(idx, bs, rank - 1);                              \
            for (int32_t i = 0; i < inner; ++i) {                                             \
                const int32_t u = pa[(int64_t)i * sa], v = pb[(int64_t)i * sb];              \
                body                                                                          \
            }                                                                                 \
            y += inner;                                                                       \
            mb_next_index(idx, dims, rank - 1);                                               \
        }                                                                                     \
    } while (0)

void mb_q_add_s8(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *dims, const int32_t *as,
                 const int32_t *bs, int32_t rank, int32_t a_zp, int32_t a_mult, int32_t a_shift,
                 int32_t b_zp, int32_t b_mult, int32_t b_shift, int32_t left_shift,
                 int32_t out_zp, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max)
{
    const int32_t scale = (int32_t)1 << left_shift;
    MB_Q_BINARY_WALK({
        const int32_t ra = mb_requantize((u - a_zp) * scale, a_mult, a_shift);
        const int32_t rb = mb_requantize((v - b_zp) * scale, b_mult, b_shift);
        y[i] = mb_q_out(mb_requantize(ra + rb, out_mult, out_shift), out_zp, act_min, act_max);
    });
}

void mb_q_mul_s8(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *dims, const int32_t *as,
                 const int32_t *bs, int32_t rank, int32_t a_zp, int32_t b_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, int32_t act_min, int32_t act_max)
{
    MB_Q_BINARY_WALK({
        const int32_t acc = (u - a_zp) * (v - b_zp);
        y[i] = mb_q_out(mb_requantize(acc, mult, shift), out_zp, act_min, act_max);
    });
}

void mb_q_requantize_s8(const int8_t *x, int8_t *y, int32_t n, int32_t in_zp, int32_t left_shift,
                        int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    const int32_t scale = (int32_t)1 << left_shift;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t acc = ((int32_t)x[i] - in_zp) * scale;
        y[i] = mb_q_out(mb_requantize(acc, mult, shift), out_zp, act_min, act_max);
    }
}
