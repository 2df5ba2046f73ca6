"""batch_norm (inference): y[n, c, ...] = x[n, c, ...] * scale[c] + shift[c].

The converter precomputes scale = gamma / sqrt(var + eps) and shift = beta - mean * scale from
the running statistics, so the kernel is one multiply-add per element. `passes/fold_batchnorm.py`
folds it into a preceding conv or linear whenever it can.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import OpDef, Prop, converts, converts_onnx, numel, register


def _infer(node, ins):
    x, scale, shift = ins
    if x.dtype != DType.float32 or len(x.shape) < 2:
        raise ValueError(f"batch_norm takes float32 of rank >= 2, got {x.dtype.value}{list(x.shape)}")
    if scale.shape != (x.shape[1],) or shift.shape != (x.shape[1],):
        raise ValueError(f"scale/shift must have shape [{x.shape[1]}]")
    return [(x.shape, DType.float32)]


def _channel_view(v, rank):
    return v.reshape((1, -1) + (1,) * (rank - 2)).astype(np.float64)


def _reference(node, args):
    x, scale, shift = args
    return [(x.astype(np.float64) * _channel_view(scale, x.ndim) + _channel_view(shift, x.ndim)).astype(np.float32)]


def _emit(ctx, node):
    x, scale, shift = node.inputs
    shape = ctx.shape(x)
    return (f"mb_batch_norm_f32({ctx.ptr(x)}, {ctx.ptr(scale)}, {ctx.ptr(shift)}, {ctx.ptr(node.outputs[0])}, "
            f"{shape[0]}, {shape[1]}, {numel(shape[2:])});")


register(OpDef(
    name="batch_norm", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_batch_norm",),
    num_inputs=(3, 3), macs=lambda node, ins, outs: numel(outs[0].shape),
    props=frozenset({Prop.ELEMENTWISE}),  # mb_batch_norm_f32 reads x[i] before it writes y[i]: safe in place
    doc="per-channel affine y = x * scale[c] + shift[c] (channel = dim 1)",
))


def from_running_stats(ctx, x: str, a: dict, what: str) -> str:
    """A batch_norm node for `x` from constant running statistics and optional affine parameters
    (the aten args `running_mean`, `running_var`, `weight`, `bias`, `eps`)."""
    channels = ctx.shape(x)[1]
    mean, var = ctx.constant_value(a.get("running_mean")), ctx.constant_value(a.get("running_var"))
    if mean is None or var is None:
        raise ctx.unsupported(f"{what} without constant running statistics is not supported")
    gamma = ctx.constant_value(a["weight"]) if a.get("weight") is not None else np.ones(channels)
    beta = ctx.constant_value(a["bias"]) if a.get("bias") is not None else np.zeros(channels)
    if gamma is None or beta is None:
        raise ctx.unsupported(f"{what} with non-constant affine parameters is not supported")
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(a["eps"]))
    shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return ctx.emit1("batch_norm", [x, ctx.constant(scale.astype(np.float32), "bn_scale"),
                                    ctx.constant(shift.astype(np.float32), "bn_shift")])


@converts("aten._native_batch_norm_legit_no_training.default", "aten.batch_norm.default",
          "aten._native_batch_norm_legit.no_stats", "aten.native_batch_norm.default")
def _from_batch_norm(ctx, fx):
    a = ctx.args(fx)
    if str(fx.target).endswith(".no_stats"):
        raise ctx.unsupported("BatchNorm with track_running_stats=False (batch statistics at inference) "
                              "is not supported: train with running statistics")
    if a.get("training"):
        raise ctx.unsupported("BatchNorm in training mode: call model.eval() before compiling")
    y = from_running_stats(ctx, ctx.tensor(a["input"]), a, "BatchNorm")
    if str(fx.target) == "aten.batch_norm.default":
        return y
    return (y, "", "")


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("BatchNormalization")
def _from_onnx_batch_norm(ctx, node):
    """Inference mode only (training_mode=0, opset 14+; the running statistics outputs unused)."""
    if int(ctx.attr("training_mode", 0)) or any(ctx.output_used(k) for k in (1, 2, 3, 4)):
        raise ctx.unsupported("BatchNormalization in training mode (batch statistics) is not supported: export "
                              "the model in eval mode")
    if ctx.opset < 7 and int(ctx.attr("is_test", 0)) == 0 and ctx.has_attr("is_test"):
        raise ctx.unsupported("BatchNormalization with is_test=0 is not supported")
    a = {"weight": ctx.input_name(1), "bias": ctx.input_name(2), "running_mean": ctx.input_name(3),
         "running_var": ctx.input_name(4), "eps": float(ctx.attr("epsilon", 1e-5))}
    return from_running_stats(ctx, ctx.input(0), a, "BatchNormalization")
