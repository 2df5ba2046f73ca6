/* ModelBlocks kernel library: definitions shared by every kernel. C99, no allocation. */
#ifndef MB_COMMON_H
#define MB_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Alignment beyond C99's guarantees, for the arena (GCC, Clang and Arm Compiler 6 understand it). */
#if defined(__GNUC__) || defined(__clang__)
#define MB_ALIGNED(n) __attribute__((aligned(n)))
#else
#define MB_ALIGNED(n)
#endif

/* Most dimensions a broadcasting kernel walks (ops/registry.py MAX_RANK: the shape rules refuse more). */
#define MB_MAX_RANK 8

/* Walking the batch dimensions of a broadcast: element count, offset of a multi-index under
 * per-dimension strides (0 on broadcast dimensions), and the odometer step (last dimension fastest). */
static inline int64_t mb_numel(const int32_t *dims, int32_t rank)
{
    int64_t n = 1;
    for (int32_t d = 0; d < rank; ++d) {
        n *= dims[d];
    }
    return n;
}

static inline int64_t mb_offset(const int32_t *idx, const int32_t *strides, int32_t rank)
{
    int64_t off = 0;
    for (int32_t d = 0; d < rank; ++d) {
        off += (int64_t)idx[d] * strides[d];
    }
    return off;
}

static inline void mb_next_index(int32_t *idx, const int32_t *dims, int32_t rank)
{
    for (int32_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < dims[d]) {
            return;
        }
        idx[d] = 0;
    }
}

/* Per-layer profiling hook. Define MB_PROFILE and provide mb_profile.h with
 * MB_PROFILE_BEGIN(id, name) / MB_PROFILE_END(id, name) to time each layer. */
#ifdef MB_PROFILE
#include "mb_profile.h"
#else
#define MB_PROFILE_BEGIN(id, name) ((void)0)
#define MB_PROFILE_END(id, name) ((void)0)
#endif

/* Clamp used by kernels that absorb a following ReLU / ReLU6 / Hardtanh. PyTorch's order,
 * min(max(v, lo), hi), so that lo > hi gives hi everywhere as torch.clamp does. */
static inline float mb_clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Compensated (Neumaier) sum: `comp` keeps the low-order bits each addition rounds away, so a
 * long row mixing large and small values (1e6 then 20,000 x 0.1) sums to within one rounding of
 * the exact value, where a plain float loop loses every small term. Used where a float kernel
 * sums a row of unbounded length (reductions, average pooling). */
typedef struct {
    float sum;
    float comp;
} mb_sum_f32;

static inline void mb_sum_add(mb_sum_f32 *s, float v)
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
static inline float mb_sum_value(const mb_sum_f32 *s)
{
    return isfinite(s->sum) ? s->sum + s->comp : s->sum;
}

#endif /* MB_COMMON_H */
