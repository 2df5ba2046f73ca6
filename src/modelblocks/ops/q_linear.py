"""q_linear: int8 fully connected layer (TFLite int8 / CMSIS-NN arm_fully_connected_s8), and the
int8 lowering rule of the float `linear` op.

Inputs: x int8 [..., in] (per tensor, zero point `in_zp`), w int8 [out, in] (symmetric per output
channel), bias int32 [out] (scale s_in * s_w[o]; zeros when the float op has none), mult int32 [out]
and shift int8 [out] (the per-channel requantization M[o] = s_in * s_w[o] / s_out, see quant/arith.py).

    acc[r, o] = bias[o] + sum_i (x[r, i] - in_zp) * w[o, i]                       (int32)
    y[r, o]   = clamp(requantize(acc, mult[o], shift[o]) + out_zp, act_min, act_max)

`act_min`/`act_max` are the int8 image of the float op's fused clamp (ReLU, ReLU6) or [-128, 127].
The accumulator never overflows int32: the shape rule rejects any graph whose worst case
|bias| + in * 255 * 128 reaches 2^31, and the lowering keeps such a linear in float.

The helpers at the bottom (`input_params`, `multipliers_fit`, `acc_bound_ok`, `check_q_attrs`) are
shared with q_conv.py and q_matmul.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import QuantParams
from ..quant import arith
from ..quant.lowering import lowers
from .registry import Attr, OpDef, Variant, numel, register

ACC_LIMIT = 2**31  # the int32 accumulator's worst case must stay strictly below this
XW_MAX = 255 * 128  # |(x - in_zp) * w| for int8 x, in_zp and w

Q_ATTRS = {"in_zp": Attr("int"), "out_zp": Attr("int"), "act_min": Attr("int", arith.QMIN),
           "act_max": Attr("int", arith.QMAX)}


# -- helpers shared by the int8 ops of this family ---------------------------------------------------

def check_q_attrs(node, zps: Sequence[str]) -> None:
    a = node.attrs
    for key in zps:
        if not arith.QMIN <= a[key] <= arith.QMAX:
            raise ValueError(f"{key}={a[key]} is not an int8 zero point")
    lo, hi = a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX)
    if not arith.QMIN <= lo <= hi <= arith.QMAX:
        raise ValueError(f"needs -128 <= act_min <= act_max <= 127, got [{lo}, {hi}]")


def check_tables(ins, channels: int) -> None:
    """bias int32 [channels], mult int32 [channels], shift int8 [channels]."""
    for t, dt, what in zip(ins, (DType.int32, DType.int32, DType.int8), ("bias", "mult", "shift")):
        if t is None or t.dtype != dt or t.shape != (channels,):
            got = "nothing" if t is None else f"{t.dtype.value}{list(t.shape)}"
            raise ValueError(f"{what} must be {dt.value}[{channels}], got {got}")
    mult, shift = ins[1], ins[2]
    if mult.data is not None and np.any(mult.data < 0):
        raise ValueError("requantization multipliers must be >= 0")
    if shift.data is not None and (np.any(shift.data > 30) or np.any(shift.data < -31)):
        raise ValueError("requantization shifts must lie in [-31, 30]")


def bias_bound(bias) -> int:
    """max |bias| of a constant int32 bias tensor (0 when unknown or absent)."""
    if bias is None or bias.data is None or not bias.data.size:
        return 0
    return int(np.max(np.abs(bias.data.astype(np.int64))))


def acc_bound_ok(k: int, per_term: int, bias_abs: int = 0, limit: int = ACC_LIMIT) -> bool:
    return bias_abs + int(k) * per_term < limit


def finish(acc: np.ndarray, mult, shift, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """requantize + out_zp + clamp, exactly as the C kernels do (acc is int64 holding int32 values)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < arith.INT32_MIN or acc.max() > arith.INT32_MAX):
        raise ValueError("int8 accumulator overflows int32")
    y = arith.requantize(acc, mult, shift) + out_zp
    return np.clip(y, act_min, act_max).astype(np.int8)


