#include "mb_reduce.h"
#include "mb_common.h"


/* Compensated (Neumaier) sum: `comp` keeps the low-order bits each addition rounds away, so a
 * long row mixing large and small values (1e6 then 20,000 x 0.1) sums to within one rounding of
 * the exact value, where a plain float loop loses every small term. Order-independent accuracy
 * also keeps the C close to PyTorch's pairwise sum. */
typedef struct {
    float sum;
    float comp;
} mb_sum_f32;

static void mb_sum_add(mb_sum_f32 *s, float v)
{
    const float t = s->sum + v;
    if (fabsf(s->sum) >= fabsf(v)) {
        s->comp += (s->sum - t) + v;
    } else {
        s->comp += (v - t) + s->sum;
    }
    s->sum = t;
}

/* An infinite or NaN running sum is the answer as it stands: its compensation holds inf - inf. */
static float mb_sum_value(const mb_sum_f32 *s)
{
    return isfinite(s->sum) ? s->sum + s->comp : s->sum;
}

/* Advance an odometer over `dims`, last dimension fastest; returns the element offset change. */
static int64_t mb_reduce_step(int32_t *idx, const int32_t *dims, const int32_t *strides, int32_t rank)
{
    int64_t delta = 0;
    for (int32_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < dims[d]) {
            return delta + strides[d];
        }
        delta -= (int64_t)(dims[d] - 1) * strides[d];
        idx[d] = 0;
    }
    return delta;
}

void mb_reduce_f32(const float *x, float *y, int32_t kind,
                   int32_t out_rank, const int32_t *out_dims, const int32_t *out_strides,
                   int32_t red_rank, const int32_t *red_dims, const int32_t *red_strides,
                   float correction)
{
    int32_t oidx[MB_MAX_RANK] = {0};
    int32_t ridx[MB_MAX_RANK] = {0};
    int32_t outs = 1, count = 1;
    if (out_rank > MB_MAX_RANK || red_rank > MB_MAX_RANK) {
        return;
    }
    for (int32_t d = 0; d < out_rank; ++d) {
        outs *= out_dims[d];
    }
    for (int32_t d = 0; d < red_rank; ++d) {
        count *= red_dims[d];
    }
    int64_t base = 0;
    for (int32_t o = 0; o < outs; ++o) {
        float acc;
        int64_t off = base;
        if (kind == MB_REDUCE_MAX || kind == MB_REDUCE_MIN) {
            acc = kind == MB_REDUCE_MAX ? -INFINITY : INFINITY;
            for (int32_t r = 0; r < count; ++r) {
                const float v = x[off];
                if (v != v || (kind == MB_REDUCE_MAX ? v > acc : v < acc)) {
                    acc = v;
                }
                off += mb_reduce_step(ridx, red_dims, red_strides, red_rank);
            }
        } else {
            mb_sum_f32 sum = {0.0f, 0.0f};
            for (int32_t r = 0; r < count; ++r) {
                mb_sum_add(&sum, x[off]);
                off += mb_reduce_step(ridx, red_dims, red_strides, red_rank);
            }
            acc = mb_sum_value(&sum);
            if (kind != MB_REDUCE_SUM) {
                acc = acc / (float)count;
            }
            if (kind == MB_REDUCE_VAR || kind == MB_REDUCE_STD) {
                /* second pass over the deviations: exact where E[x^2] - E[x]^2 cancels */
                const float mean = acc;
                mb_sum_f32 sq = {0.0f, 0.0f};
                off = base;
                for (int32_t r = 0; r < count; ++r) {
                    const float dv = x[off] - mean;
                    mb_sum_add(&sq, dv * dv);
                    off += mb_reduce_step(ridx, red_dims, red_strides, red_rank);
                }
                const float den = (float)count - correction;
                acc = mb_sum_value(&sq) / (den > 0.0f ? den : 0.0f);
                if (kind == MB_REDUCE_STD) {
                    acc = sqrtf(acc);
                }
            }
        }
        y[o] = acc;
        base += mb_reduce_step(oidx, out_dims, out_strides, out_rank);
    }
}

void mb_argmax_f32(const float *x, int32_t *y, int32_t outer, int32_t n, int32_t inner, int32_t is_min)
{
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t j = 0; j < inner; ++j) {
            const float *xr = x + (int64_t)o * n * inner + j;
            int32_t best = 0;
            float bv = n > 0 ? xr[0] : 0.0f;
            for (int32_t i = 1; i < n && bv == bv; ++i) {
                const float v = xr[(int64_t)i * inner];
                if (v != v || (is_min ? v < bv : v > bv)) {
                    bv = v;
                    best = i;
                }
            }
            y[(int64_t)o * inner + j] = best;
        }
    }
}
