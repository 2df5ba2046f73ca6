/* Float32 -> int8 quantization on the FPv5 instructions of the Cortex-M7 (and M33, M55): the quotient is
 * bounded to [-256, 256] by VMAXNM / VMINNM (a NaN becomes -256: VMAXNM returns the number), rounded half
 * away from zero and converted by one VCVTA, offset by the zero point and saturated to int8 by SSAT. The
 * bound keeps the integer small without changing the clamped result (|zero_point| <= 128 < 256), so this is
 * mb_quantize_f32_s8 bit for bit, the same division included.
 *
 * Off Arm (the host tests, or MB_PORTABLE_DSP) the same steps run in plain C. An Arm core without FPv5 (the
 * M4's FPv4 has neither VMAXNM nor VCVTA, and roundf is a library call there) runs the reference loop,
 * which is faster than these steps in C. */
#include "mb_quantize_opt.h"

#include <math.h>
#include <string.h>

#include "mb_arm.h"
#include "mb_quantize.h"

#if MB_ARM_DSP && defined(__ARM_FP) && (((__ARM_FP) & 8) || __ARM_ARCH >= 8)
/* FPv5: the M7's double-precision FPU, or any Armv8-M FPU */
#define MB_FPV5 1
#else
#define MB_FPV5 0
#endif

#if MB_FPV5 || !defined(__arm__) || defined(MB_PORTABLE_DSP)

/* v bounded to [-256, 256], NaN to -256 */
static inline float mb_bound256(float v)
{
#if MB_FPV5
    return fminf(fmaxf(v, -256.0f), 256.0f); /* VMAXNM, VMINNM */
#else
    v = v > -256.0f ? v : -256.0f;
    return v < 256.0f ? v : 256.0f;
#endif
}

/* roundf(v) as an integer, for |v| <= 256 */
static inline int32_t mb_round_s32(float v)
{
#if MB_FPV5
    float r;
    int32_t i;
    __asm__("vcvta.s32.f32 %0, %1" : "=t"(r) : "t"(v));
    memcpy(&i, &r, sizeof i);
    return i;
#else
    return (int32_t)roundf(v);
#endif
}

static inline int8_t mb_quantize_one(float x, float scale, int32_t zero_point)
{
    const int32_t v = mb_round_s32(mb_bound256(x / scale)) + zero_point;
#if MB_ARM_DSP
    return (int8_t)__ssat(v, 8);
#else
    return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
#endif
}

void mb_quantize_f32_s8_fpv5(const float *x, int8_t *y, int32_t n, float scale, int32_t zero_point)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        y[i] = mb_quantize_one(x[i], scale, zero_point);
        y[i + 1] = mb_quantize_one(x[i + 1], scale, zero_point);
        y[i + 2] = mb_quantize_one(x[i + 2], scale, zero_point);
        y[i + 3] = mb_quantize_one(x[i + 3], scale, zero_point);
    }
    for (; i < n; ++i) {
        y[i] = mb_quantize_one(x[i], scale, zero_point);
    }
}

#else

void mb_quantize_f32_s8_fpv5(const float *x, int8_t *y, int32_t n, float scale, int32_t zero_point)
{
    mb_quantize_f32_s8(x, y, n, scale, zero_point);
}

#endif
