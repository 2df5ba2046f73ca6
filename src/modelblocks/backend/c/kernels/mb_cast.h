#ifndef MB_CAST_H
#define MB_CAST_H
#include <stdint.h>

/* y[i] = x[i] converted to another element type with PyTorch's rules: float to integer
 * truncates toward zero, anything to bool (stored as uint8_t) is x != 0. */
#define MB_CAST_DECL(from, to, tin, tout) void mb_cast_##from##_to_##to(const tin *x, tout *y, int32_t n);
MB_CAST_DECL(f32, i32, float, int32_t)
MB_CAST_DECL(f32, i16, float, int16_t)
MB_CAST_DECL(f32, i8, float, int8_t)
MB_CAST_DECL(f32, u8, float, uint8_t)
MB_CAST_DECL(f32, bool, float, uint8_t)
MB_CAST_DECL(i32, f32, int32_t, float)
MB_CAST_DECL(i32, i16, int32_t, int16_t)
MB_CAST_DECL(i32, i8, int32_t, int8_t)
MB_CAST_DECL(i32, u8, int32_t, uint8_t)
MB_CAST_DECL(i32, bool, int32_t, uint8_t)
MB_CAST_DECL(i16, f32, int16_t, float)
MB_CAST_DECL(i16, i32, int16_t, int32_t)
MB_CAST_DECL(i16, i8, int16_t, int8_t)
MB_CAST_DECL(i16, u8, int16_t, uint8_t)
MB_CAST_DECL(i16, bool, int16_t, uint8_t)
MB_CAST_DECL(i8, f32, int8_t, float)
MB_CAST_DECL(i8, i32, int8_t, int32_t)
MB_CAST_DECL(i8, i16, int8_t, int16_t)
MB_CAST_DECL(i8, u8, int8_t, uint8_t)
MB_CAST_DECL(i8, bool, int8_t, uint8_t)
MB_CAST_DECL(u8, f32, uint8_t, float)
MB_CAST_DECL(u8, i32, uint8_t, int32_t)
MB_CAST_DECL(u8, i16, uint8_t, int16_t)
MB_CAST_DECL(u8, i8, uint8_t, int8_t)
MB_CAST_DECL(u8, bool, uint8_t, uint8_t)
MB_CAST_DECL(bool, f32, uint8_t, float)
MB_CAST_DECL(bool, i32, uint8_t, int32_t)
MB_CAST_DECL(bool, i16, uint8_t, int16_t)
MB_CAST_DECL(bool, i8, uint8_t, int8_t)
MB_CAST_DECL(bool, u8, uint8_t, uint8_t)
#undef MB_CAST_DECL

#endif
