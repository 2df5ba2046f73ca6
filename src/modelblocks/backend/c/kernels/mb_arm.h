/* The Armv7E-M DSP instructions the optimised int8 kernels are written with.
 *
 * On a core that has them (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55) they are the ACLE intrinsics of
 * <arm_acle.h>, one instruction each. Anywhere else (the host, where tests run the optimised kernels
 * under AddressSanitizer and UndefinedBehaviorSanitizer) they are portable C with the same results,
 * so one generated C file computes the same numbers on every target. Define MB_PORTABLE_DSP to force
 * the portable versions on an Arm core.
 *
 * Halfword pairs: bits 0..15 hold the element at the lower address (little endian), bits 16..31 the
 * next one. SXTB16 sign-extends bytes 0 and 2 of a word into such a pair; with ROR #8 first, bytes 1
 * and 3. That is why a word of four int8 weights (w0 w1 w2 w3) meets its inputs as (x0, x2) and
 * (x1, x3): the kernels store their int16 input buffers in that order. */
#ifndef MB_ARM_H
#define MB_ARM_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MB_PORTABLE_DSP)
#include <arm_acle.h>
#define MB_ARM_DSP 1

/* acc + lo(x) * lo(y) + hi(x) * hi(y) */
static inline int32_t mb_smlad(int32_t x, int32_t y, int32_t acc)
{
    return __smlad(x, y, acc);
}

/* (int16) byte 0, (int16) byte 2 */
static inline int32_t mb_sxtb16(int32_t x)
{
    return __sxtb16(x);
}

/* (int16) byte 1, (int16) byte 3: one SXTB16 with its rotation (GCC 12 does not fold a separate
 * rotate into it, and arm_acle.h of GCC 12 has no __ror) */
static inline int32_t mb_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* pair + sign-extended bytes 0 and 2 of x, each halfword separately (offsets an int8 pair) */
static inline int32_t mb_sxtab16(int32_t pair, int32_t x)
{
    return __sxtab16(pair, x);
}

static inline int32_t mb_sxtab16_ror8(int32_t pair, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(pair), "r"(x));
    return r;
}

/* x saturated to [-256, 255] (SSAT #9) */
static inline int32_t mb_ssat9(int32_t x)
{
    return __ssat(x, 9);
}

/* x saturated to [-128, 127] (SSAT #8) */
static inline int32_t mb_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

/* (x * y + 2^31) >> 32: the high word of the product, rounded (SMMULR; not in ACLE) */
static inline int32_t mb_smmulr(int32_t x, int32_t y)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
    return r;
}

/* acc + ((x * y + 2^31) >> 32), modulo 2^32: SMMULR with an addend (SMMLAR) */
static inline int32_t mb_smmlar(int32_t x, int32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

#else /* portable C with the instructions' results */
#define MB_ARM_DSP 0

static inline int32_t mb_lo16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}

static inline int32_t mb_hi16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x >> 16);
}

static inline int32_t mb_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

static inline int32_t mb_smlad(int32_t x, int32_t y, int32_t acc)
{
    /* SMLAD adds modulo 2^32 (it only sets the Q flag on overflow) */
    return (int32_t)((uint32_t)acc + (uint32_t)(mb_lo16(x) * mb_lo16(y)) + (uint32_t)(mb_hi16(x) * mb_hi16(y)));
}

static inline int32_t mb_byte(int32_t x, int k)
{
    return (int8_t)(uint8_t)(((uint32_t)x >> (8 * k)) & 0xFFu);
}

static inline int32_t mb_sxtb16(int32_t x)
{
    return mb_pack16(mb_byte(x, 0), mb_byte(x, 2));
}

static inline int32_t mb_sxtb16_ror8(int32_t x)
{
    return mb_pack16(mb_byte(x, 1), mb_byte(x, 3));
}

static inline int32_t mb_sxtab16(int32_t pair, int32_t x)
{
    return mb_pack16(mb_lo16(pair) + mb_byte(x, 0), mb_hi16(pair) + mb_byte(x, 2));
}

static inline int32_t mb_sxtab16_ror8(int32_t pair, int32_t x)
{
    return mb_pack16(mb_lo16(pair) + mb_byte(x, 1), mb_hi16(pair) + mb_byte(x, 3));
}

static inline int32_t mb_ssat9(int32_t x)
{
    return x > 255 ? 255 : (x < -256 ? -256 : x);
}

static inline int32_t mb_ssat8(int32_t x)
{
    return x > 127 ? 127 : (x < -128 ? -128 : x);
}

static inline int32_t mb_smmulr(int32_t x, int32_t y)
{
    return (int32_t)(((int64_t)x * y + ((int64_t)1 << 31)) >> 32);
}

static inline int32_t mb_smmlar(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)mb_smmulr(x, y)); /* the high word wraps as the instruction's */
}
#endif

/* Four int8 (or two int16) from any address as one word: memcpy is one LDR on Armv7-M, which allows
 * unaligned word loads, and it keeps the C free of aliasing and alignment undefined behaviour. */
static inline int32_t mb_load_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t mb_load_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* dst[0..3] = src[0..3] - zp as int16, with `negzp` = (-zp, -zp) as a halfword pair: one word load, two
 * SXTAB16 (bytes 0, 2 and 1, 3 plus the offset) and two halfword packs (PKHBT / PKHTB). */
static inline void mb_widen4_s8(const int8_t *src, int16_t *dst, int32_t negzp)
{
    const int32_t v = mb_load_s8x4(src);
    const uint32_t even = (uint32_t)mb_sxtab16(negzp, v);     /* x0 - zp, x2 - zp */
    const uint32_t odd = (uint32_t)mb_sxtab16_ror8(negzp, v); /* x1 - zp, x3 - zp */
    const uint32_t lo = (even & 0xFFFFu) | (odd << 16);        /* x0, x1 */
    const uint32_t hi = (even >> 16) | (odd & 0xFFFF0000u);    /* x2, x3 */
    memcpy(dst, &lo, 4);
    memcpy(dst + 2, &hi, 4);
}

static inline int32_t mb_negzp_pair(int32_t zp)
{
    return (int32_t)(((uint32_t)(uint16_t)(int16_t)-zp) * 0x10001u);
}

#endif /* MB_ARM_H */
