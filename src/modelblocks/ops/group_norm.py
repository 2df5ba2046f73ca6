"""group_norm: normalise each (sample, group of channels) over its channels and positions, then
an optional per-channel affine. x is (N, C, *) with C divisible by `groups`; inputs (x, gamma,
beta), gamma and beta [C] or "" (absent).

y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], var the biased variance.

InstanceNorm is group_norm with groups = C (input statistics). InstanceNorm with
track_running_stats=True uses its running statistics at inference: that is a per-channel
multiply-add, emitted as the batch_norm op.

Sources: aten.group_norm, aten.native_group_norm (mean / rstd outputs not produced),
aten.instance_norm; ONNX InstanceNormalization and GroupNormalization (opset 18's per-group scale /
bias repeated over each group's channels; 21's per-channel ones as they are).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .batch_norm import from_running_stats
from .registry import Attr, OpDef, converts, converts_onnx, numel, register


def _infer(node, ins):
    x, gamma, beta = ins
    g = node.attrs["groups"]
    if x.dtype != DType.float32:
        raise ValueError(f"group_norm takes float32, got {x.dtype.value}")
    if len(x.shape) < 2:
        raise ValueError(f"group_norm needs (N, C, ...), got {list(x.shape)}")
    c = x.shape[1]
    if g < 1 or c % g:
        raise ValueError(f"{c} channels do not split into {g} groups")
    for t, what in ((gamma, "weight"), (beta, "bias")):
        if t is not None and t.shape != (c,):
            raise ValueError(f"{what} {list(t.shape)} must have shape [{c}]")
    return [(x.shape, DType.float32)]


def _reference(node, args):
    x, gamma, beta = args
    g = node.attrs["groups"]
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, g, -1)
    mean = xg.mean(axis=2, keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=2, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + node.attrs["eps"])).reshape((n, c, -1))
    if gamma is not None:
        y = y * gamma.astype(np.float64).reshape(1, c, 1)
    if beta is not None:
        y = y + beta.astype(np.float64).reshape(1, c, 1)
    return [y.reshape(x.shape).astype(np.float32)]


def _emit(ctx, node):
    x, gamma, beta = node.inputs
    shape = ctx.shape(x)
    return (f"mb_group_norm_f32({ctx.ptr(x)}, {ctx.ptr(gamma) if gamma else 'NULL'}, "
            f"{ctx.ptr(beta) if beta else 'NULL'}, {ctx.ptr(node.outputs[0])}, {shape[0]}, {shape[1]}, "
            f"{numel(shape[2:])}, {node.attrs['groups']}, {ctx.f(node.attrs['eps'])});")


register(OpDef(
    name="group_norm", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_group_norm",),
    attrs={"groups": Attr("int"), "eps": Attr("float", 1e-5)}, num_inputs=(3, 3),
    macs=lambda node, ins, outs: 3 * numel(outs[0].shape),
    doc="normalise per (sample, channel group), then per-channel gamma / beta (optional)",
))


def _affine(ctx, value, what):
    if value is None:
        return ""
    return ctx.tensor(value)


@converts("aten.group_norm.default")
def _from_group_norm(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["input"])
    return ctx.emit1("group_norm", [x, _affine(ctx, a["weight"], "weight"), _affine(ctx, a["bias"], "bias")],
                     {"groups": int(a["num_groups"]), "eps": float(a["eps"])})


@converts("aten.native_group_norm.default")
def _from_native_group_norm(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["input"])
    y = ctx.emit1("group_norm", [x, _affine(ctx, a["weight"], "weight"), _affine(ctx, a["bias"], "bias")],
                  {"groups": int(a["group"]), "eps": float(a["eps"])})
    return (y, "", "")


@converts("aten.instance_norm.default")
def _from_instance_norm(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["input"])
    shape = ctx.shape(x)
    if len(shape) < 3:
        raise ctx.unsupported(f"instance_norm needs (N, C, *spatial), got {list(shape)}")
    c = shape[1]
    eps = float(a["eps"])
    if a["use_input_stats"]:
        return ctx.emit1("group_norm", [x, _affine(ctx, a["weight"], "weight"), _affine(ctx, a["bias"], "bias")],
                         {"groups": c, "eps": eps})
    # running statistics (InstanceNorm(track_running_stats=True) in eval mode): a per-channel affine
    return from_running_stats(ctx, x, a, "InstanceNorm")


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("InstanceNormalization")
def _from_onnx_instance_norm(ctx, node):
    x = ctx.input(0)
    if len(ctx.shape(x)) < 3:
        raise ctx.unsupported(f"input of shape {list(ctx.shape(x))} is not (N, C, *spatial)")
    return ctx.emit1("group_norm", [x, ctx.input(1), ctx.input(2)],
                     {"groups": ctx.shape(x)[1], "eps": float(ctx.attr("epsilon", 1e-5))})


@converts_onnx("GroupNormalization")
def _from_onnx_group_norm(ctx, node):
    """scale / bias hold one value per channel from opset 21 on, one per group in opset 18 (repeated
    here over each group's channels, which needs them constant)."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    groups = int(ctx.attr("num_groups"))
    if len(shape) < 2 or groups < 1 or shape[1] % groups:
        raise ctx.unsupported(f"attribute num_groups={groups} does not divide the channels of {list(shape)}")
    if int(ctx.attr("stash_type", 1)) != 1:
        raise ctx.unsupported(f"attribute stash_type={ctx.attr('stash_type')} is not supported (1, float32, is)")
    affine = []
    for i, what in ((1, "scale"), (2, "bias")):
        if ctx.input_shape(i) == (shape[1],):
            affine.append(ctx.input(i))
        elif ctx.input_shape(i) == (groups,):
            value = ctx.required_const(i, f"per-group {what}")
            per_channel = np.repeat(np.asarray(value, dtype=np.float32), shape[1] // groups)
            affine.append(ctx.constant(per_channel, what))
        else:
            raise ctx.unsupported(f"{what} of shape {list(ctx.input_shape(i))} fits neither {shape[1]} channels "
                                  f"nor {groups} groups")
    return ctx.emit1("group_norm", [x, *affine], {"groups": groups, "eps": float(ctx.attr("epsilon", 1e-5))})
