"""q_layer_norm: LayerNorm from int8 to int8, bit-exact between C and NumPy, and the int8 lowering of
the float `layer_norm` (TFLite has no int8 LayerNorm; the users' transformers are full of them).

Inputs: x int8 [rows, D] (over the last `num_dims` dims, zero point `in_zp`), g float32 [D] and
b float32 [D], the affine parameters folded with the output quantization: g = gamma / s_out and
b = beta / s_out + out_zp. Attribute `eps_q` = eps / s_in^2 (the epsilon in input steps).

Per row, integer sums are exact, and the rest is a fixed sequence of float32 operations that IEEE 754
rounds correctly (+, -, *, /, sqrt), in the same order in C (mb_q_layer_norm.c, compiled with
-ffp-contract=off) and here, so both give the same bits:

    sum   = sum_i (x_i - in_zp)            sumsq = sum_i (x_i - in_zp)^2         (int32)
    mean  = (float)sum / (float)D
    var   = max((float)sumsq / (float)D - mean * mean, 0)
    inv   = 1 / sqrtf(var + eps_q)
    y_i   = clamp(roundf(((float)(x_i - in_zp) - mean) * inv * g_i + b_i), -128, 127)

The variance from the two sums loses nothing that matters: sumsq is exact and the subtraction is done
once, on values of at most 255^2.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from ..quant.lowering import lowers
from .registry import Attr, OpDef, numel, register

MAX_D = 33025  # D * 255^2 must fit int32


def _infer(node, ins):
    x, g, b = ins
    k = node.attrs["num_dims"]
    if x.dtype != DType.int8:
        raise ValueError(f"q_layer_norm takes int8, got {x.dtype.value}")
    if not 1 <= k <= len(x.shape):
        raise ValueError(f"cannot normalise the last {k} dims of a rank-{len(x.shape)} tensor")
    d = numel(x.shape[len(x.shape) - k:])
    if d > MAX_D:
        raise ValueError(f"rows of {d} elements overflow the int32 sum of squares (at most {MAX_D})")
    for what, t in (("g", g), ("b", b)):
        if t.dtype != DType.float32 or t.shape != (d,):
            raise ValueError(f"{what} must be float32[{d}], got {t.dtype.value}{list(t.shape)}")
    if not -128 <= node.attrs["in_zp"] <= 127:
        raise ValueError("in_zp must be an int8 zero point")
    return [(x.shape, DType.int8)]


def _reference(node, args):
    x, g, b = args
    k = node.attrs["num_dims"]
    d = numel(x.shape[x.ndim - k:])
    v = x.reshape(-1, d).astype(np.int64) - node.attrs["in_zp"]
    f32 = np.float32
    s = v.sum(axis=1)
    ss = (v * v).sum(axis=1)
    mean = s.astype(f32) / f32(d)
    var = ss.astype(f32) / f32(d) - mean * mean
    var = np.maximum(var, f32(0))
    inv = f32(1) / np.sqrt(var + f32(node.attrs["eps_q"]))
    y = (v.astype(f32) - mean[:, None]) * inv[:, None] * g[None, :] + b[None, :]
    q = arith.round_half_away(y)
    q = np.clip(np.where(q > -128, q, -128), -128, 127)  # NaN cannot occur: var + eps_q > 0
    return [q.astype(np.int8).reshape(x.shape)]


def _emit(ctx, node):
    x, g, b = node.inputs
    shape = ctx.shape(x)
    k = node.attrs["num_dims"]
    cols = numel(shape[len(shape) - k:])
    rows = numel(shape[:len(shape) - k])
    return (f"mb_q_layer_norm_s8({ctx.ptr(x)}, {ctx.ptr(g)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, {rows}, "
            f"{cols}, {ctx.i(node.attrs['in_zp'])}, {ctx.f(node.attrs['eps_q'])});")


register(OpDef(
    name="q_layer_norm", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_q_layer_norm",),
    attrs={"num_dims": Attr("int", 1), "in_zp": Attr("int"), "eps_q": Attr("float")}, num_inputs=(3, 3),
    macs=lambda node, ins, outs: 3 * numel(outs[0].shape),
    doc="int8 LayerNorm: integer sums, then float32 steps that round the same in C and NumPy",
))


@lowers("layer_norm")
def _lower(q, node) -> bool:
    x, w, b = node.inputs
    t = q.float_tensor(x)
    k = node.attrs["num_dims"]
    d = numel(t.shape[len(t.shape) - k:])
    if d > MAX_D or (w and not q.is_constant(w)) or (b and not q.is_constant(b)):
        return False
    xq = q.int8(x)
    s_in, zp_in = q.qparams(xq)
    y = q.output(node.outputs[0])
    s_out, zp_out = q.qparams(y)
    gamma = q.constant_data(w).reshape(-1).astype(np.float64) if w else np.ones(d)
    beta = q.constant_data(b).reshape(-1).astype(np.float64) if b else np.zeros(d)
    eps_q = float(np.float32(node.attrs["eps"] / (s_in * s_in)))
    if not np.isfinite(eps_q) or eps_q <= 0:
        raise ValueError(f"eps {node.attrs['eps']} is not representable in input steps of {s_in}")
    g = q.constant(f"{node.name}_g", (gamma / s_out).astype(np.float32), DType.float32)
    bb = q.constant(f"{node.name}_b", (beta / s_out + zp_out).astype(np.float32), DType.float32)
    q.emit("q_layer_norm", [xq, g, bb], [y], {"num_dims": k, "in_zp": zp_in, "eps_q": eps_q})
    return True
