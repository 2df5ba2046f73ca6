"""Int8 data movement: lowering rules only (no new ops).

The data-movement ops (ops/layout.py, ops/reshape.py, ops/concat.py) and their kernels are
dtype-generic, so an int8 tensor moves through the same op:
- reshape (view / flatten / squeeze / unsqueeze), permute, slice, select, expand, repeat, flip,
  unfold, diagonal, pixel_shuffle, pixel_unshuffle, index_select, identity, dropout: the same node on
  the int8 tensor; the output takes the input's parameters. They are lowered only when their input is
  already int8 (produced by an int8 node): moving a float tensor in int8 would add a quantize node
  and a rounding for nothing, since the int8 consumer quantizes the moved float values just as well.
- concat: the output takes its calibrated parameters; every input is brought to them first, with
  one rounding where possible: a constant is quantized with them, a float activation (graph input,
  output of a float node) goes through a `quantize` node with them, an int8 activation with other
  parameters through `q_requantize`; then the usual `concat` runs on int8.

Not lowered: pad (its C emitter, ops/resize.py `_pad_emit`, and kernel `mb_pad_f32` are float only).
"""

from __future__ import annotations

from ..ir.dtypes import DType
from ..ir.graph import Tensor
from ..quant import arith
from ..quant.lowering import QuantContext, lowers
from .q_elementwise import requantize_to

MOVE_OPS = ("reshape", "permute", "slice", "select", "expand", "repeat", "flip", "unfold", "diagonal",
            "pixel_shuffle", "pixel_unshuffle", "index_select", "identity", "dropout")


@lowers(*MOVE_OPS)
def _lower_move(q: QuantContext, node) -> bool:
    x, y = node.inputs[0], node.outputs[0]
    if x not in q.int8_of:
        raise ValueError("its input is float32 (a graph input or a float node's output): it moves in float and "
                         "an int8 consumer quantizes the moved values")
    xq = q.int8_of[x]
    q.emit(node.op, [xq], [q.same_params_output(y, xq)], dict(node.attrs))
    return True


def _true_float(q: QuantContext, name: str) -> str | None:
    """The float tensor of the new graph holding `name` when it is float at the source (a graph input or
    the output of a float node), not a dequantized int8 tensor; else None."""
    fname = q.float_of.get(name)
    if fname is None:
        return None
    producer = next((n for n in q.graph.nodes if fname in n.outputs), None)
    return None if producer is not None and producer.op == "dequantize" else fname


@lowers("concat")
def _lower_concat(q: QuantContext, node) -> bool:
    y = node.outputs[0]
    params = q.params(y)
    if len(params.scale) != 1:
        raise ValueError(f"{y} does not have per-tensor int8 parameters")
    scale, zp = params.scale[0], params.zero_point[0]
    parts = []
    for k, x in enumerate(node.inputs):
        base = f"{node.name}_in{k}"
        source = _true_float(q, x)
        if q.is_constant(x):
            data = arith.quantize_values(q.constant_data(x), scale, zp)
            parts.append(q.constant(f"{x}_q", data, DType.int8, params))
        elif source is not None and (x not in q.int8_of or q.qparams(q.int8_of[x]) != (scale, zp)):
            # a float activation (graph input, float node): one rounding, straight to the output's parameters
            name = q.fresh(f"{x}_q")
            q.graph.add_tensor(Tensor(name, q.float_tensor(x).shape, DType.int8, params))
            q.emit("quantize", [source], [name], {"scale": scale, "zero_point": zp}, name=f"{base}_quantize")
            parts.append(name)
        else:
            parts.append(requantize_to(q, q.int8(x), params, base))
    q.emit("concat", parts, [q.output(y, params)], dict(node.attrs))
    return True
