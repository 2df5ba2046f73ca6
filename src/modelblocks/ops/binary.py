"""Elementwise binary arithmetic with NumPy broadcasting: add, sub, mul, div, pow, maximum, minimum.

Python scalars become scalar constants; `alpha` of add/sub and the reversed forms (rsub) are
expressed with the same ops. The C kernel walks the broadcast shape after merging dimensions that
are contiguous in both operands, so the common cases (same shape, scalar, per-channel) reduce to
one or two loops.

add and sub take a fused clamp (Prop.FUSED_CLAMP, `act_min` / `act_max`): a residual connection's
ReLU folds into its add (passes/fuse_activation.py), so the int8 add clamps and calibration sees the
clamped output; the clamped kernels are mb_add_clamp_f32 / mb_sub_clamp_f32.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import CLAMP_ATTRS, MAX_RANK, OpDef, Prop, apply_clamp, converts, converts_onnx, numel, register


_NUMPY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
}


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Element strides of a contiguous tensor of `shape` read as `out` (0 on broadcast dims)."""
    strides, step = [0] * len(out), 1
    for k in range(1, len(shape) + 1):
        d = shape[-k]
        strides[-k] = 0 if d == 1 else step
        step *= d
    return strides


def collapse(dims: list[int], *strides: list[int]) -> tuple[list[int], list[list[int]]]:
    """Merge neighbouring dimensions that every operand walks contiguously; drop size-1 dims."""
    keep = [k for k, d in enumerate(dims) if d != 1]
    dims = [dims[k] for k in keep] or [1]
    strides = [[s[k] for k in keep] or [0] for s in strides]
    out_dims, out_strides = [dims[0]], [[s[0]] for s in strides]
    for k in range(1, len(dims)):
        if all(s[k - 1] == s[k] * dims[k] for s in strides):
            out_dims[-1] *= dims[k]
            for os_, s in zip(out_strides, strides):
                os_[-1] = s[k]
        else:
            out_dims.append(dims[k])
            for os_, s in zip(out_strides, strides):
                os_.append(s[k])
    return out_dims, out_strides


_CLAMPED = ("add", "sub")  # ops with a fused clamp


def _clamped(node) -> bool:
    return node.attrs.get("act_min") is not None or node.attrs.get("act_max") is not None


def _make(name: str) -> OpDef:
    def infer(node, ins):
        a, b = ins
        if a.dtype != DType.float32 or b.dtype != DType.float32:
            raise ValueError(f"{name} takes float32 operands, got {a.dtype.value} and {b.dtype.value}")
        shape = np.broadcast_shapes(a.shape, b.shape)
        if len(shape) > MAX_RANK:
            raise ValueError(f"rank {len(shape)} exceeds {MAX_RANK}")
        return [(tuple(shape), DType.float32)]

    def reference(node, args):
        a, b = (x.astype(np.float64) for x in args)
        with np.errstate(all="ignore"):
            return [apply_clamp(_NUMPY[name](a, b).astype(np.float32), node)]

    def emit(ctx, node):
        a, b = node.inputs
        out = ctx.shape(node.outputs[0])
        dims, (sa, sb) = collapse(list(out), broadcast_strides(ctx.shape(a), out), broadcast_strides(ctx.shape(b), out))
        walk = (f"{ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, "
                f"{ctx.ints(dims, 'dims')}, {ctx.ints(sa, 'strides')}, {ctx.ints(sb, 'strides')}, {len(dims)}")
        if _clamped(node):
            return f"mb_{name}_clamp_f32({walk}, {ctx.clamp(node)});"
        return f"mb_{name}_f32({walk});"

    def macs(node, ins, outs):
        return numel(outs[0].shape) if name in ("mul", "div") else 0

    clamp = name in _CLAMPED
    return OpDef(name=name, infer=infer, reference=reference, emit=emit, kernels=("mb_binary",),
                 attrs=CLAMP_ATTRS if clamp else {}, num_inputs=(2, 2), macs=macs,
                 props=frozenset({Prop.ELEMENTWISE} | ({Prop.FUSED_CLAMP} if clamp else set())),
                 doc=f"broadcasting {name}" + (", fused clamp" if clamp else ""))


