"""ONNX QDQ models (QuantizeLinear -> DequantizeLinear around activations, DequantizeLinear on int8
weights and int32 biases, as onnxruntime's `quantize_static(quant_format=QuantFormat.QDQ)` writes them)
keep their scales and zero points in the IR:

- an activation's Q -> DQ pair (IR `quantize` -> `dequantize` nodes, ops/quantize.py) is removed and the
  float tensor it rounded gets `Tensor.quant`: a quantization override, which the int8 pass uses instead
  of a calibrated range (quant/lowering.py). A float32 activation with `quant` means exactly this.
- a DequantizeLinear of a constant is folded to float (frontend constant folding); for int8/uint8
  weights the folded float constant then gets the model's own (per-channel) scales, so that the int8
  rules re-quantize it to the same int8 values. The converters may transpose a weight (Gemm, MatMul), so
  constants are matched by their data, not their names.

A pair whose Q output feeds anything else, or whose tensor already has other parameters, stays as real
`quantize` / `dequantize` nodes, which compute in float what onnxruntime computes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.dtypes import DType
from ..ir.graph import Graph, QuantParams
from ..ops.quantize import onnx_qdq_params

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


# ops that move values without reading them as numbers, so a uint8 QuantizeLinear result held as
# int8 q - 128 passes through them unharmed (its DequantizeLinear undoes the shift)
_SHIFT_SAFE = ("DequantizeLinear", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity")
_UINT8 = 2  # TensorProto.UINT8


def track_shifted_uint8(ctx, node, shifted: set[str], label: str) -> None:
    """Refuse a node that would read a uint8 QuantizeLinear result as a number: the IR holds it as int8
    q - 128, so anything but a DequantizeLinear (or a pure data move ending in one) would be 128 off.
    `shifted` collects the ONNX values holding such results."""
    read = [i for i in node.input if i in shifted]
    if read and node.op_type not in _SHIFT_SAFE:
        raise UnsupportedOpError(
            f"{node.op_type} (node '{node.name}') in {label} reads '{read[0]}', the uint8 result of a QuantizeLinear, "
            "as a number. ModelBlocks holds uint8 quantized values as int8 (q - 128), which only a "
            "DequantizeLinear (after reshapes or transposes) reads correctly. What to change: quantize the "
            "activations to int8 (QuantType.QInt8), or dequantize before this node")
    if node.op_type == "QuantizeLinear" and ctx.elem_type(node.output[0]) == _UINT8:
        shifted.add(node.output[0])
    elif read and node.op_type != "DequantizeLinear":
        shifted.update(o for o in node.output if o)


@dataclass(frozen=True)
class ConstantScales:
    """What a folded DequantizeLinear of a constant int8/uint8 tensor was: its scales, int8 zero points and
    axis (None: per tensor)."""

    scales: np.ndarray
    zero_points: np.ndarray
    axis: int | None


def fold_constant(ctx, node, const_env: dict) -> ConstantScales | None:
    """Evaluate a Q/DQ whose inputs are constants (onnx.reference lacks them before opset 19), refusing what the
    IR cannot keep (int4, int16, float8, blocked) first. A DequantizeLinear of an int8/uint8 constant returns
    its scales (an int32 bias: None)."""
    values = np.asarray(const_env[node.input[0]])
    if node.op_type == "QuantizeLinear":
        p = onnx_qdq_params(ctx)
        shape = _channel_shape(ctx, values, p.scales, p.axis)
        q8 = np.rint(values.astype(np.float32) / p.scales.reshape(shape))  # ONNX rounds half to even
        q8 = np.clip(q8 + p.zero_points.reshape(shape), -128, 127)
        const_env[node.output[0]] = (q8 + 128).astype(np.uint8) if p.unsigned else q8.astype(np.int8)
        return None
    bias = values.dtype == np.int32  # the int8 rules re-quantize a bias at s_in * s_w, giving back this int32
    if bias:
        if int(ctx.attr("block_size", 0)) != 0:
            raise ctx.unsupported("blocked quantization of an int32 bias is not supported")
        scales = np.asarray(ctx.required_const(1, "the scale"), dtype=np.float32).reshape(-1)
        zp = ctx.const(2)
        stored_zps = np.zeros(1, np.int64) if zp is None else np.asarray(zp, dtype=np.int64).reshape(-1)
        axis = int(ctx.attr("axis", 1)) if scales.size > 1 else None
    else:
        p = onnx_qdq_params(ctx, values.dtype)
        scales, axis = p.scales, p.axis
        stored_zps = p.zero_points + 128 if p.unsigned else p.zero_points  # the values are stored as uint8
    shape = _channel_shape(ctx, values, scales, axis)
    const_env[node.output[0]] = ((values.astype(np.int64) - stored_zps.reshape(shape)).astype(np.float32)
                                 * scales.reshape(shape)).astype(np.float32)
    if bias:
        return None
    return ConstantScales(scales, p.zero_points.copy(), shape.index(-1) if shape else None)


def _channel_shape(ctx, values: np.ndarray, scales: np.ndarray, axis: int | None) -> list[int]:
    """The shape that broadcasts per-axis scales over `values` ([] for per-tensor)."""
    if axis is None:
        return []
    if values.ndim == 1 and scales.size == values.size:
        axis = 0  # a 1-D bias with the default axis 1
    if not -values.ndim <= axis < values.ndim or values.shape[axis] != scales.size:
        raise ctx.unsupported(f"{scales.size} scales along axis {axis} do not fit the shape {list(values.shape)}")
    shape = [1] * values.ndim
    shape[axis % values.ndim] = -1
    return shape


def keep_model_params(graph: Graph, folded: dict[str, tuple[np.ndarray, "ConstantScales"]],
                      output_types: list[tuple[str, int]], label: str) -> None:
    """The three steps below, on the graph the ONNX frontend built (in place). `output_types`: the ONNX
    names and element types of the graph outputs (a uint8 QuantizeLinear output is int8 in the IR: refused)."""
    for ir, (name, elem) in zip(graph.outputs, output_types):
        if elem == 2 and graph.tensors[ir].dtype == DType.int8:
            raise UnsupportedOpError(f"{label}: output '{name}' is the uint8 result of a QuantizeLinear, which "
                                     "ModelBlocks holds as int8 (q - 128). What to change: end the model with its "
                                     "DequantizeLinear (float output), or quantize to int8")
    fold_pairs(graph)
    attach_weight_scales(graph, folded)
    global_pools_as_means(graph)


def fold_pairs(graph: Graph) -> None:
    """Replace each activation quantize -> dequantize pair by a quantization override on its float input."""
    consumers = graph.consumers()
    rename: dict[str, str] = {}
    drop: set[str] = set()
    for q in graph.nodes:
        if q.op != "quantize":
            continue
        x, tq = rename.get(q.inputs[0], q.inputs[0]), q.outputs[0]
        users = consumers.get(tq, [])
        xt = graph.tensors[x]
        if (not users or tq in graph.outputs or xt.is_constant or xt.dtype != DType.float32
                or any(u.op != "dequantize" or u.attrs != q.attrs for u in users)):
            continue
        params = QuantParams((float(q.attrs["scale"]),), (int(q.attrs["zero_point"]),))
        if xt.quant is not None and xt.quant != params:
            continue  # rounded twice with different parameters: keep the real nodes
        outs = [u.outputs[0] for u in users]
        if any(o in graph.outputs for o in outs) and (x in graph.inputs or x in graph.outputs or len(outs) > 1):
            continue  # the graph output would alias an input or another output
        graph.set_tensor(dataclasses.replace(xt, quant=params))
        drop.update([q.name, *(u.name for u in users)])
        rename.update({o: x for o in outs})
    if not drop:
        return
    graph.nodes = [n.replace(inputs=tuple(rename.get(i, i) for i in n.inputs)) for n in graph.nodes if n.name not in drop]
    graph.outputs = [rename.get(o, o) for o in graph.outputs]
    graph.remove_unused_tensors()


def attach_weight_scales(graph: Graph, folded: dict[str, tuple[np.ndarray, ConstantScales]]) -> None:
    """Give each float constant holding a folded int8 weight (as is, or transposed by a Gemm / MatMul
    converter) the model's scales as `quant`, with the axis in the constant's own layout."""
    records = list(folded.values())
    for t in list(graph.constants()):
        if t.dtype != DType.float32 or t.quant is not None:
            continue
        for values, rec in records:
            if t.shape == values.shape and np.array_equal(t.data, values):
                axis = rec.axis
            elif values.ndim == 2 and t.shape == values.T.shape and np.array_equal(t.data, values.T):
                axis = None if rec.axis is None else 1 - rec.axis
            else:
                continue
            quant = QuantParams(tuple(float(s) for s in rec.scales), tuple(int(z) for z in rec.zero_points), axis)
            graph.set_tensor(dataclasses.replace(t, quant=quant))
            break


def global_pools_as_means(graph: Graph) -> None:
    """A global average pool whose output the model quantizes with parameters of its own becomes the mean
    reduction it is: int8 average pooling keeps its input's parameters (then a requantize: two roundings, up
    to 2 LSB from onnxruntime), the int8 mean rounds once, to the output's parameters."""
    for k, node in enumerate(graph.nodes):
        if node.op != "adaptive_avg_pool" or any(s != 1 for s in node.attrs["output_size"]):
            continue
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if x.quant is None or y.quant is None or x.quant == y.quant:
            continue
        rank, nsp = len(x.shape), len(node.attrs["output_size"])
        graph.nodes[k] = node.replace(op="reduce", attrs={"kind": "mean", "axes": tuple(range(rank - nsp, rank)),
                                                          "keepdim": True, "correction": 0.0}, kernel="")


def has_overrides(graph: Graph) -> bool:
    """True when the graph came from a QDQ model: a float tensor carries quantization parameters."""
    return any(t.quant is not None and t.dtype == DType.float32 for t in graph.tensors.values())


def strip_overrides(graph: Graph) -> Graph:
    """The graph without quantization overrides on float tensors (after the int8 pass used them: the int8
    tensors carry the parameters, and float tensors with `quant` would read as int8-weights models)."""
    out = graph.copy()
    for name, t in graph.tensors.items():
        if t.quant is not None and t.dtype == DType.float32:
            out.tensors[name] = dataclasses.replace(t, quant=None)
    return out
