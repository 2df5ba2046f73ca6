"""quantize / dequantize: the boundaries between float32 and int8 parts of a graph.

quantize: float32 -> int8, q = clamp(roundf(x / scale) + zero_point, -128, 127) (TFLite's rounding,
half away from zero; NaN gives -128). dequantize: int8 -> float32, y = (float)(q - zero_point) * scale.
Both are exact in float32, so C and NumPy agree bit for bit. `passes/quantize.py` inserts them.

ONNX QuantizeLinear / DequantizeLinear (QDQ models, e.g. onnxruntime's quantize_static) convert to these
two ops; frontend/onnx_qdq.py then folds each activation Q -> DQ pair into a quantization override on the
float tensor (its scale and zero point, which `compile(quantize="int8")` uses instead of calibrated ones).
uint8 maps to int8 exactly: q8 = q_u8 - 128 with zero point zp_u8 - 128.

Optimised kernel of quantize, "fpv5" (mb_quantize_opt.c): the same division, then FPv5's VMAXNM / VMINNM,
VCVTA (round half away and convert in one instruction) and SSAT; plain C with the same result elsewhere.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from .registry import Attr, OpDef, Prop, Variant, converts_onnx, numel, register

_ATTRS = {"scale": Attr("float"), "zero_point": Attr("int")}


def _check(node):
    if not node.attrs["scale"] > 0 or not arith.QMIN <= node.attrs["zero_point"] <= arith.QMAX:
        raise ValueError(f"needs scale > 0 and an int8 zero point, got {node.attrs['scale']} and "
                         f"{node.attrs['zero_point']}")


def _quantize_infer(node, ins):
    _check(node)
    if ins[0].dtype != DType.float32:
        raise ValueError(f"quantize takes float32, got {ins[0].dtype.value}")
    return [(ins[0].shape, DType.int8)]


def _dequantize_infer(node, ins):
    _check(node)
    if ins[0].dtype != DType.int8:
        raise ValueError(f"dequantize takes int8, got {ins[0].dtype.value}")
    return [(ins[0].shape, DType.float32)]


def _emit(kernel):
    def emit(ctx, node):
        x, y = node.inputs[0], node.outputs[0]
        name = f"{kernel}_{node.kernel}" if node.kernel else kernel
        return (f"{name}({ctx.ptr(x)}, {ctx.ptr(y)}, {numel(ctx.shape(x))}, {ctx.f(node.attrs['scale'])}, "
                f"{ctx.i(node.attrs['zero_point'])});")
    return emit


register(OpDef(
    name="quantize", infer=_quantize_infer, emit=_emit("mb_quantize_f32_s8"), kernels=("mb_quantize",),
    reference=lambda node, args: [arith.quantize_values(args[0], node.attrs["scale"], node.attrs["zero_point"])],
    attrs=_ATTRS, props=frozenset({Prop.ELEMENTWISE}), doc="q = clamp(round(x / scale) + zero_point)",
    variants=(Variant("fpv5", applies=lambda node, ins, outs: True, kernels=("mb_quantize_opt", "mb_arm"),
                      doc="VMAXNM / VMINNM bound, VCVTA rounding, SSAT: 4 elements a step"),),
))

register(OpDef(
    name="dequantize", infer=_dequantize_infer, emit=_emit("mb_dequantize_s8_f32"), kernels=("mb_quantize",),
    reference=lambda node, args: [arith.dequantize_values(args[0], node.attrs["scale"], node.attrs["zero_point"])],
    attrs=_ATTRS, props=frozenset({Prop.ELEMENTWISE}), doc="y = (q - zero_point) * scale",
))


# -- ONNX --------------------------------------------------------------------------------------------

_ONNX_ELEM_NAMES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
                    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}


class QdqParams(NamedTuple):
    scales: np.ndarray  # float32, one per tensor or per channel along `axis`
    zero_points: np.ndarray  # as int8 (a uint8 model's minus 128), as many as scales
    axis: int | None  # None: per tensor
    unsigned: bool  # the model's values are uint8


def onnx_qdq_params(ctx, quantized_dtype=None) -> QdqParams:
    """The parameters of the Q/DQ node at `ctx`, int8 or uint8 (zero point - 128); every other integer or
    float8 type and blocked quantization is refused. `quantized_dtype` is the numpy dtype of
    DequantizeLinear's quantized input when known."""
    op = ctx.node.op_type
    if int(ctx.attr("block_size", 0)) != 0:
        raise ctx.unsupported(f"blocked quantization (block_size={int(ctx.attr('block_size'))}) is not supported; "
                              "ModelBlocks takes per-tensor or per-axis int8/uint8 scales. What to change: quantize "
                              "with per-tensor or per-channel scales")
    scale = ctx.required_const(1, "the scale")
    zp = ctx.const(2)
    if ctx.has_input(2) and zp is None:
        raise ctx.unsupported("the zero point (input 2) is computed from the model's inputs; only constants are supported")
    if quantized_dtype is not None:  # the quantized values' type decides (the zero point must match it)
        kind = np.dtype(quantized_dtype)
    elif zp is not None:
        kind = np.dtype(zp.dtype)
    else:  # QuantizeLinear without a zero point: output_dtype (opset 21), else uint8
        elem = int(ctx.attr("output_dtype", 0))
        if elem not in (0, 2, 3):
            raise ctx.unsupported(f"{_ONNX_ELEM_NAMES.get(elem, f'element type {elem}')} quantization is not "
                                  "supported (int8 and uint8 are)")
        kind = np.dtype(np.int8 if elem == 3 else np.uint8)
    if kind not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ctx.unsupported(f"{kind.name} quantization is not supported by {op}; ModelBlocks compiles int8 and "
                              "uint8 QDQ models (uint8 as int8 with zero point - 128). What to change: quantize with "
                              "QuantType.QInt8 or QUInt8")
    scale = np.asarray(scale, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise ctx.unsupported(f"the scale must be positive and finite, got {scale[:8].tolist()}")
    zp8 = np.zeros(scale.size, dtype=np.int64) if zp is None else np.asarray(zp).astype(np.int64).reshape(-1)
    if kind == np.dtype(np.uint8):
        zp8 = zp8 - 128
    if zp8.size not in (1, scale.size):
        raise ctx.unsupported(f"the zero point has {zp8.size} values for {scale.size} scales")
    zp8 = np.broadcast_to(zp8, scale.shape).copy()
    axis = None
    if scale.size > 1 or np.asarray(ctx.const(1)).ndim == 1:
        axis = int(ctx.attr("axis", 1))
    return QdqParams(scale, zp8, axis, kind == np.dtype(np.uint8))


def _per_tensor(ctx, p: QdqParams) -> dict:
    scale, zp, axis = p.scales, p.zero_points, p.axis
    if scale.size != 1:
        raise ctx.unsupported(f"per-axis quantization of an activation ({scale.size} scales along axis {axis}) is "
                              "not supported; activations take one scale and zero point (per-axis scales are for "
                              "constant weights)")
    return {"scale": float(scale[0]), "zero_point": int(zp[0])}


@converts_onnx("QuantizeLinear")
def _from_onnx_quantize(ctx, node):
    return ctx.emit1("quantize", [ctx.input(0)], _per_tensor(ctx, onnx_qdq_params(ctx)))


@converts_onnx("DequantizeLinear")
def _from_onnx_dequantize(ctx, node):
    x = ctx.input(0)
    elem = ctx.elem_type(ctx.input_name(0))  # the ONNX type: a uint8 QuantizeLinear output is int8 in the IR
    if ctx.info(x).dtype != DType.int8 or elem not in (2, 3, None):
        raise ctx.unsupported(f"DequantizeLinear of {_ONNX_ELEM_NAMES.get(elem, ctx.info(x).dtype.value)} values "
                              "is not supported (int8 and uint8 values from a QuantizeLinear or an int8 input are)")
    return ctx.emit1("dequantize", [x], _per_tensor(ctx, onnx_qdq_params(ctx, {2: np.uint8, 3: np.int8}.get(elem))))
