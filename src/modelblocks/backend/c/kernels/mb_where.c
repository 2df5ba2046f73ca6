#include "mb_where.h"
#include "mb_common.h"


/* Element offsets of the output element `flat` in up to three operands: plain index
 * arithmetic per element, which keeps the kernels short and obviously in bounds. */
static void mb_where_offsets(int32_t flat, const int32_t *dims, int32_t rank, const int32_t *s0,
                             const int32_t *s1, const int32_t *s2, int64_t *o0, int64_t *o1, int64_t *o2)
{
    int64_t a = 0, b = 0, c = 0;
    for (int32_t d = rank - 1; d >= 0; --d) {
        const int32_t i = flat % dims[d];
        flat /= dims[d];
        a += (int64_t)i * s0[d];
        b += (int64_t)i * s1[d];
        if (s2) {
            c += (int64_t)i * s2[d];
        }
    }
    *o0 = a;
    *o1 = b;
    *o2 = c;
}

static int32_t mb_where_count(const int32_t *dims, int32_t rank)
{
    int32_t n = 1;
    if (rank > MB_MAX_RANK) {
        return 0;
    }
    for (int32_t d = 0; d < rank; ++d) {
        n *= dims[d];
    }
    return n;
}

void mb_where_f32(const uint8_t *cond, const float *a, const float *b, float *y, const int32_t *dims,
                  const int32_t *cs, const int32_t *as, const int32_t *bs, int32_t rank)
{
    const int32_t n = mb_where_count(dims, rank);
    for (int32_t t = 0; t < n; ++t) {
        int64_t oc, oa, ob;
        mb_where_offsets(t, dims, rank, cs, as, bs, &oc, &oa, &ob);
        y[t] = cond[oc] ? a[oa] : b[ob];
    }
}

#define MB_COMPARE(suffix, type)                                                              \
    void mb_compare_##suffix(const type *a, const type *b, uint8_t *y, const int32_t *dims,    \
                             const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind) \
    {                                                                                         \
        const int32_t n = mb_where_count(dims, rank);                                         \
        for (int32_t t = 0; t < n; ++t) {                                                     \
            int64_t oa, ob, unused;                                                           \
            mb_where_offsets(t, dims, rank, as, bs, 0, &oa, &ob, &unused);                    \
            const type u = a[oa], v = b[ob];                                                  \
            int r;                                                                            \
            switch (kind) {                                                                   \
            case MB_CMP_GT: r = u > v; break;                                                 \
            case MB_CMP_LT: r = u < v; break;                                                 \
            case MB_CMP_GE: r = u >= v; break;                                                \
            case MB_CMP_LE: r = u <= v; break;                                                \
            case MB_CMP_EQ: r = u == v; break;                                                \
            default: r = u != v; break;                                                       \
            }                                                                                 \
            y[t] = (uint8_t)r;                                                                \
        }                                                                                     \
    }

MB_COMPARE(f32, float)
MB_COMPARE(i32, int32_t)
MB_COMPARE(u8, uint8_t)

void mb_logical_u8(const uint8_t *a, const uint8_t *b, uint8_t *y, const int32_t *dims,
                   const int32_t *as, const int32_t *bs, int32_t rank, int32_t kind)
{
    const int32_t n = mb_where_count(dims, rank);
    for (int32_t t = 0; t < n; ++t) {
        int64_t oa, ob, unused;
        mb_where_offsets(t, dims, rank, as, bs, 0, &oa, &ob, &unused);
        const int u = a[oa] != 0, v = b[ob] != 0;
        y[t] = (uint8_t)(kind == MB_LOGIC_AND ? (u && v) : kind == MB_LOGIC_OR ? (u || v) : (u != v));
    }
}

void mb_logical_not_u8(const uint8_t *x, uint8_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = (uint8_t)(x[i] == 0);
    }
}
