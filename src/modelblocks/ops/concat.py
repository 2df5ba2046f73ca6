"""Joining and splitting tensors: concat (cat, stack), and the converters of split, chunk, unbind's
cousins and roll.

- `concat` is one IR node with any number of inputs (constants welcome, e.g. a class token that
  torch already expanded over the batch at compile time) and one kernel call that copies, for each
  of the `outer` rows, one contiguous row of every part.
- stack is `reshape` (a zero-copy view that inserts the new size-1 dim) of each input + concat.
- split / split_with_sizes / unsafe_split / chunk become one `slice` node per part (ops/layout.py)
  rather than one node with several outputs: every part is then an ordinary single-output node,
  dead-code elimination drops the parts a model never reads (e.g. the unused half of a GLU-style
  chunk), and the memory planner frees each part on its own schedule. The cost is one pass over
  the input per part, the same number of bytes moved in total.
- roll is, per rolled dim, two slices and a concat.
"""

from __future__ import annotations

import numpy as np

from .layout import kernel_suffix, reshape, slice_
from .registry import Attr, OpDef, converts, converts_onnx, numel, register

MAX_PARTS = 1024


def _concat_infer(node, ins):
    first = ins[0]
    rank = len(first.shape)
    d = node.attrs["dim"]
    if not 0 <= d < rank:
        raise ValueError(f"dim {d} out of range for rank {rank}")
    kernel_suffix(first.dtype)
    total = 0
    for t in ins:
        if t.dtype != first.dtype:
            raise ValueError(f"inputs have different dtypes ({first.dtype.value} and {t.dtype.value})")
        if len(t.shape) != rank or any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d):
            raise ValueError(f"shapes {list(first.shape)} and {list(t.shape)} differ outside dim {d}")
        if t.numel == 0:
            raise ValueError("zero-size inputs are not supported")
        total += t.shape[d]
    out = list(first.shape)
    out[d] = total
    return [(tuple(out), first.dtype)]


def _concat_emit(ctx, node):
    d = node.attrs["dim"]
    y = node.outputs[0]
    shape = ctx.shape(y)
    inner = numel(shape[d + 1:])
    widths = [ctx.shape(x)[d] * inner for x in node.inputs]
    t = ctx.tensor(y).dtype
    parts = ", ".join(ctx.ptr(x) for x in node.inputs)
    # the pointer table must live on the stack: arena and I/O pointers are not compile-time constants.
    # `mb_` names are never given to tensors, so the table cannot shadow an input.
    return (f"{{ const {t.ctype} *const mb_concat_parts_[{len(node.inputs)}] = {{{parts}}}; "
            f"mb_concat_{kernel_suffix(t)}(mb_concat_parts_, {ctx.ints(widths, 'widths')}, {len(node.inputs)}, "
            f"{numel(shape[:d])}, {ctx.ptr(y)}); }}")


register(OpDef(
    name="concat", infer=_concat_infer,
    reference=lambda node, args: [np.concatenate(args, axis=node.attrs["dim"])],
    emit=_concat_emit, kernels=("mb_layout",), attrs={"dim": Attr("int")}, num_inputs=(1, MAX_PARTS),
    doc="torch.cat along dim",
))


def concat(ctx, names: list[str], dim: int) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) > MAX_PARTS:
        raise ctx.unsupported(f"cat of {len(names)} tensors: at most {MAX_PARTS} are supported")
    return ctx.emit1("concat", names, {"dim": dim})


@converts("aten.cat.default", "aten.concat.default", "aten.concatenate.default")
def _cat(ctx, fx):
    a = ctx.args(fx)
    values = list(a["tensors"])
    dtypes = {v.meta["val"].dtype for v in values if hasattr(v, "meta") and "val" in v.meta}
    if len(dtypes) > 1:
        raise ctx.unsupported(f"cat of tensors with different dtypes {sorted(str(d) for d in dtypes)}; "
                              "cast them to one dtype first")
    names = [ctx.tensor(v) for v in values]
    # torch.cat accepts legacy empty 1-d tensors of any rank and skips them
    names = [n for n in names if ctx.info(n).numel > 0]
    if not names:
        raise ctx.unsupported("cat of only empty tensors")
    rank = len(ctx.shape(names[0]))
    return concat(ctx, names, ctx.dim(a["dim"], rank))


@converts("aten.stack.default")
def _stack(ctx, fx):
    a = ctx.args(fx)
    names = [ctx.tensor(v) for v in a["tensors"]]
    shape = ctx.shape(names[0])
    dim = ctx.dim(a["dim"], len(shape) + 1)
    if any(ctx.shape(n) != shape for n in names):
        raise ctx.unsupported(f"stack of tensors of different shapes {[list(ctx.shape(n)) for n in names]}")
    new = shape[:dim] + (1,) + shape[dim:]
    parts = [ctx.emit1("reshape", [n], {"shape": new}) for n in names]
    return concat(ctx, parts, dim)