for _name in _NUMPY:
    register(_make(_name))


def _scaled(ctx, value, alpha):
    t = ctx.tensor(value)
    if alpha is None or alpha == 1:
        return t
    return ctx.emit1("mul", [t, ctx.tensor(float(alpha))])


@converts("aten.add.Tensor", "aten.add.Scalar")
def _add(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("add", [ctx.tensor(a["self"]), _scaled(ctx, a["other"], a.get("alpha"))])


@converts("aten.sub.Tensor", "aten.sub.Scalar")
def _sub(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("sub", [ctx.tensor(a["self"]), _scaled(ctx, a["other"], a.get("alpha"))])


@converts("aten.rsub.Tensor", "aten.rsub.Scalar")
def _rsub(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("sub", [ctx.tensor(a["other"]), _scaled(ctx, a["self"], a.get("alpha"))])


@converts("aten.mul.Tensor", "aten.mul.Scalar")
def _mul(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("mul", [ctx.tensor(a["self"]), ctx.tensor(a["other"])])


@converts("aten.div.Tensor", "aten.div.Scalar", "aten.div.Tensor_mode")
def _div(ctx, fx):
    a = ctx.args(fx)
    if a.get("rounding_mode") is not None:
        raise ctx.unsupported(f"division with rounding_mode={a['rounding_mode']!r} is not supported")
    return ctx.emit1("div", [ctx.tensor(a["self"]), ctx.tensor(a["other"])])


@converts("aten.pow.Tensor_Tensor", "aten.pow.Scalar")
def _pow(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("pow", [ctx.tensor(a["self"]), ctx.tensor(a["exponent"])])


@converts("aten.maximum.default")
def _maximum(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("maximum", [ctx.tensor(a["self"]), ctx.tensor(a["other"])])


@converts("aten.minimum.default")
def _minimum(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("minimum", [ctx.tensor(a["self"]), ctx.tensor(a["other"])])


# -- ONNX ------------------------------------------------------------------------------------------

_ONNX_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "maximum",
                "Min": "minimum"}


@converts_onnx(*_ONNX_BINARY)
def _from_onnx_binary(ctx, node):
    """Numpy-style broadcasting, as the IR ops. Pow by a constant scalar is pow_scalar; Max/Min with
    more than two operands are chained."""
    op = _ONNX_BINARY[node.op_type]
    names = [i for i in node.input if i]
    if op == "pow":
        exponent = ctx.const(1)
        if exponent is not None and np.asarray(exponent).size == 1:
            return ctx.emit1("pow_scalar", [ctx.input(0)], {"exponent": float(np.asarray(exponent).reshape(-1)[0])})
    if op in ("maximum", "minimum") and len(names) == 1:
        return ctx.tensor(names[0])
    if len(names) != 2 and op not in ("maximum", "minimum"):
        raise ctx.unsupported(f"{node.op_type} needs two inputs, got {len(names)}")
    y = ctx.tensor(names[0])
    for other in names[1:]:
        y = ctx.emit1(op, [y, ctx.tensor(other)])
    return y


@converts_onnx("Sum", "Mean")
def _from_onnx_sum_mean(ctx, node):
    """Variadic, broadcasting: a chain of adds (Mean then divides by the operand count)."""
    names = [i for i in node.input if i]
    y = ctx.tensor(names[0])
    for other in names[1:]:
        y = ctx.emit1("add", [y, ctx.tensor(other)])
    if node.op_type == "Mean" and len(names) > 1:
        y = ctx.emit1("div", [y, ctx.constant(np.array(len(names), dtype=np.float32), "count")])
    return y
