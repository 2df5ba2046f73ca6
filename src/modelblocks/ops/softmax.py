"""softmax and log_softmax along one dimension, numerically stable (the row maximum is
subtracted before exp).

Sources: aten._softmax / aten.softmax.int and aten._log_softmax / aten.log_softmax.int.
The C kernel sees the input as [outer][n][inner] and walks the normalised dimension with
stride `inner`, so no transpose is needed for dim != -1.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, converts_onnx, normalize_dim, numel, register


def _infer(node, ins):
    x = ins[0]
    if x.dtype != DType.float32:
        raise ValueError(f"{node.op} takes float32, got {x.dtype.value}")
    if not 0 <= node.attrs["dim"] < max(len(x.shape), 1):
        raise ValueError(f"dim {node.attrs['dim']} out of range for rank {len(x.shape)}")
    return [(x.shape, DType.float32)]


def _reference_for(log: bool):
    def reference(node, args):
        x = args[0].astype(np.float64)
        axis = node.attrs["dim"] if x.ndim else None
        with np.errstate(invalid="ignore"):
            z = x - np.max(x, axis=axis, keepdims=True)
            s = np.sum(np.exp(z), axis=axis, keepdims=True)
            y = z - np.log(s) if log else np.exp(z) / s
        return [y.astype(np.float32)]

    return reference


def _emit_for(name: str):
    def emit(ctx, node):
        shape = ctx.shape(node.inputs[0]) or (1,)
        d = node.attrs["dim"]
        return (f"mb_{name}_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
                f"{numel(shape[:d])}, {shape[d]}, {numel(shape[d + 1:])});")

    return emit


for _name in ("softmax", "log_softmax"):
    register(OpDef(
        name=_name, infer=_infer, reference=_reference_for(_name == "log_softmax"), emit=_emit_for(_name),
        kernels=("mb_softmax",), attrs={"dim": Attr("int")},
        macs=lambda node, ins, outs: numel(outs[0].shape),
        doc=f"{_name} along `dim` (non-negative)",
    ))


def _convert(ctx, fx, op: str):
    a = ctx.args(fx)
    if a.get("half_to_float"):
        raise ctx.unsupported("softmax with half_to_float=True is not supported")
    import torch  # noqa: PLC0415

    if a.get("dtype") not in (None, torch.float32):
        raise ctx.unsupported(f"{op} with dtype={a['dtype']} is not supported (float32 only)")
    x = ctx.tensor(a["self"])
    dim = normalize_dim(int(a["dim"]), len(ctx.shape(x)), op)
    return ctx.emit1(op, [x], {"dim": dim})


@converts("aten._softmax.default", "aten.softmax.int")
def _softmax(ctx, fx):
    return _convert(ctx, fx, "softmax")


@converts("aten._log_softmax.default", "aten.log_softmax.int")
def _log_softmax(ctx, fx):
    return _convert(ctx, fx, "log_softmax")


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Softmax", "LogSoftmax")
def _from_onnx_softmax(ctx, node):
    """Opset 13+: softmax along `axis` (default -1). Before 13: over all dims from `axis` on (default 1),
    the input seen as a 2-D [prod(dims before axis), prod(dims from axis)] matrix."""
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    x = ctx.input(0)
    shape = ctx.shape(x)
    rank = len(shape)
    if ctx.opset >= 13:
        return ctx.emit1(op, [x], {"dim": normalize_dim(int(ctx.attr("axis", -1)), rank, node.name)})
    axis = normalize_dim(int(ctx.attr("axis", 1)), rank, node.name)
    if axis == rank - 1:
        return ctx.emit1(op, [x], {"dim": axis})
    flat = ctx.emit1("reshape", [x], {"shape": (numel(shape[:axis]), numel(shape[axis:]))})
    y = ctx.emit1(op, [flat], {"dim": 1})
    return ctx.emit1("reshape", [y], {"shape": shape})
