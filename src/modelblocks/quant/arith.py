"""The integer arithmetic of the int8 scheme, in NumPy, exactly as the C kernels do it.

The scheme is TFLite's int8 specification, which CMSIS-NN implements:
- activations int8, asymmetric, one (scale, zero point) per tensor: real = scale * (q - zp);
- weights int8, symmetric (zp = 0), one scale per output channel;
- bias int32 with scale = input scale * weight scale of its channel, zp = 0;
- a 32-bit accumulator rescaled to the output by a real multiplier M = s_in * s_w / s_out that is
  spelled as a Q31 fixed-point `multiplier` in [2^30, 2^31) and a power-of-two `shift`,
  M = multiplier * 2^(shift - 31) (TFLite's QuantizeMultiplier).

`requantize` is CMSIS-NN's `arm_nn_requantize` (the default, double-rounding variant):
`arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult_no_sat(acc << left, multiplier), right)`,
i.e. a doubling high multiply that rounds half up, then a divide by 2^right that rounds half away
from zero. mb_quant.h has the same function in C; tests/quant/test_arith.py checks the two agree
on edge values. One deliberate difference: when `shift > 0` CMSIS-NN's `acc << left` may overflow
int32 (undefined behaviour in C); here and in mb_quant.h it saturates.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.graph import QuantParams

QMIN, QMAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31)."""
    real = float(real)
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"a requantization multiplier must be finite and non-negative, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    q = math.floor(mantissa * (1 << 31) + 0.5)  # std::round, half away from zero (exact in double)
    if q == 1 << 31:
        q //= 2
        exponent += 1
    if exponent < -31:  # below 2^-32 the product rounds to 0 for any int32 accumulator
        return 0, 0
    if exponent > 30:
        raise ValueError(f"requantization multiplier {real} is too large for the int8 scheme")
    return int(q), int(exponent)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers as arrays (int32 multiplier, int8 shift) for the C tables."""
    pairs = [quantize_multiplier(r) for r in np.asarray(reals, dtype=np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int8))


def requantize(acc, multiplier, shift) -> np.ndarray:
    """CMSIS-NN arm_nn_requantize on int32 values (arrays broadcast), returned as int64."""
    acc = np.asarray(acc, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    v = np.clip(acc * (np.int64(1) << left), INT32_MIN, INT32_MAX)
    high = (v * multiplier + (np.int64(1) << 30)) >> 31
    return divide_by_power_of_two(high, right)


def divide_by_power_of_two(x, exponent) -> np.ndarray:
    """x / 2^exponent rounded half away from zero (arm_nn_divide_by_power_of_two)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    result = x >> exponent
    threshold = (mask >> 1) + (result < 0)
    return result + (remainder > threshold)


def round_half_away(x) -> np.ndarray:
    """C's roundf / TFLite's TfLiteRound on float32 values, computed exactly in float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_values(x, scale: float, zero_point: int, qmin: int = QMIN, qmax: int = QMAX) -> np.ndarray:
    """What the C `mb_quantize_f32_s8` computes: clamp(roundf(x / scale) + zp), the division in float32.
    NaN gives qmin (the C compares `!(v > qmin)`)."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        v = round_half_away(x / np.float32(scale)) + zero_point
        v = np.where(v > qmin, v, qmin)
        v = np.minimum(v, qmax)
    return v.astype(np.int8 if qmin >= -128 and qmax <= 127 else np.int32)


def dequantize_values(q, scale: float, zero_point: int) -> np.ndarray:
    """What the C `mb_dequantize_s8_f32` computes: (float)(q - zp) * scale in float32."""
    return (np.asarray(q, dtype=np.int32) - zero_point).astype(np.float32) * np.float32(scale)


def params_from_range(lo: float, hi: float, qmin: int = QMIN, qmax: int = QMAX) -> QuantParams:
    """Asymmetric per-tensor parameters covering [lo, hi] (widened to contain 0, so that zero, ReLU's
    floor and zero padding are exact), TFLite's ChooseQuantizationParams."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"cannot quantize the range [{lo}, {hi}]")
    if hi == lo:
        return QuantParams((1.0,), (0,))
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp_from_min = qmin - lo / scale
    zp_from_max = qmax - hi / scale
    err_min = abs(qmin) + abs(lo / scale)
    err_max = abs(qmax) + abs(hi / scale)
    zp = zp_from_min if err_min < err_max else zp_from_max
    zp = int(min(max(round_half_away(zp), qmin), qmax))
    return QuantParams((scale,), (zp,))


def symmetric_scales(w: np.ndarray, axis: int = 0, qmax: int = QMAX) -> np.ndarray:
    """Per-channel symmetric scales (float32 values) along `axis`: max|w| / 127. An all-zero channel
    (pruned) takes the median scale of the others, so that its bias, quantized at s_in * s_w, keeps
    the precision of its neighbours' biases (1.0 when every channel is zero)."""
    w = np.asarray(w, dtype=np.float64)
    other = tuple(d for d in range(w.ndim) if d != axis)
    amax = np.max(np.abs(w), axis=other) if other else np.abs(w)
    live = amax[amax > 0]
    fill = float(np.median(live)) / qmax if live.size else 1.0
    scales = np.where(amax > 0, amax / qmax, fill)
    return scales.astype(np.float32)


def quantize_symmetric(w: np.ndarray, scales: np.ndarray, axis: int = 0, qmax: int = QMAX) -> np.ndarray:
    """int8 weights for per-channel `scales` (round half away from zero, clamped to [-qmax, qmax])."""
    w = np.asarray(w, dtype=np.float64)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = round_half_away(w / np.asarray(scales, dtype=np.float64).reshape(shape))
    return np.clip(q, -qmax, qmax).astype(np.int8)


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal to quantization noise ratio in dB; inf when equal, -inf for a zero signal with noise."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((reference - np.asarray(approx, dtype=np.float64)) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
