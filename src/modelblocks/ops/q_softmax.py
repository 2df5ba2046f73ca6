"""q_softmax: int8 softmax over the last dimension, in integer arithmetic only.

Inputs: x int8 [..., n] (1 <= n <= 2048) and a constant table int32 [256] with
table[k] = round(exp(s_in * (k - 255)) * 2^20), the exponential of every possible x - max(row).
Per row: e_i = table[x_i - max + 255]; sum = sum_i e_i (fits uint32 since n <= 2048);
y_i = clamp((e_i * 256 + sum // 2) // sum - 128, -128, 127). The output has TFLite's fixed
parameters (scale 1/256, zero point -128). Being integer-only, C and NumPy agree by construction.

Lowering rule: float softmax over the last dim (any other dim, or rows longer than 2048, stays
float). log_softmax is not lowered.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import QuantParams
from ..quant import arith
from ..quant.lowering import QuantContext, lowers
from .registry import OpDef, numel, register

MAX_ROW = 2048  # 2048 * 2^20 = 2^31 still fits the uint32 sum
ONE = 1 << 20  # table value of exp(0)
OUT_PARAMS = QuantParams((1.0 / 256.0,), (-128,))


def _infer(node, ins):
    x, table = ins
    if x.dtype != DType.int8:
        raise ValueError(f"q_softmax takes int8, got {x.dtype.value}")
    if not x.shape or not 1 <= x.shape[-1] <= MAX_ROW:
        raise ValueError(f"q_softmax needs a last dimension of 1..{MAX_ROW}, got {list(x.shape)}")
    if table.dtype != DType.int32 or table.shape != (256,) or table.data is None:
        raise ValueError("q_softmax's table must be a constant int32 [256]")
    if table.data.min() < 0 or table.data.max() > ONE:
        raise ValueError(f"q_softmax's table values must lie in [0, 2^20], got "
                         f"[{table.data.min()}, {table.data.max()}]")
    return [(x.shape, DType.int8)]


def _reference(node, args):
    x, table = args
    x = x.astype(np.int64)
    e = table.astype(np.int64)[x - x.max(axis=-1, keepdims=True) + 255]
    s = e.sum(axis=-1, keepdims=True)
    y = (e * 256 + s // 2) // s - 128
    return [np.clip(y, arith.QMIN, arith.QMAX).astype(np.int8)]


def _emit(ctx, node):
    x, table = node.inputs
    shape = ctx.shape(x)
    return (f"mb_q_softmax_s8({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {numel(shape[:-1])}, {shape[-1]}, "
            f"{ctx.ptr(table)});")


register(OpDef(
    name="q_softmax", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_q_softmax",),
    num_inputs=(2, 2), macs=lambda node, ins, outs: numel(outs[0].shape),
    doc="int8 softmax over the last dim (output scale 1/256, zero point -128), integer only",
))


def exp_table(in_scale: float) -> np.ndarray:
    k = np.arange(256, dtype=np.float64)
    return arith.round_half_away(np.exp(float(in_scale) * (k - 255.0)) * ONE).astype(np.int32)


@lowers("softmax")
def _lower_softmax(q: QuantContext, node) -> bool:
    from .q_elementwise import input_params  # noqa: PLC0415

    x, y = node.inputs[0], node.outputs[0]
    shape = q.float_tensor(x).shape
    if not shape or node.attrs["dim"] != len(shape) - 1:
        raise ValueError("int8 softmax runs over the last dimension only")
    if not 1 <= shape[-1] <= MAX_ROW:
        raise ValueError(f"int8 softmax takes rows of at most {MAX_ROW} elements, got {shape[-1]}")
    s_in, _ = input_params(q, x)
    xq = q.int8(x)
    yq = q.output(y, OUT_PARAMS)
    q.emit("q_softmax", [xq, q.constant(f"{node.name}_exp", exp_table(s_in), DType.int32)], [yq])
    return True
