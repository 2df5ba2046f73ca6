#include "mb_cast.h"

/* One kernel per (source, destination) pair from one conversion expression of the element v. */
#define MB_CAST(from, to, tin, tout, expr)                                  \
    void mb_cast_##from##_to_##to(const tin *x, tout *y, int32_t n)         \
    {                                                                       \
        for (int32_t i = 0; i < n; ++i) {                                   \
            const tin v = x[i];                                             \
            y[i] = (tout)(expr);                                            \
        }                                                                   \
    }

MB_CAST(f32, i32, float, int32_t, (int32_t)v)
MB_CAST(f32, i16, float, int16_t, (int16_t)v)
MB_CAST(f32, i8, float, int8_t, (int8_t)v)
MB_CAST(f32, u8, float, uint8_t, (uint8_t)v)
MB_CAST(f32, bool, float, uint8_t, (v != 0) ? 1u : 0u)
MB_CAST(i32, f32, int32_t, float, (float)v)
MB_CAST(i32, i16, int32_t, int16_t, (int16_t)v)
MB_CAST(i32, i8, int32_t, int8_t, (int8_t)v)
MB_CAST(i32, u8, int32_t, uint8_t, (uint8_t)v)
MB_CAST(i32, bool, int32_t, uint8_t, (v != 0) ? 1u : 0u)
MB_CAST(i16, f32, int16_t, float, (float)v)
MB_CAST(i16, i32, int16_t, int32_t, (int32_t)v)
MB_CAST(i16, i8, int16_t, int8_t, (int8_t)v)
MB_CAST(i16, u8, int16_t, uint8_t, (uint8_t)v)
MB_CAST(i16, bool, int16_t, uint8_t, (v != 0) ? 1u : 0u)
MB_CAST(i8, f32, int8_t, float, (float)v)
MB_CAST(i8, i32, int8_t, int32_t, (int32_t)v)
MB_CAST(i8, i16, int8_t, int16_t, (int16_t)v)
MB_CAST(i8, u8, int8_t, uint8_t, (uint8_t)v)
MB_CAST(i8, bool, int8_t, uint8_t, (v != 0) ? 1u : 0u)
MB_CAST(u8, f32, uint8_t, float, (float)v)
MB_CAST(u8, i32, uint8_t, int32_t, (int32_t)v)
MB_CAST(u8, i16, uint8_t, int16_t, (int16_t)v)
MB_CAST(u8, i8, uint8_t, int8_t, (int8_t)v)
MB_CAST(u8, bool, uint8_t, uint8_t, (v != 0) ? 1u : 0u)
MB_CAST(bool, f32, uint8_t, float, (float)v)
MB_CAST(bool, i32, uint8_t, int32_t, (int32_t)v)
MB_CAST(bool, i16, uint8_t, int16_t, (int16_t)v)
MB_CAST(bool, i8, uint8_t, int8_t, (int8_t)v)
MB_CAST(bool, u8, uint8_t, uint8_t, (uint8_t)v)
