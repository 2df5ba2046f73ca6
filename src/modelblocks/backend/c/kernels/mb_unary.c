#include "mb_unary.h"
#include "mb_common.h"

static inline float mb_softplusf(float v, float beta, float threshold)
{
    return v * beta > threshold ? v : log1pf(expf(v * beta)) / beta;
}

/* One kernel per op from one expression of the element v and the parameters a, b. */
#define MB_UNARY(name, expr)                                                    \
    void mb_##name##_f32(const float *x, float *y, int32_t n, float a, float b) \
    {                                                                           \
        (void)a;                                                                \
        (void)b;                                                                \
        for (int32_t i = 0; i < n; ++i) {                                       \
            const float v = x[i];                                               \
            y[i] = (expr);                                                      \
        }                                                                       \
    }

/* a = min, b = max (+-INFINITY when absent) */
MB_UNARY(clamp, mb_clampf(v, a, b))
/* a = negative slope */
MB_UNARY(leaky_relu, v > 0.0f ? v : v * a)
MB_UNARY(sigmoid, 1.0f / (1.0f + expf(-v)))
MB_UNARY(tanh, tanhf(v))
/* a = 1 selects the tanh approximation */
MB_UNARY(gelu, a != 0.0f ? 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)))
                         : 0.5f * v * (1.0f + erff(v * 0.7071067811865476f)))
MB_UNARY(silu, v / (1.0f + expf(-v)))
MB_UNARY(hardswish, v * mb_clampf(v + 3.0f, 0.0f, 6.0f) / 6.0f)
MB_UNARY(hardsigmoid, mb_clampf(v + 3.0f, 0.0f, 6.0f) / 6.0f)
/* a = alpha * scale, b = scale (SELU and CELU are ELU with other constants) */
MB_UNARY(elu, v > 0.0f ? b * v : a * expm1f(v))
/* a = beta, b = threshold */
MB_UNARY(softplus, mb_softplusf(v, a, b))
MB_UNARY(mish, v * tanhf(mb_softplusf(v, 1.0f, 20.0f)))
MB_UNARY(exp, expf(v))
MB_UNARY(log, logf(v))
MB_UNARY(sqrt, sqrtf(v))
MB_UNARY(rsqrt, 1.0f / sqrtf(v))
MB_UNARY(reciprocal, 1.0f / v)
MB_UNARY(abs, fabsf(v))
MB_UNARY(neg, -v)
MB_UNARY(erf, erff(v))
MB_UNARY(sin, sinf(v))
MB_UNARY(cos, cosf(v))
/* a = exponent; squares and square roots are exact and common */
MB_UNARY(pow_scalar, a == 2.0f ? v * v : (a == 0.5f ? sqrtf(v) : (a == 1.0f ? v : powf(v, a))))
