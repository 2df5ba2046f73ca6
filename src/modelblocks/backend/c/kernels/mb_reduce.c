#include "mb_reduce.h"
#include "mb_common.h"


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

/* The reduced values of one output are visited as rows: the last reduced dimension (`n` values
 * `stride` apart) in a plain loop, the odometer only between rows, so its cost is per row, not per
 * value. */
typedef struct {
    int32_t rows, n, stride, outer_rank;
    const int32_t *dims, *strides;
} mb_reduce_rows;

static void mb_reduce_sum_rows(const float *x, int64_t base, const mb_reduce_rows *rr, int32_t *ridx,
                               int32_t squares_around_mean, float mean, mb_sum_f32 *s)
{
    mb_sum_f32 acc = *s; /* a local copy: x may alias *s as far as the compiler knows */
    int64_t off = base;
    for (int32_t r = 0; r < rr->rows; ++r) {
        const float *xr = x + off;
        if (squares_around_mean) {
            for (int32_t j = 0; j < rr->n; ++j) {
                const float dv = xr[(int64_t)j * rr->stride] - mean;
                mb_sum_add(&acc, dv * dv);
            }
        } else {
            for (int32_t j = 0; j < rr->n; ++j) {
                mb_sum_add(&acc, xr[(int64_t)j * rr->stride]);
            }
        }
        off += mb_reduce_step(ridx, rr->dims, rr->strides, rr->outer_rank);
    }
    *s = acc;
}

void mb_reduce_f32(const float *x, float *y, int32_t kind,
                   int32_t out_rank, const int32_t *out_dims, const int32_t *out_strides,
                   int32_t red_rank, const int32_t *red_dims, const int32_t *red_strides,
                   float correction)
{
    int32_t oidx[MB_MAX_RANK] = {0};
    int32_t ridx[MB_MAX_RANK] = {0};
    int32_t outs = 1, count = 1;
    if (out_rank > MB_MAX_RANK || red_rank > MB_MAX_RANK || red_rank < 1) {
        return;
    }
    for (int32_t d = 0; d < out_rank; ++d) {
        outs *= out_dims[d];
    }
    for (int32_t d = 0; d < red_rank; ++d) {
        count *= red_dims[d];
    }
    /* after a full sweep the odometer is back at zero, so ridx is reused for every output */
    const mb_reduce_rows rr = {count / red_dims[red_rank - 1], red_dims[red_rank - 1], red_strides[red_rank - 1],
                               red_rank - 1, red_dims, red_strides};
    int64_t base = 0;
    for (int32_t o = 0; o < outs; ++o) {
        float acc;
        if (kind == MB_REDUCE_MAX || kind == MB_REDUCE_MIN) {
            const int32_t is_max = kind == MB_REDUCE_MAX;
            int64_t off = base;
            acc = is_max ? -INFINITY : INFINITY;
            for (int32_t r = 0; r < rr.rows; ++r) {
                const float *xr = x + off;
                for (int32_t j = 0; j < rr.n; ++j) {
                    const float v = xr[(int64_t)j * rr.stride];
                    if (v != v || (is_max ? v > acc : v < acc)) {
                        acc = v;
                    }
                }
                off += mb_reduce_step(ridx, rr.dims, rr.strides, rr.outer_rank);
            }
        } else {
            mb_sum_f32 sum = {0.0f, 0.0f};
            mb_reduce_sum_rows(x, base, &rr, ridx, 0, 0.0f, &sum);
            acc = mb_sum_value(&sum);
            if (kind != MB_REDUCE_SUM) {
                acc = acc / (float)count;
            }
            if (kind == MB_REDUCE_VAR || kind == MB_REDUCE_STD) {
                /* second pass over the deviations: exact where E[x^2] - E[x]^2 cancels */
                mb_sum_f32 sq = {0.0f, 0.0f};
                mb_reduce_sum_rows(x, base, &rr, ridx, 1, acc, &sq);
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
