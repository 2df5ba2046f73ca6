"""q_lut: any one-input float elementwise function in int8, as a 256-entry look-up table.

y[i] = table[x[i] + 128]; the table (int8 [256], a constant input) is built at lowering time as
table[q + 128] = quantize(f(dequantize(q))), with f the float op's own NumPy reference evaluated on
the 256 dequantized inputs (float32, as the float graph would see them). So every float op of
`activations.UNARY` (sigmoid, tanh, gelu, silu, hardswish, elu, clamp = ReLU / ReLU6 / Hardtanh,
exp, ...) lowers the same way, and the int8 result is the float op's result on the dequantized
input, rounded once to the output grid.

Output parameters: calibrated, except sigmoid (scale 1/256, zero point -128) and tanh (scale
1/128, zero point 0), TFLite's fixed parameters for those two.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import QuantParams
from ..quant import arith
from ..quant.lowering import QuantContext, lowers
from .activations import UNARY
from .registry import OpDef, Prop, get_op, numel, register

FIXED_PARAMS = {
    "sigmoid": QuantParams((1.0 / 256.0,), (-128,)),
    "tanh": QuantParams((1.0 / 128.0,), (0,)),
}


def _infer(node, ins):
    x, table = ins
    if x.dtype != DType.int8 or table.dtype != DType.int8:
        raise ValueError(f"q_lut takes an int8 input and an int8 table, got {x.dtype.value} and {table.dtype.value}")
    if table.shape != (256,):
        raise ValueError(f"the table must be int8 [256], got {list(table.shape)}")
    return [(x.shape, DType.int8)]


def _reference(node, args):
    x, table = args
    return [table[x.astype(np.int64) + 128].astype(np.int8)]


def _emit(ctx, node):
    x, table = node.inputs
    return f"mb_q_lut_s8({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {numel(ctx.shape(x))}, {ctx.ptr(table)});"


register(OpDef(
    name="q_lut", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_q_lut",),
    num_inputs=(2, 2), props=frozenset({Prop.ELEMENTWISE}),
    doc="int8 elementwise function by a 256-entry table: y = table[x + 128]",
))


def lut_table(node, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """The int8 [256] table of float node `node` (a one-input elementwise op) for these parameters."""
    q = np.arange(arith.QMIN, arith.QMAX + 1, dtype=np.int32)
    x = arith.dequantize_values(q, in_scale, in_zp)
    y = get_op(node.op).reference(node, [x])[0]
    return arith.quantize_values(np.asarray(y, dtype=np.float32), out_scale, out_zp)


LUT_OPS = tuple(u.name for u in UNARY)


@lowers(*LUT_OPS)
def _lower_lut(q: QuantContext, node) -> bool:
    from .q_elementwise import input_params  # noqa: PLC0415

    x, y = node.inputs[0], node.outputs[0]
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        raise ValueError("a table needs one input and one output")
    s_in, zp_in = input_params(q, x)
    params = FIXED_PARAMS.get(node.op) or q.params(y)
    if len(params.scale) != 1:
        raise ValueError(f"{y} does not have per-tensor int8 parameters")
    table = lut_table(node, s_in, zp_in, params.scale[0], params.zero_point[0])
    xq = q.int8(x)
    yq = q.output(y, params)
    q.emit("q_lut", [xq, q.constant(f"{node.name}_lut", table, DType.int8)], [yq])
    return True
