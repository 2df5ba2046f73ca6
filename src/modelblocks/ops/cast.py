"""cast: convert elements to another dtype with PyTorch's rules (float -> int truncates toward
zero; anything -> bool is `!= 0`; bool -> number is 0 or 1).

Sources: aten._to_copy, aten.to.dtype, aten.type_as (x.float(), mask.to(x.dtype), idx.long()...).
A cast to the dtype the tensor already has in the IR (float64 -> float32 and int64 -> int32 are
the IR's own narrowing) is the identity. Casts to float16 / bfloat16 are rejected: the C computes
in float32 and would silently skip the rounding.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, numel, register

_SHORT = {DType.float32: "f32", DType.int32: "i32", DType.int16: "i16", DType.int8: "i8", DType.uint8: "u8",
          DType.bool: "bool"}


def _infer(node, ins):
    return [(ins[0].shape, DType(node.attrs["dtype"]))]


def _reference(node, args):
    x, to = args[0], DType(node.attrs["dtype"])
    if to is DType.bool:
        return [(x != 0).astype(np.uint8).astype(to.numpy)]
    if to is not DType.float32 and x.dtype.kind == "f":
        x = np.trunc(x)
    return [x.astype(to.numpy)]


def _emit(ctx, node):
    src, dst = ctx.tensor(node.inputs[0]).dtype, DType(node.attrs["dtype"])
    n = numel(ctx.shape(node.inputs[0]))
    return f"mb_cast_{_SHORT[src]}_to_{_SHORT[dst]}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {n});"


register(OpDef(
    name="cast", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_cast",),
    attrs={"dtype": Attr("str")}, doc="elementwise dtype conversion with torch's rules",
))

_TORCH_TO_IR = {"torch.float32": DType.float32, "torch.float64": DType.float32, "torch.int64": DType.int32,
                "torch.int32": DType.int32, "torch.int16": DType.int16, "torch.int8": DType.int8,
                "torch.uint8": DType.uint8, "torch.bool": DType.bool}


@converts("aten._to_copy.default", "aten.to.dtype", "aten.type_as.default", "aten.to.dtype_layout")
def _to_copy(ctx, fx):
    src = ctx.tensor(fx.args[0])
    want = str(fx.meta["val"].dtype)
    if want not in _TORCH_TO_IR:
        raise ctx.unsupported(f"conversion to {want} is not supported (the C computes in float32; "
                              "remove the cast or keep the model in float32)")
    to = _TORCH_TO_IR[want]
    if to == ctx.info(src).dtype:
        return ctx.emit1("identity", [src])
    return ctx.emit1("cast", [src], {"dtype": to.value})