def input_params(q, name: str) -> tuple[float, int]:
    """(scale, zero point) that `q.int8(name)` will give, without building anything: an already
    lowered tensor keeps its parameters (they may differ from the calibrated ones), otherwise the
    calibrated (or, for a constant, the constant's own) per-tensor parameters."""
    if name in q.int8_of:
        p = q.graph.tensors[q.int8_of[name]].quant
    else:
        p = q.params(name)
    if p is None or p.axis is not None or len(p.scale) != 1:
        raise ValueError(f"{name} is not quantized per tensor")
    return float(p.scale[0]), int(p.zero_point[0])


def multipliers_fit(reals) -> bool:
    """True when every real multiplier has a (mult, shift) spelling."""
    try:
        arith.quantize_multipliers(reals)
    except ValueError:
        return False
    return True


def quantized_bias_abs(q, bias_name: str, scales: np.ndarray) -> int | None:
    """max |round(b / scales)| as q.bias computes it, None when it does not fit int32."""
    if not bias_name:
        return 0
    data = q.constant_data(bias_name).astype(np.float64)
    with np.errstate(all="ignore"):
        v = arith.round_half_away(data / np.asarray(scales, dtype=np.float64))
    if not np.all(np.isfinite(v)) or np.any(np.abs(v) > arith.INT32_MAX):
        return None
    return int(np.max(np.abs(v), initial=0))


def output_params_ok(p: QuantParams | None) -> bool:
    return p is not None and p.axis is None and len(p.scale) == 1 and p.scale[0] > 0


# -- q_linear -----------------------------------------------------------------------------------------

def _infer(node, ins):
    x, w = ins[0], ins[1]
    check_q_attrs(node, ("in_zp", "out_zp"))
    if x.dtype != DType.int8 or w.dtype != DType.int8:
        raise ValueError(f"q_linear takes int8 x and w, got {x.dtype.value} and {w.dtype.value}")
    if len(w.shape) != 2 or not x.shape or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not match weight {list(w.shape)}")
    check_tables(ins[2:], w.shape[0])
    if not acc_bound_ok(w.shape[1], XW_MAX, bias_bound(ins[2])):
        raise ValueError(f"{w.shape[1]} inputs per output may overflow the int32 accumulator")
    return [(x.shape[:-1] + (w.shape[0],), DType.int8)]


def _reference(node, args):
    x, w, bias, mult, shift = args
    a = node.attrs
    acc = np.matmul(x.astype(np.int64) - a["in_zp"], w.astype(np.int64).T) + bias.astype(np.int64)
    return [finish(acc, mult.astype(np.int64), shift.astype(np.int64), a["out_zp"],
                   a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX))]


def _emit(ctx, node):
    x, w, bias, mult, shift = node.inputs
    a = node.attrs
    out_features, in_features = ctx.shape(w)
    rows = numel(ctx.shape(x)[:-1])
    return (f"mb_q_linear_s8({ctx.ptr(x)}, {ctx.ptr(w)}, {ctx.ptr(bias)}, {ctx.ptr(mult)}, {ctx.ptr(shift)}, "
            f"{ctx.ptr(node.outputs[0])}, {rows}, {in_features}, {out_features}, {ctx.i(a['in_zp'])}, "
            f"{ctx.i(a['out_zp'])}, {ctx.i(a.get('act_min', arith.QMIN))}, {ctx.i(a.get('act_max', arith.QMAX))});")


def _macs(node, ins, outs):
    return numel(outs[0].shape) * ins[1].shape[1]


# -- optimised kernels (mb_q_linear_opt.c on the SMLAD cores of mb_q_gemm.c) --------------------------

FAST_ACC_LIMIT = 2**30  # MB_Q_FAST_ACC_LIMIT in mb_q_gemm.h


