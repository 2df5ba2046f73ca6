"""prelu: y = x > 0 ? x : w[c] * x, one slope (w of 1 element) or one per channel (dim 1).

Sources: aten.prelu (nn.PReLU, F.prelu) and aten._prelu_kernel (whose weight is already shaped
to broadcast over the channel dim: (C, 1, ...)). For inputs of rank < 2 there is no channel dim
and the weight must hold a single slope, as in torch. ONNX PRelu: one slope, or one per channel
aligned with dim 1 (ONNX broadcasts the slope from the right, so [C] against (N, C, H, W) is not).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import OpDef, Prop, converts, converts_onnx, numel, register


def _channels(shape, w_numel):
    """(outer, channels, inner) walk of the input for a weight of w_numel slopes."""
    if w_numel == 1:
        return 1, 1, numel(shape)
    return shape[0], shape[1], numel(shape[2:])


def _infer(node, ins):
    x, w = ins
    if x.dtype != DType.float32 or w.dtype != DType.float32:
        raise ValueError(f"prelu takes float32, got {x.dtype.value} and {w.dtype.value}")
    if len(w.shape) != 1:
        raise ValueError(f"prelu weight must be 1-D, got {list(w.shape)}")
    if w.shape[0] != 1 and (len(x.shape) < 2 or x.shape[1] != w.shape[0]):
        raise ValueError(f"{w.shape[0]} slopes do not match the channels of input {list(x.shape)}")
    return [(x.shape, DType.float32)]


def _reference(node, args):
    x, w = args
    shape = (1, -1) + (1,) * (x.ndim - 2) if w.size != 1 else ()
    wv = w.astype(np.float64).reshape(shape)
    v = x.astype(np.float64)
    return [np.where(v > 0, v, wv * v).astype(np.float32)]


def _emit(ctx, node):
    x, w = node.inputs
    outer, channels, inner = _channels(ctx.shape(x), numel(ctx.shape(w)))
    return f"mb_prelu_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {ctx.ptr(node.outputs[0])}, {outer}, {channels}, {inner});"


register(OpDef(
    name="prelu", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_prelu",), num_inputs=(2, 2),
    macs=lambda node, ins, outs: numel(outs[0].shape), props=frozenset({Prop.ELEMENTWISE}),
    doc="y = x > 0 ? x : w[c] * x (channel dim 1, or one slope)",
))


@converts("aten.prelu.default", "aten._prelu_kernel.default")
def _from_prelu(ctx, fx):
    a = ctx.args(fx)
    x, w = ctx.tensor(a["self"]), ctx.tensor(a["weight"])
    xs, ws = ctx.shape(x), ctx.shape(w)
    n = numel(ws)
    if str(fx.target) == "aten.prelu.default":
        ok = n == 1 or (len(ws) == 1 and len(xs) >= 2 and xs[1] == n)
    else:  # _prelu_kernel broadcasts the weight elementwise: it must be (C, 1, ...) against dim 1
        pad = (1,) * (len(xs) - len(ws)) + tuple(ws)
        ok = n == 1 or (len(pad) == len(xs) and len(xs) >= 2 and pad[1] == xs[1] == n)
    if not ok:
        raise ctx.unsupported(f"prelu weight {list(ws)} for input {list(xs)}: only one slope or one "
                              "per channel (dim 1) is supported")
    if len(ws) != 1:
        w = ctx.emit1("reshape", [w], {"shape": (n,)})
    return ctx.emit1("prelu", [x, w])


@converts_onnx("PRelu")
def _from_onnx_prelu(ctx, node):
    """slope broadcasts unidirectionally against x (NumPy rules from the right): one slope, or one per
    channel (dim 1) like nn.PReLU's exported [C, 1, 1]."""
    x, w = ctx.input(0), ctx.input(1)
    xs, ws = ctx.shape(x), ctx.shape(w)
    n = numel(ws)
    aligned = (1,) * (len(xs) - len(ws)) + tuple(ws)
    if not (n == 1 or (len(aligned) == len(xs) and len(xs) >= 2 and aligned[1] == xs[1] == n)):
        raise ctx.unsupported(f"slope of shape {list(ws)} for input {list(xs)} is not supported (one slope, or "
                              "one per channel along dim 1, are)")
    if ws != (n,):
        w = ctx.emit1("reshape", [w], {"shape": (n,)})
    return ctx.emit1("prelu", [x, w])
