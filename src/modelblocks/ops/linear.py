"""linear: y = x @ W^T + b over the last dimension, with an optional fused clamp (ReLU, ReLU6).

Sources: aten.linear. W is [out, in] as in nn.Linear; x may have any leading dimensions.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import CLAMP_ATTRS, OpDef, Prop, apply_clamp, converts, numel, register


def _infer(node, ins):
    x, w, b = ins
    if x.dtype != DType.float32 or w.dtype != DType.float32:
        raise ValueError(f"linear takes float32, got {x.dtype.value} and {w.dtype.value}")
    if len(w.shape) != 2 or not x.shape or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not match weight {list(w.shape)}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias {list(b.shape)} does not match weight {list(w.shape)}")
    return [(x.shape[:-1] + (w.shape[0],), DType.float32)]


def _reference(node, args):
    x, w, b = args
    y = np.matmul(x.astype(np.float64), w.astype(np.float64).T)
    if b is not None:
        y = y + b
    return [apply_clamp(y.astype(np.float32), node)]


def _emit(ctx, node):
    x, w, b = node.inputs
    out_features, in_features = ctx.shape(w)
    rows = numel(ctx.shape(x)[:-1])
    bias = ctx.ptr(b) if b else "NULL"
    return (f"mb_linear_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {bias}, {ctx.ptr(node.outputs[0])}, "
            f"{rows}, {in_features}, {out_features}, {ctx.clamp(node)});")


def _macs(node, ins, outs):
    return numel(outs[0].shape) * ins[1].shape[1]


register(OpDef(
    name="linear", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_linear",),
    attrs=CLAMP_ATTRS, num_inputs=(3, 3), macs=_macs, props=frozenset({Prop.FUSED_CLAMP}),
    doc="y = clamp(x @ W^T + b)",
))


@converts("aten.linear.default")
def _from_linear(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("linear", [ctx.tensor(a["input"]), ctx.tensor(a["weight"]), ctx.optional_tensor(a["bias"])])
