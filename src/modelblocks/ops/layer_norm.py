"""layer_norm: normalise over the last `num_dims` dimensions, then optional scale and shift.

Sources: aten.layer_norm (nn.LayerNorm, F.layer_norm) and aten.native_layer_norm, whose mean and
rstd outputs (used only for training) are not produced. Weight and bias have the normalised shape
and may each be absent (elementwise_affine=False, bias=False).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, converts_onnx, numel, register


def _infer(node, ins):
    x, w, b = ins
    k = node.attrs["num_dims"]
    if x.dtype != DType.float32:
        raise ValueError(f"layer_norm takes float32, got {x.dtype.value}")
    if not 1 <= k <= len(x.shape):
        raise ValueError(f"cannot normalise the last {k} dims of a rank-{len(x.shape)} tensor")
    norm_shape = x.shape[len(x.shape) - k:]
    for what, t in (("weight", w), ("bias", b)):
        if t is not None and (t.shape != norm_shape or t.dtype != DType.float32):
            raise ValueError(f"{what} {t.dtype.value}{list(t.shape)} does not match the normalised shape {list(norm_shape)}")
    return [(x.shape, DType.float32)]


def _reference(node, args):
    x, w, b = args
    k = node.attrs["num_dims"]
    axes = tuple(range(x.ndim - k, x.ndim))
    v = x.astype(np.float64)
    mean = v.mean(axis=axes, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (v - mean) / np.sqrt(var + node.attrs["eps"])
    if w is not None:
        y = y * w.astype(np.float64)
    if b is not None:
        y = y + b.astype(np.float64)
    return [y.astype(np.float32)]


def _emit(ctx, node):
    x, w, b = node.inputs
    shape = ctx.shape(x)
    k = node.attrs["num_dims"]
    cols = numel(shape[len(shape) - k:])
    rows = numel(shape[:len(shape) - k])
    return (f"mb_layer_norm_f32({ctx.ptr(x)}, {ctx.ptr(w) if w else 'NULL'}, {ctx.ptr(b) if b else 'NULL'}, "
            f"{ctx.ptr(node.outputs[0])}, {rows}, {cols}, {ctx.f(node.attrs['eps'])});")


register(OpDef(
    name="layer_norm", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_layer_norm",),
    attrs={"num_dims": Attr("int", 1), "eps": Attr("float", 1e-5)}, num_inputs=(3, 3),
    macs=lambda node, ins, outs: 2 * numel(outs[0].shape),
    doc="y = (x - mean) / sqrt(var + eps) * weight + bias over the last num_dims dims",
))


@converts("aten.layer_norm.default", "aten.native_layer_norm.default")
def _from_layer_norm(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["input"])
    k = len(tuple(a["normalized_shape"]))
    rank = len(ctx.shape(x))
    if k == 0 or k > rank:
        raise ctx.unsupported(f"layer_norm over normalized_shape {list(a['normalized_shape'])} of a rank-{rank} input")
    y = ctx.emit1("layer_norm", [x, ctx.optional_tensor(a["weight"]), ctx.optional_tensor(a["bias"])],
                  {"num_dims": k, "eps": float(a["eps"])})
    if str(fx.target) == "aten.native_layer_norm.default":
        return (y, "", "")
    return y


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("LayerNormalization")
def _from_onnx_layer_norm(ctx, node):
    """Opset 17: normalise the dims from `axis` on; Scale and B broadcast to the normalised shape."""
    if ctx.output_used(1) or ctx.output_used(2):
        raise ctx.unsupported("LayerNormalization's Mean / InvStdDev outputs are not supported")
    x = ctx.input(0)
    shape = ctx.shape(x)
    rank = len(shape)
    axis = int(ctx.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ctx.unsupported(f"axis {axis} out of range for rank {rank}")
    norm_shape = shape[axis:]
    params = []
    for i, what in ((1, "Scale"), (2, "B")):
        if not ctx.has_input(i):
            params.append("")
            continue
        value = ctx.const(i)
        if value is not None and tuple(value.shape) != norm_shape:
            value = np.broadcast_to(np.asarray(value, dtype=np.float32), norm_shape)
            params.append(ctx.constant(np.ascontiguousarray(value), what.lower()))
        else:
            params.append(ctx.input(i))
    return ctx.emit1("layer_norm", [x, *params], {"num_dims": rank - axis, "eps": float(ctx.attr("epsilon", 1e-5))})