def _stack_like(ctx, fx, dim: int, shape_of) -> str:
    """hstack / vstack / dstack / column_stack: reshape each input (a view), then concat."""
    names = [ctx.tensor(v) for v in fx.args[0]]
    parts = [reshape(ctx, n, shape_of(ctx.shape(n))) for n in names]
    return concat(ctx, parts, dim if len(ctx.shape(parts[0])) > dim else 0)


@converts("aten.hstack.default")
def _hstack(ctx, fx):
    return _stack_like(ctx, fx, 1, lambda s: s if s else (1,))


@converts("aten.vstack.default", "aten.row_stack.default")
def _vstack(ctx, fx):
    return _stack_like(ctx, fx, 0, lambda s: s if len(s) >= 2 else (1, numel(s)))


@converts("aten.dstack.default")
def _dstack(ctx, fx):
    return _stack_like(ctx, fx, 2, lambda s: s if len(s) >= 3 else ((1, numel(s), 1) if len(s) < 2 else s + (1,)))


@converts("aten.column_stack.default")
def _column_stack(ctx, fx):
    return _stack_like(ctx, fx, 1, lambda s: s if len(s) >= 2 else (numel(s), 1))


def split(ctx, x: str, sizes: list[int], dim: int) -> tuple[str, ...]:
    n = ctx.shape(x)[dim]
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise ctx.unsupported(f"split sizes {sizes} do not add up to the size {n} of dim {dim}")
    outs, start = [], 0
    for s in sizes:
        outs.append(slice_(ctx, x, dim, start, start + s) if s else "")
        start += s
    return tuple(outs)


def _even_sizes(n: int, size: int) -> list[int]:
    size = max(int(size), 1)
    return [size] * (n // size) + ([n % size] if n % size else []) or [n]


@converts("aten.split.Tensor", "aten.unsafe_split.Tensor", "aten.split_copy.Tensor")
def _split(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], len(ctx.shape(x)))
    n = ctx.shape(x)[dim]
    if int(a["split_size"]) <= 0:
        raise ctx.unsupported(f"split size {a['split_size']} must be positive")
    return split(ctx, x, _even_sizes(n, a["split_size"]), dim)


@converts("aten.split_with_sizes.default", "aten.unsafe_split_with_sizes.default",
          "aten.split_with_sizes_copy.default")
def _split_with_sizes(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], len(ctx.shape(x)))
    return split(ctx, x, [int(s) for s in a["split_sizes"]], dim)


@converts("aten.chunk.default", "aten.unsafe_chunk.default")
def _chunk(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], len(ctx.shape(x)))
    n, chunks = ctx.shape(x)[dim], int(a["chunks"])
    if chunks <= 0:
        raise ctx.unsupported(f"chunk into {chunks} parts")
    return split(ctx, x, _even_sizes(n, -(-n // chunks)), dim)


def _roll_dim(ctx, x: str, shift: int, dim: int) -> str:
    n = ctx.shape(x)[dim]
    s = shift % n
    if s == 0:
        return x
    return concat(ctx, [slice_(ctx, x, dim, n - s, n), slice_(ctx, x, dim, 0, n - s)], dim)


@converts("aten.roll.default")
def _roll(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    shape = ctx.shape(x)
    shifts, dims = [int(s) for s in a["shifts"]], [int(d) for d in a["dims"]]
    if not dims:  # roll of the flattened tensor
        if len(shifts) != 1:
            raise ctx.unsupported(f"roll with shifts {shifts} and no dims")
        flat = ctx.emit1("reshape", [x], {"shape": (numel(shape),)}) if len(shape) != 1 else x
        y = _roll_dim(ctx, flat, shifts[0], 0)
        return y if ctx.shape(y) == shape else ctx.emit1("reshape", [y], {"shape": shape})
    if len(shifts) != len(dims):
        raise ctx.unsupported(f"roll with {len(shifts)} shifts for {len(dims)} dims")
    for s, d in zip(shifts, dims):
        x = _roll_dim(ctx, x, s, ctx.dim(d, len(shape)))
    return x


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Concat")
def _from_onnx_concat(ctx, node):
    names = [ctx.tensor(i) for i in node.input if i]
    dim = int(ctx.attr("axis"))
    rank = len(ctx.shape(names[0]))
    dim = dim + rank if dim < 0 else dim
    return names[0] if len(names) == 1 else concat(ctx, names, dim)


@converts_onnx("Split")
def _from_onnx_split(ctx, node):
    """Sizes: the `split` attribute before opset 13, an optional input from 13 on, else equal parts
    (opset 18: `num_outputs` parts, the last one smaller)."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    dim = int(ctx.attr("axis", 0))
    dim = dim + len(shape) if dim < 0 else dim
    sizes = ctx.ints_operand("split", 1, 13)
    n = shape[dim]
    if sizes is None:
        parts = int(ctx.attr("num_outputs", len(node.output)))
        size = -(-n // parts)
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        if len(sizes) != parts:
            raise ctx.unsupported(f"cannot split {n} into {parts} parts")
    return split(ctx, x, [int(s) for s in sizes], dim)
