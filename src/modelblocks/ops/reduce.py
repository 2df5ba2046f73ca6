"""Reductions: reduce (sum, mean, amax, amin, var, std over any set of dims, keepdim or not) and
argmax / argmin (int32 indices along one dim or over the flattened tensor).

Sources: aten.sum (.dim_IntList, .default), aten.mean (.dim, .default), aten.amax, aten.amin,
aten.max/min (.default: over everything; .dim: values and indices), aten.var and aten.std
(.correction, .dim, .default), aten.argmax, aten.argmin; ONNX ReduceSum / ReduceMean / ReduceMax /
ReduceMin and ArgMax / ArgMin (select_last_index=0). An empty or absent dim list reduces
every dim, as torch does. Global average pooling `x.mean((2, 3))` is reduce(mean, axes=(2, 3)).

Indices are int32 in the IR (torch returns int64; the runtime compares values). The C kernel
enumerates the kept dims and, for each output, the reduced dims with x's strides (after merging
neighbouring dims), so no transpose is needed for any set of axes.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .binary import collapse
from .registry import MAX_RANK, Attr, OpDef, converts, converts_onnx, normalize_dim, numel, register

KINDS = ("sum", "mean", "amax", "amin", "var", "std")
_C_KIND = {"sum": "MB_REDUCE_SUM", "mean": "MB_REDUCE_MEAN", "amax": "MB_REDUCE_MAX", "amin": "MB_REDUCE_MIN",
           "var": "MB_REDUCE_VAR", "std": "MB_REDUCE_STD"}


def _reduced_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def _infer(node, ins):
    x = ins[0]
    kind, axes = node.attrs["kind"], node.attrs["axes"]
    if x.dtype != DType.float32:
        raise ValueError(f"reduce {kind} takes float32, got {x.dtype.value}")
    if kind not in KINDS:
        raise ValueError(f"unknown reduction {kind!r} (one of {', '.join(KINDS)})")
    rank = len(x.shape)
    if len(set(axes)) != len(axes) or any(not 0 <= a < max(rank, 1) for a in axes) or tuple(sorted(axes)) != axes:
        raise ValueError(f"axes {list(axes)} must be distinct, sorted and within rank {rank}")
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} exceeds {MAX_RANK}")
    if kind in ("amax", "amin") and any(x.shape[a] == 0 for a in axes if a < rank):
        raise ValueError(f"{kind} over an empty dimension")
    return [(_reduced_shape(x.shape, axes, node.attrs["keepdim"]), DType.float32)]


def _reference(node, args):
    x = args[0].astype(np.float64)
    kind, keep = node.attrs["kind"], node.attrs["keepdim"]
    axes = node.attrs["axes"] if x.ndim else None
    with np.errstate(all="ignore"):
        if kind == "sum":
            y = np.sum(x, axis=axes, keepdims=keep)
        elif kind == "mean":
            y = np.mean(x, axis=axes, keepdims=keep)
        elif kind == "amax":
            y = np.max(x, axis=axes, keepdims=keep)
        elif kind == "amin":
            y = np.min(x, axis=axes, keepdims=keep)
        else:
            count = numel([x.shape[a] for a in axes]) if x.ndim else 1
            mean = np.mean(x, axis=axes, keepdims=True)
            sq = np.sum((x - mean) ** 2, axis=axes, keepdims=keep)
            y = sq / max(count - node.attrs["correction"], 0.0)
            if kind == "std":
                y = np.sqrt(y)
    return [np.asarray(y).astype(np.float32)]


def _contiguous_strides(shape):
    strides, step = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = step
        step *= shape[d]
    return strides


def _emit(ctx, node):
    shape = ctx.shape(node.inputs[0]) or (1,)
    axes = node.attrs["axes"] if ctx.shape(node.inputs[0]) else (0,)
    strides = _contiguous_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    out_dims, (out_strides,) = collapse([shape[d] for d in kept], [strides[d] for d in kept])
    red_dims, (red_strides,) = collapse([shape[d] for d in axes], [strides[d] for d in axes])
    return (f"mb_reduce_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {_C_KIND[node.attrs['kind']]}, "
            f"{len(out_dims)}, {ctx.ints(out_dims, 'dims')}, {ctx.ints(out_strides, 'strides')}, "
            f"{len(red_dims)}, {ctx.ints(red_dims, 'dims')}, {ctx.ints(red_strides, 'strides')}, "
            f"{ctx.f(node.attrs['correction'])});")


register(OpDef(
    name="reduce", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_reduce",),
    attrs={"kind": Attr("str"), "axes": Attr("ints"), "keepdim": Attr("bool", False),
           "correction": Attr("float", 0.0)},
    macs=lambda node, ins, outs: numel(ins[0].shape),
    doc="sum / mean / amax / amin / var / std over `axes`; var and std divide by (count - correction)",
))


def _arg_infer(node, ins):
    x = ins[0]
    if x.dtype != DType.float32:
        raise ValueError(f"{node.op} takes float32, got {x.dtype.value}")
    dim = node.attrs["dim"]
    if dim is None:
        if x.numel == 0:
            raise ValueError(f"{node.op} of an empty tensor")
        return [((1,) * len(x.shape) if node.attrs["keepdim"] else (), DType.int32)]
    if not 0 <= dim < max(len(x.shape), 1):
        raise ValueError(f"dim {dim} out of range for rank {len(x.shape)}")
    if x.shape and x.shape[dim] == 0:
        raise ValueError(f"{node.op} over an empty dimension")
    return [(_reduced_shape(x.shape, (dim,), node.attrs["keepdim"]), DType.int32)]


def _arg_reference_for(is_min: bool):
    def reference(node, args):
        x = args[0].astype(np.float64)
        dim = node.attrs["dim"]
        if dim is None or x.ndim == 0:
            flat = x.reshape(-1)
            nan = np.isnan(flat)
            i = int(np.argmax(nan)) if nan.any() else int(np.argmin(flat) if is_min else np.argmax(flat))
            shape = (1,) * x.ndim if node.attrs["keepdim"] else ()
            return [np.full(shape, i, dtype=np.int32)]
        # NumPy's argmax/argmin return the first extreme, and the first NaN when there is one
        y = np.argmin(x, axis=dim) if is_min else np.argmax(x, axis=dim)
        if node.attrs["keepdim"]:
            y = np.expand_dims(y, dim)
        return [y.astype(np.int32)]

    return reference


def _arg_emit_for(is_min: bool):
    def emit(ctx, node):
        shape = ctx.shape(node.inputs[0])
        dim = node.attrs["dim"]
        if dim is None or not shape:
            outer, n, inner = 1, numel(shape), 1
        else:
            outer, n, inner = numel(shape[:dim]), shape[dim], numel(shape[dim + 1:])
        return (f"mb_argmax_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
                f"{outer}, {n}, {inner}, {int(is_min)});")

    return emit


for _name in ("argmax", "argmin"):
    register(OpDef(
        name=_name, infer=_arg_infer, reference=_arg_reference_for(_name == "argmin"),
        emit=_arg_emit_for(_name == "argmin"), kernels=("mb_reduce",),
        attrs={"dim": Attr("opt_int", None), "keepdim": Attr("bool", False)},
        doc=f"int32 index of the {'smallest' if _name == 'argmin' else 'largest'} value along `dim` "
            "(None: of the flattened tensor); first on ties, NaN wins",
    ))


# -- converters -------------------------------------------------------------------------------------

def _axes(ctx, x: str, dim) -> tuple[int, ...]:
    rank = len(ctx.shape(x))
    if dim is None:
        dims = []
    elif isinstance(dim, int):
        dims = [dim]
    else:
        dims = list(dim)
    if not dims:  # torch: an empty dim list reduces every dim
        return tuple(range(rank))
    axes = sorted({normalize_dim(int(d), rank, ctx.target) for d in dims})
    if rank == 0:
        return ()
    return tuple(axes)


def _check_dtype(ctx, a):
    import torch  # noqa: PLC0415

    if a.get("dtype") not in (None, torch.float32):
        raise ctx.unsupported(f"reduction with dtype={a['dtype']} is not supported (float32 only)")


def _reduce(ctx, x_val, kind, dim, keepdim, correction=0.0):
    x = ctx.tensor(x_val)
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"{kind} of a {ctx.info(x).dtype.value} tensor is not supported (float32 only)")
    return ctx.emit1("reduce", [x], {"kind": kind, "axes": _axes(ctx, x, dim), "keepdim": bool(keepdim),
                                     "correction": float(correction)})


@converts("aten.sum.dim_IntList", "aten.sum.default")
def _sum(ctx, fx):
    a = ctx.args(fx)
    _check_dtype(ctx, a)
    return _reduce(ctx, a["self"], "sum", a.get("dim"), a.get("keepdim", False))


@converts("aten.mean.dim", "aten.mean.default")
def _mean(ctx, fx):
    a = ctx.args(fx)
    _check_dtype(ctx, a)
    return _reduce(ctx, a["self"], "mean", a.get("dim"), a.get("keepdim", False))


@converts("aten.amax.default")
def _amax(ctx, fx):
    a = ctx.args(fx)
    return _reduce(ctx, a["self"], "amax", a["dim"], a["keepdim"])


@converts("aten.amin.default")
def _amin(ctx, fx):
    a = ctx.args(fx)
    return _reduce(ctx, a["self"], "amin", a["dim"], a["keepdim"])


@converts("aten.max.default")
def _max_all(ctx, fx):
    return _reduce(ctx, ctx.args(fx)["self"], "amax", None, False)


@converts("aten.min.default")
def _min_all(ctx, fx):
    return _reduce(ctx, ctx.args(fx)["self"], "amin", None, False)


@converts("aten.max.dim", "aten.min.dim")
def _max_dim(ctx, fx):
    a = ctx.args(fx)
    is_max = str(fx.target) == "aten.max.dim"
    values = _reduce(ctx, a["self"], "amax" if is_max else "amin", int(a["dim"]), a["keepdim"])
    x = ctx.tensor(a["self"])
    dim = normalize_dim(int(a["dim"]), len(ctx.shape(x)), ctx.target) if ctx.shape(x) else None
    # the indices node is dropped by dead-code elimination when only the values are used
    indices = ctx.emit1("argmax" if is_max else "argmin", [x], {"dim": dim, "keepdim": bool(a["keepdim"])})
    return (values, indices)


def _correction(a) -> float:
    if "correction" in a:
        return 1.0 if a["correction"] is None else float(a["correction"])
    return 1.0 if a.get("unbiased", True) else 0.0


@converts("aten.var.correction", "aten.var.dim", "aten.var.default")
def _var(ctx, fx):
    a = ctx.args(fx)
    return _reduce(ctx, a["self"], "var", a.get("dim"), a.get("keepdim", False), _correction(a))


@converts("aten.std.correction", "aten.std.dim", "aten.std.default")
def _std(ctx, fx):
    a = ctx.args(fx)
    return _reduce(ctx, a["self"], "std", a.get("dim"), a.get("keepdim", False), _correction(a))


@converts("aten.argmax.default", "aten.argmin.default")
def _argmax(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"argmax/argmin of a {ctx.info(x).dtype.value} tensor is not supported (float32 only)")
    dim = a["dim"]
    if dim is not None:
        dim = normalize_dim(int(dim), len(ctx.shape(x)), ctx.target) if ctx.shape(x) else None
    op = "argmin" if str(fx.target) == "aten.argmin.default" else "argmax"
    return ctx.emit1(op, [x], {"dim": dim, "keepdim": bool(a["keepdim"])})


# -- ONNX ------------------------------------------------------------------------------------------

_ONNX_REDUCE = {"ReduceMean": ("mean", 18), "ReduceSum": ("sum", 13), "ReduceMax": ("amax", 18),
                "ReduceMin": ("amin", 18)}


@converts_onnx(*_ONNX_REDUCE)
def _from_onnx_reduce(ctx, node):
    """axes: an attribute before the opset the op took it as an input (ReduceSum 13, the others 18);
    absent axes reduce every dim unless noop_with_empty_axes=1."""
    kind, since = _ONNX_REDUCE[node.op_type]
    axes = ctx.ints_operand("axes", 1, since)
    if not axes:
        if ctx.opset >= since and int(ctx.attr("noop_with_empty_axes", 0)):
            return ctx.input(0)
        axes = None
    return _reduce(ctx, ctx.input_name(0), kind, axes, bool(ctx.attr("keepdims", 1)))


@converts_onnx("ArgMax", "ArgMin")
def _from_onnx_argmax(ctx, node):
    """int32 indices (ONNX's int64, narrowed as every 64-bit value); select_last_index=1 is refused."""
    x = ctx.input(0)
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"{node.op_type} of a {ctx.info(x).dtype.value} tensor is not supported (float32 only)")
    if int(ctx.attr("select_last_index", 0)):
        raise ctx.unsupported("attribute select_last_index=1 is not supported (the first extreme index is returned)")
    dim = ctx.dim(int(ctx.attr("axis", 0)), len(ctx.shape(x)))
    return ctx.emit1(node.op_type.lower(), [x], {"dim": dim, "keepdim": bool(ctx.attr("keepdims", 1))})
