"""Selection and masks: where (cond ? a : b), compare (gt/lt/ge/le/eq/ne -> bool), logical
and/or/xor, logical_not. All broadcast like NumPy; bool is uint8_t (0 or 1) in C.

Sources: aten.where (.self, .ScalarOther, .ScalarSelf, .Scalar), aten.masked_fill (.Scalar,
.Tensor: where(mask, value, x)), aten.gt/lt/ge/le/eq/ne (.Tensor, .Scalar) on float32 or int32
or bool operands (e.g. `tokens == pad_id`), aten.isnan on float32 (as x != x), aten.logical_not
and aten.bitwise_not on bool, and aten.logical_and/or/xor, aten.bitwise_and/or/xor.Tensor,
aten.__and__/__or__/__xor__.Tensor on bool; ONNX Where, Equal / Less / Greater / LessOrEqual /
GreaterOrEqual, IsNaN, And / Or / Xor, Not.
Python numbers become scalar constants. The C kernels take each operand's strides over the
broadcast shape (0 where broadcast) after merging dims that all operands walk contiguously.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .binary import broadcast_strides, collapse
from .registry import MAX_RANK, Attr, OpDef, Prop, converts, converts_onnx, numel, register


def _broadcast(*shapes) -> tuple[int, ...]:
    shape = tuple(np.broadcast_shapes(*shapes))
    if len(shape) > MAX_RANK:
        raise ValueError(f"rank {len(shape)} exceeds {MAX_RANK}")
    return shape


def _tables(ctx, node):
    out = ctx.shape(node.outputs[0])
    dims, strides = collapse(list(out), *(broadcast_strides(ctx.shape(i), out) for i in node.inputs))
    return dims, [ctx.ints(s, "strides") for s in strides]


# -- where --------------------------------------------------------------------------------------

def _where_infer(node, ins):
    c, a, b = ins
    if c.dtype != DType.bool:
        raise ValueError(f"where needs a bool condition, got {c.dtype.value}")
    if a.dtype != DType.float32 or b.dtype != DType.float32:
        raise ValueError(f"where selects float32 values, got {a.dtype.value} and {b.dtype.value}")
    return [(_broadcast(c.shape, a.shape, b.shape), DType.float32)]


def _where_emit(ctx, node):
    c, a, b = node.inputs
    dims, (cs, as_, bs) = _tables(ctx, node)
    return (f"mb_where_f32({ctx.ptr(c)}, {ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, "
            f"{ctx.ints(dims, 'dims')}, {cs}, {as_}, {bs}, {len(dims)});")


register(OpDef(
    name="where", infer=_where_infer,
    reference=lambda node, args: [np.where(args[0].astype(bool), args[1], args[2]).astype(np.float32)],
    emit=_where_emit, kernels=("mb_where",), num_inputs=(3, 3), doc="y = cond ? a : b (broadcasting)",
))

# -- compare ------------------------------------------------------------------------------------

_COMPARE_SUFFIX = {DType.float32: "f32", DType.int32: "i32", DType.bool: "u8"}
COMPARE = {"gt": np.greater, "lt": np.less, "ge": np.greater_equal, "le": np.less_equal,
           "eq": np.equal, "ne": np.not_equal}


def _compare_infer(node, ins):
    a, b = ins
    if node.attrs["kind"] not in COMPARE:
        raise ValueError(f"unknown comparison {node.attrs['kind']!r}")
    if a.dtype != b.dtype or a.dtype not in _COMPARE_SUFFIX:
        raise ValueError(f"compare takes two float32, int32 or bool operands, got {a.dtype.value} and {b.dtype.value}")
    return [(_broadcast(a.shape, b.shape), DType.bool)]


def _compare_reference(node, args):
    with np.errstate(invalid="ignore"):
        return [COMPARE[node.attrs["kind"]](args[0], args[1])]


def _compare_emit(ctx, node):
    a, b = node.inputs
    dims, (as_, bs) = _tables(ctx, node)
    suffix = _COMPARE_SUFFIX[ctx.tensor(a).dtype]
    return (f"mb_compare_{suffix}({ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, {ctx.ints(dims, 'dims')}, "
            f"{as_}, {bs}, {len(dims)}, MB_CMP_{node.attrs['kind'].upper()});")


register(OpDef(
    name="compare", infer=_compare_infer, reference=_compare_reference, emit=_compare_emit, kernels=("mb_where",),
    attrs={"kind": Attr("str")}, num_inputs=(2, 2), doc="bool y = a <kind> b, kind in gt lt ge le eq ne",
))

# -- logic ---------------------------------------------------------------------------------------

LOGIC = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def _logical_infer(node, ins):
    a, b = ins
    if node.attrs["kind"] not in LOGIC:
        raise ValueError(f"unknown logical op {node.attrs['kind']!r}")
    if a.dtype != DType.bool or b.dtype != DType.bool:
        raise ValueError(f"logical ops take bool operands, got {a.dtype.value} and {b.dtype.value}")
    return [(_broadcast(a.shape, b.shape), DType.bool)]


def _logical_emit(ctx, node):
    a, b = node.inputs
    dims, (as_, bs) = _tables(ctx, node)
    return (f"mb_logical_u8({ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, {ctx.ints(dims, 'dims')}, "
            f"{as_}, {bs}, {len(dims)}, MB_LOGIC_{node.attrs['kind'].upper()});")


register(OpDef(
    name="logical", infer=_logical_infer,
    reference=lambda node, args: [LOGIC[node.attrs["kind"]](args[0].astype(bool), args[1].astype(bool))],
    emit=_logical_emit, kernels=("mb_where",), attrs={"kind": Attr("str")}, num_inputs=(2, 2),
    doc="bool y = a <kind> b, kind in and or xor",
))


def _not_infer(node, ins):
    if ins[0].dtype != DType.bool:
        raise ValueError(f"logical_not takes bool, got {ins[0].dtype.value}")
    return [(ins[0].shape, DType.bool)]


register(OpDef(
    name="logical_not", infer=_not_infer,
    reference=lambda node, args: [np.logical_not(args[0].astype(bool))],
    emit=lambda ctx, node: (f"mb_logical_not_u8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
                            f"{numel(ctx.shape(node.inputs[0]))});"),
    kernels=("mb_where",), props=frozenset({Prop.ELEMENTWISE}), doc="bool y = !x",
))


# -- converters ----------------------------------------------------------------------------------

def _value(ctx, v) -> str:
    """A float32 operand of where: a tensor, or a Python number as a scalar constant."""
    if isinstance(v, (bool, int, float)):
        return ctx.tensor(float(v))
    t = ctx.tensor(v)
    if ctx.info(t).dtype != DType.float32:
        raise ctx.unsupported(f"selecting {ctx.info(t).dtype.value} values is not supported (float32 only)")
    return t


def _condition(ctx, v) -> str:
    t = ctx.tensor(v, DType.bool)
    if ctx.info(t).dtype != DType.bool:
        raise ctx.unsupported(f"the condition/mask must be bool, got {ctx.info(t).dtype.value}")
    return t


@converts("aten.where.self", "aten.where.ScalarOther", "aten.where.ScalarSelf", "aten.where.Scalar")
def _where(ctx, fx):
    a = ctx.args(fx)
    if not fx.meta["val"].dtype.is_floating_point:
        raise ctx.unsupported(f"where producing {fx.meta['val'].dtype} is not supported (float32 only)")
    return ctx.emit1("where", [_condition(ctx, a["condition"]), _value(ctx, a["self"]), _value(ctx, a["other"])])


@converts("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def _masked_fill(ctx, fx):
    a = ctx.args(fx)
    x = _value(ctx, a["self"])
    return ctx.emit1("where", [_condition(ctx, a["mask"]), _value(ctx, a["value"]), x])


def _compare_operand(ctx, v, like: str) -> str:
    if isinstance(v, (bool, int, float)):
        dtype = ctx.info(like).dtype
        if dtype in (DType.int32, DType.bool):
            if float(v) != int(v) or (dtype == DType.bool and int(v) not in (0, 1)):
                raise ctx.unsupported(f"comparing a {dtype.value} tensor with the non-integer {v} is not supported")
            return ctx.tensor(int(v), dtype)
        return ctx.tensor(float(v), DType.float32)
    return ctx.tensor(v)


def _make_compare(kind: str):
    def convert(ctx, fx):
        a = ctx.args(fx)
        x = ctx.tensor(a["self"])
        if ctx.info(x).dtype not in _COMPARE_SUFFIX:
            raise ctx.unsupported(f"comparison of a {ctx.info(x).dtype.value} tensor is not supported "
                                  "(float32, int32 and bool only)")
        y = _compare_operand(ctx, a["other"], x)
        if ctx.info(y).dtype != ctx.info(x).dtype:
            raise ctx.unsupported(f"comparison of {ctx.info(x).dtype.value} with {ctx.info(y).dtype.value} "
                                  "is not supported (cast both to the same dtype)")
        return ctx.emit1("compare", [x, y], {"kind": kind})

    return convert


for _kind in COMPARE:
    converts(f"aten.{_kind}.Tensor", f"aten.{_kind}.Scalar")(_make_compare(_kind))


def _isnan(ctx, x: str) -> str:
    """x != x: true exactly for NaN (the C is built without -ffast-math, so the compare is kept)."""
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"isnan of a {ctx.info(x).dtype.value} tensor is not supported (float32 only)")
    return ctx.emit1("compare", [x, x], {"kind": "ne"})


@converts("aten.isnan.default")
def _from_isnan(ctx, fx):
    return _isnan(ctx, ctx.tensor(fx.args[0]))


def _bool_operand(ctx, v) -> str:
    t = ctx.tensor(v, DType.bool)
    if ctx.info(t).dtype != DType.bool:
        raise ctx.unsupported(f"logical ops on {ctx.info(t).dtype.value} tensors are not supported (bool only)")
    return t


@converts("aten.logical_not.default", "aten.bitwise_not.default")
def _logical_not(ctx, fx):
    return ctx.emit1("logical_not", [_bool_operand(ctx, fx.args[0])])


def _make_logical(kind: str):
    def convert(ctx, fx):
        a = ctx.args(fx)
        return ctx.emit1("logical", [_bool_operand(ctx, a["self"]), _bool_operand(ctx, a["other"])], {"kind": kind})

    return convert


for _kind in LOGIC:
    converts(f"aten.logical_{_kind}.default", f"aten.bitwise_{_kind}.Tensor",
             f"aten.__{_kind}__.Tensor")(_make_logical(_kind))


# -- ONNX ------------------------------------------------------------------------------------------

_ONNX_COMPARE = {"Equal": "eq", "Less": "lt", "Greater": "gt", "LessOrEqual": "le", "GreaterOrEqual": "ge"}
_ONNX_LOGIC = {"And": "and", "Or": "or", "Xor": "xor"}


@converts_onnx("Where")
def _from_onnx_where(ctx, node):
    cond, a, b = ctx.input(0), ctx.input(1), ctx.input(2)
    if ctx.info(cond).dtype != DType.bool:
        raise ctx.unsupported(f"condition of dtype {ctx.info(cond).dtype.value} (bool expected)")
    for t in (a, b):
        if ctx.info(t).dtype != DType.float32:
            raise ctx.unsupported(f"selecting {ctx.info(t).dtype.value} values is not supported (float32 only)")
    return ctx.emit1("where", [cond, a, b])


@converts_onnx(*_ONNX_COMPARE)
def _from_onnx_compare(ctx, node):
    a, b = ctx.input(0), ctx.input(1)
    da, db = ctx.info(a).dtype, ctx.info(b).dtype
    if da != db or da not in _COMPARE_SUFFIX:
        raise ctx.unsupported(f"comparison of {da.value} with {db.value} is not supported (two float32, int32 or "
                              "bool operands are)")
    return ctx.emit1("compare", [a, b], {"kind": _ONNX_COMPARE[node.op_type]})


@converts_onnx(*_ONNX_LOGIC)
def _from_onnx_logical(ctx, node):
    return ctx.emit1("logical", [_bool_operand(ctx, node.input[0]), _bool_operand(ctx, node.input[1])],
                     {"kind": _ONNX_LOGIC[node.op_type]})


@converts_onnx("IsNaN")  # the TorchScript exporter writes it for scaled_dot_product_attention with a mask
def _from_onnx_isnan(ctx, node):
    return _isnan(ctx, ctx.input(0))


@converts_onnx("Not")
def _from_onnx_not(ctx, node):
    return ctx.emit1("logical_not", [_bool_operand(ctx, node.input[0])])
