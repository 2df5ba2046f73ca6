"""quantize / dequantize: the boundaries between float32 and int8 parts of a graph.

quantize: float32 -> int8, q = clamp(roundf(x / scale) + zero_point, -128, 127) (TFLite's rounding,
half away from zero; NaN gives -128). dequantize: int8 -> float32, y = (float)(q - zero_point) * scale.
Both are exact in float32, so C and NumPy agree bit for bit. `passes/quantize.py` inserts them.

Optimised kernel of quantize, "fpv5" (mb_quantize_opt.c): the same division, then FPv5's VMAXNM / VMINNM,
VCVTA (round half away and convert in one instruction) and SSAT; plain C with the same result elsewhere.
"""

from __future__ import annotations

from ..ir.dtypes import DType
from ..quant import arith
from .registry import Attr, OpDef, Prop, Variant, numel, register

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