def fast_requant_ok(ins, k: int) -> bool:
    """The optimised int8 kernels requantize in fewer instructions for accumulators below 2^30 (about
    32k products per output) and multipliers below 1 (shift <= 0): true of nearly every layer; the
    others run the reference kernel."""
    shift = ins[4]
    return (acc_bound_ok(k, XW_MAX, bias_bound(ins[2]), FAST_ACC_LIMIT) and shift.data is not None
            and (shift.data.size == 0 or int(shift.data.max()) <= 0))


def padded8(k: int) -> int:
    return -(-int(k) // 8) * 8


def pack_weights(w2d: np.ndarray, block: int) -> np.ndarray:
    """int8 weights [cout, K] as the int32 words mb_q_gemm.c streams: K padded with zeros to a
    multiple of 8; each four weights in the byte order (w0, w2, w1, w3), so that SXTB16 and SXTB16
    ROR #8 give the pairs (w0, w1) and (w2, w3); output channels in blocks of `block` (the last ones
    in a pair, then alone) whose words are interleaved group by group."""
    cout, k = w2d.shape
    k8 = padded8(k)
    padded = np.zeros((cout, k8), dtype=np.int8)
    padded[:, :k] = w2d
    words = np.ascontiguousarray(padded.reshape(cout, k8 // 4, 4)[:, :, [0, 2, 1, 3]]).view("<i4")
    words = words.reshape(cout, k8 // 4).astype(np.int32)
    blocks, o = [], 0
    for size in (block, 2, 1):
        while cout - o >= size:
            blocks.append(words[o:o + size].T.reshape(-1))
            o += size
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int32)


def pack_gemm_stream(w2d: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """What mb_q_gemm.c's `mb_q_gemm_s8` reads, in one int32 stream: per block of two output channels
    (the last channel alone) its biases, its weights as `pack_weights` lays out blocks of 2, its
    multipliers, and one word holding the right shifts e = -shift as bytes (e0, e1), so that the kernel
    walks one pointer and needs no register for the per-channel tables."""
    cout, k = w2d.shape
    words = pack_weights(w2d, 2)
    per_channel = words.size // max(cout, 1)
    e = (-np.asarray(shift, dtype=np.int64)).astype(np.int64)
    parts, o = [], 0
    for size in (2, 1):
        while cout - o >= size:
            ch = slice(o, o + size)
            e_word = int(sum(int(v) << (8 * i) for i, v in enumerate(e[ch])))
            parts += [np.asarray(bias[ch], dtype=np.int32), words[o * per_channel:(o + size) * per_channel],
                      np.asarray(mult[ch], dtype=np.int32), np.array([e_word], dtype=np.int32)]
            o += size
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def gemm_stream(ctx, w: str, bias: str, mult: str, shift: str, layout: str = "stream",
                matrix=lambda data: data) -> str:
    """The C symbol of the layer's `pack_gemm_stream` (weights first turned into [cout, K] by `matrix`)."""
    return ctx.relayout(w, layout, lambda wd, b, m, sh: pack_gemm_stream(matrix(wd), b, m, sh),
                        with_tensors=(bias, mult, shift))


def _rows(ins) -> int:
    return numel(ins[0].shape[:-1])


def _emit_opt(ctx, node, kind: str, block: int) -> str:
    x, w, bias, mult, shift = node.inputs
    a = node.attrs
    out_features, in_features = ctx.shape(w)
    if kind == "gemm":
        weights = gemm_stream(ctx, w, bias, mult, shift)
    else:
        wp = ctx.relayout(w, f"{kind}_words", lambda data: pack_weights(data, block))
        weights = f"{wp}, {ctx.ptr(bias)}, {ctx.ptr(mult)}, {ctx.ptr(shift)}"
    return (f"mb_q_linear_s8_{kind}({ctx.ptr(x)}, {weights}, "
            f"{ctx.ptr(node.outputs[0])}, {numel(ctx.shape(x)[:-1])}, {in_features}, {out_features}, "
            f"{ctx.i(a['in_zp'])}, {ctx.i(a['out_zp'])}, {ctx.i(a.get('act_min', arith.QMIN))}, "
            f"{ctx.i(a.get('act_max', arith.QMAX))}, {ctx.scratch(node, 'int16_t')});")


def _emit_any(ctx, node):
    if node.kernel == "gemm":
        return _emit_opt(ctx, node, "gemm", 2)
    if node.kernel == "matvec":
        return _emit_opt(ctx, node, "matvec", 4)
    return _emit(ctx, node)


_OPT_KERNELS = ("mb_q_linear_opt", "mb_q_gemm", "mb_arm")
VARIANTS = (
    Variant("gemm", applies=lambda node, ins, outs: _rows(ins) >= 2 and fast_requant_ok(ins, ins[1].shape[1]),
            kernels=_OPT_KERNELS,
            scratch_bytes=lambda node, ins, outs: 2 * 2 * padded8(ins[1].shape[1]),
            doc="two input rows x two output channels per pass (SMLAD), for batches and token sequences"),
    Variant("matvec", applies=lambda node, ins, outs: fast_requant_ok(ins, ins[1].shape[1]), kernels=_OPT_KERNELS,
            scratch_bytes=lambda node, ins, outs: 2 * padded8(ins[1].shape[1]),
            doc="one input row x four output channels per pass (SMLAD)"),
)

register(OpDef(
    name="q_linear", infer=_infer, reference=_reference, emit=_emit_any, kernels=("mb_q_linear", "mb_quant"),
    attrs=Q_ATTRS, num_inputs=(5, 5), macs=_macs, variants=VARIANTS,
    doc="int8 y = clamp(requant(bias + (x - in_zp) @ W^T) + out_zp), per-channel requantization",
))


@dataclass
class WeightedLayer:
    """The int8 inputs and attributes a lowered linear / conv node shares (`lower_weighted`)."""

    inputs: list  # [xq, wq, bias, mult, shift]
    output: str
    attrs: dict  # in_zp, out_zp, act_min, act_max


def lower_weighted(q, node, reduce_len: int) -> WeightedLayer | None:
    """int8 weights (symmetric per output channel), int32 bias and requantization tables for a
    linear or conv node whose weight (and bias) are constants; `reduce_len` is the number of
    products summed per output. None when the layer must stay float32: unknown input range,
    output parameters or multipliers out of range, or an accumulator that could overflow."""
    x, w, b = node.inputs
    y = node.outputs[0]
    try:
        s_in, _zp = input_params(q, x)
    except (KeyError, ValueError):
        return None
    p_out = q.params(y)
    if not output_params_ok(p_out):
        return None
    acc_scales = s_in * arith.symmetric_scales(q.constant_data(w), 0).astype(np.float64)
    if not multipliers_fit(acc_scales / float(p_out.scale[0])):
        return None
    bias_abs = quantized_bias_abs(q, b, acc_scales)
    if bias_abs is None or not acc_bound_ok(reduce_len, XW_MAX, bias_abs):
        return None

    xq = q.int8(x)
    s_in, in_zp = q.qparams(xq)
    wq, scales = q.weight(w, axis=0)
    acc_scales = float(s_in) * scales.astype(np.float64)
    bias = q.bias(b or None, acc_scales, q.float_tensor(w).shape[0])
    mult, shift = q.requant_tables(acc_scales / float(p_out.scale[0]))
    yq = q.output(y)
    lo, hi = q.clamp_range(node, yq)
    return WeightedLayer([xq, wq, bias, mult, shift], yq,
                         {"in_zp": int(in_zp), "out_zp": int(q.qparams(yq)[1]), "act_min": lo, "act_max": hi})


@lowers("linear")
def _lower_linear(q, node) -> bool:
    x, w, b = node.inputs
    if not q.is_constant(w) or (b and not q.is_constant(b)):
        return False  # an activation as weight is a matmul's job; keep this one in float
    wt = q.float_tensor(w)
    if len(wt.shape) != 2:
        return False
    layer = lower_weighted(q, node, wt.shape[1])
    if layer is None:
        return False
    q.emit("q_linear", layer.inputs, [layer.output], layer.attrs)
    return True
