#ifndef MB_UNARY_H
#define MB_UNARY_H
#include <stdint.h>

/* Elementwise kernels y[i] = f(x[i]; a, b); x and y may be the same buffer. */
#define MB_UNARY_DECL(name) void mb_##name##_f32(const float *x, float *y, int32_t n, float a, float b);
MB_UNARY_DECL(clamp)
MB_UNARY_DECL(leaky_relu)
MB_UNARY_DECL(sigmoid)
MB_UNARY_DECL(tanh)
MB_UNARY_DECL(gelu)
MB_UNARY_DECL(silu)
MB_UNARY_DECL(hardswish)
MB_UNARY_DECL(hardsigmoid)
MB_UNARY_DECL(elu)
MB_UNARY_DECL(softplus)
MB_UNARY_DECL(mish)
MB_UNARY_DECL(exp)
MB_UNARY_DECL(log)
MB_UNARY_DECL(sqrt)
MB_UNARY_DECL(rsqrt)
MB_UNARY_DECL(reciprocal)
MB_UNARY_DECL(abs)
MB_UNARY_DECL(neg)
MB_UNARY_DECL(erf)
MB_UNARY_DECL(sin)
MB_UNARY_DECL(cos)
MB_UNARY_DECL(pow_scalar)
#undef MB_UNARY_DECL

#endif
