"""Data movement: permute, slice, select, expand, repeat, flip, unfold, pixel_(un)shuffle and
index_select with constant indices. Concatenation, stack, split and chunk are in `ops/concat.py`,
constant creation (`zeros_like`, ...) in `ops/creation.py`; zero-copy reshapes in `ops/reshape.py`.

Every op here except index_select reads its input through a *strided view*: output element
(i0, ..., ik) is input element `offset + sum(i_d * stride_d)` of the contiguous input, with stride 0
on broadcast dimensions and negative strides for flips. Each op gives its view as
`(dims, strides, offset)` (`VIEWS[op]`); the C emitter merges neighbouring dimensions that stay
contiguous (`binary.collapse`) and calls the single kernel `mb_strided_copy_<t>`. repeat and
pixel_shuffle describe their output as a view of *more* dimensions than it has (each repeated
dimension becomes (times, size) with strides (0, stride)). The NumPy references do not use these
views: they are written with NumPy's own transpose / slicing / broadcast_to / tile / flip, so the
tests check the stride arithmetic against two independent implementations.

The IR ops keep their meaning (a permute stays a `permute` node with its `perm`) so that passes
such as the NCHW->NHWC layout pass can reason about them. All ops move any dtype: the kernels exist
for float, int32, int16, int8 and uint8/bool elements (`SUFFIX`).

ONNX: Transpose, Slice (a negative step slices the flipped axis), Gather (constant indices here,
run-time indices as an `embedding` lookup), Expand, Tile, DepthToSpace (CRD is pixel_shuffle, DCR a
reshape / permute / reshape) and SpaceToDepth (reshape / permute / reshape).

Conversions that would be a no-op (an identity permutation, a full slice, a repeat by ones, an
expand to the same shape) return their input and add no node.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.dtypes import DType
from .binary import collapse
from .registry import Attr, OpDef, converts, converts_onnx, numel, register

MAX_RANK = 16  # MB_LAYOUT_MAX_RANK in mb_layout.h, after merging dimensions

SUFFIX = {DType.float32: "f32", DType.int32: "i32", DType.int16: "i16", DType.int8: "i8",
          DType.uint8: "u8", DType.bool: "u8"}


def kernel_suffix(dtype: DType) -> str:
    try:
        return SUFFIX[dtype]
    except KeyError:
        raise ValueError(f"no data-movement kernel for dtype {dtype.value}") from None


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, step = [0] * len(shape), 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = step
        step *= shape[k]
    return strides


def slice_length(start: int, end: int, step: int) -> int:
    return max(0, (end - start + step - 1) // step)


def python_slice(n: int, start, end, step) -> tuple[int, int, int]:
    """aten.slice arguments normalised as Python does: None, negative and out-of-range bounds."""
    step = 1 if step is None else int(step)
    if step < 1:
        raise ValueError(f"slice step must be positive, got {step}")
    start = 0 if start is None else int(start)
    end = n if end is None else int(end)
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = min(max(start, 0), n)
    end = min(max(end, start), n)
    return start, end, step


# -- views: input shape + attrs -> (dims, strides, offset) over the contiguous input -------------


def _view_permute(shape, a):
    cs = contiguous_strides(shape)
    return [shape[p] for p in a["perm"]], [cs[p] for p in a["perm"]], 0


def _view_slice(shape, a):
    d, cs = a["dim"], contiguous_strides(shape)
    dims, strides = list(shape), list(cs)
    dims[d] = slice_length(a["start"], a["end"], a["step"])
    strides[d] = cs[d] * a["step"]
    return dims, strides, a["start"] * cs[d]


def _view_select(shape, a):
    d, cs = a["dim"], contiguous_strides(shape)
    return list(shape[:d]) + list(shape[d + 1:]), cs[:d] + cs[d + 1:], a["index"] * cs[d]


def _view_expand(shape, a):
    out = a["shape"]
    cs = contiguous_strides(shape)
    lead = len(out) - len(shape)
    strides = [0] * lead + [0 if shape[k] == 1 and out[lead + k] != 1 else cs[k] for k in range(len(shape))]
    return list(out), strides, 0


def _view_repeat(shape, a):
    reps = a["repeats"]
    padded = [1] * (len(reps) - len(shape)) + list(shape)
    cs = contiguous_strides(padded)
    dims, strides = [], []
    for r, n, s in zip(reps, padded, cs):
        dims += [r, n]
        strides += [0, s]
    return dims, strides, 0


def _view_flip(shape, a):
    cs = contiguous_strides(shape)
    strides, offset = list(cs), 0
    for d in a["dims"]:
        strides[d] = -cs[d]
        offset += (shape[d] - 1) * cs[d]
    return list(shape), strides, offset


def _view_unfold(shape, a):
    d, size, step = a["dim"], a["size"], a["step"]
    cs = contiguous_strides(shape)
    dims, strides = list(shape), list(cs)
    dims[d] = (shape[d] - size) // step + 1
    strides[d] = cs[d] * step
    return dims + [size], strides + [cs[d]], 0


def _view_pixel_shuffle(shape, a):
    r = a["factor"]
    *batch, c, h, w = shape
    co = c // (r * r)
    bs = contiguous_strides(batch + [c * h * w])[:-1] if batch else []
    # output (c, h, i, w, j) reads input channel c*r*r + i*r + j at (h, w)
    return (list(batch) + [co, h, r, w, r],
            list(bs) + [r * r * h * w, w, r * h * w, 1, h * w], 0)


def _view_pixel_unshuffle(shape, a):
    r = a["factor"]
    *batch, c, h, w = shape
    ho, wo = h // r, w // r
    bs = contiguous_strides(batch + [c * h * w])[:-1] if batch else []
    # output (c, i, j, h, w) reads input (c, h*r + i, w*r + j)
    return list(batch) + [c, r, r, ho, wo], list(bs) + [h * w, w, 1, r * w, r], 0


def _diag_geometry(shape, a):
    d1, d2, off = a["dim1"], a["dim2"], a["offset"]
    if off >= 0:
        return max(0, min(shape[d1], shape[d2] - off)), off * contiguous_strides(shape)[d2]
    return max(0, min(shape[d1] + off, shape[d2])), -off * contiguous_strides(shape)[d1]


def _view_diagonal(shape, a):
    d1, d2 = a["dim1"], a["dim2"]
    cs = contiguous_strides(shape)
    n, start = _diag_geometry(shape, a)
    keep = [k for k in range(len(shape)) if k not in (d1, d2)]
    return [shape[k] for k in keep] + [n], [cs[k] for k in keep] + [cs[d1] + cs[d2]], start


# -- shape rules -------------------------------------------------------------------------------


def _out_permute(shape, a):
    perm = a["perm"]
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"perm {list(perm)} is not a permutation of {len(shape)} dims")
    return tuple(shape[p] for p in perm)


def _out_slice(shape, a):
    d = a["dim"]
    if not 0 <= d < len(shape):
        raise ValueError(f"dim {d} out of range for rank {len(shape)}")
    start, end, step = a["start"], a["end"], a["step"]
    if not (step >= 1 and 0 <= start <= end <= shape[d]):
        raise ValueError(f"slice {start}:{end}:{step} is not normalised for size {shape[d]}")
    out = list(shape)
    out[d] = slice_length(start, end, step)
    return tuple(out)


def _out_select(shape, a):
    d, i = a["dim"], a["index"]
    if not 0 <= d < len(shape):
        raise ValueError(f"dim {d} out of range for rank {len(shape)}")
    if not 0 <= i < shape[d]:
        raise ValueError(f"index {i} out of range for size {shape[d]}")
    return tuple(shape[:d]) + tuple(shape[d + 1:])


def _out_expand(shape, a):
    out = tuple(a["shape"])
    lead = len(out) - len(shape)
    if lead < 0 or any(n != 1 and n != out[lead + k] for k, n in enumerate(shape)):
        raise ValueError(f"cannot expand {list(shape)} to {list(out)}")
    return out


def _out_repeat(shape, a):
    reps = a["repeats"]
    if len(reps) < len(shape) or any(r < 1 for r in reps):
        raise ValueError(f"repeats {list(reps)} must be positive and at least as many as dims {list(shape)}")
    padded = [1] * (len(reps) - len(shape)) + list(shape)
    return tuple(r * n for r, n in zip(reps, padded))


def _out_flip(shape, a):
    dims = a["dims"]
    if any(not 0 <= d < len(shape) for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"flip dims {list(dims)} invalid for rank {len(shape)}")
    return tuple(shape)


def _out_unfold(shape, a):
    d, size, step = a["dim"], a["size"], a["step"]
    if not 0 <= d < len(shape) or size < 1 or step < 1 or size > shape[d]:
        raise ValueError(f"unfold(dim={d}, size={size}, step={step}) invalid for shape {list(shape)}")
    out = list(shape)
    out[d] = (shape[d] - size) // step + 1
    return tuple(out) + (size,)


def _out_pixel_shuffle(shape, a):
    r = a["factor"]
    if len(shape) < 3 or r < 1 or shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {list(shape)}")
    return tuple(shape[:-3]) + (shape[-3] // (r * r), shape[-2] * r, shape[-1] * r)


def _out_pixel_unshuffle(shape, a):
    r = a["factor"]
    if len(shape) < 3 or r < 1 or shape[-2] % r or shape[-1] % r:
        raise ValueError(f"pixel_unshuffle by {r} needs height and width divisible by {r}, got {list(shape)}")
    return tuple(shape[:-3]) + (shape[-3] * r * r, shape[-2] // r, shape[-1] // r)


def _out_diagonal(shape, a):
    d1, d2 = a["dim1"], a["dim2"]
    if not (0 <= d1 < len(shape) and 0 <= d2 < len(shape)) or d1 == d2:
        raise ValueError(f"diagonal dims {d1}, {d2} invalid for rank {len(shape)}")
    keep = [shape[k] for k in range(len(shape)) if k not in (d1, d2)]
    return tuple(keep) + (_diag_geometry(shape, a)[0],)


# -- NumPy references (independent of the views above) ------------------------------------------


def _ref_slice(x, a):
    index = [slice(None)] * x.ndim
    index[a["dim"]] = slice(a["start"], a["end"], a["step"])
    return x[tuple(index)]


def _ref_unfold(x, a):
    d = a["dim"]
    w = np.lib.stride_tricks.sliding_window_view(x, a["size"], axis=d)
    index = [slice(None)] * w.ndim
    index[d] = slice(None, None, a["step"])
    return w[tuple(index)]


def _ref_pixel_shuffle(x, a):
    r = a["factor"]
    *batch, c, h, w = x.shape
    y = x.reshape(*batch, c // (r * r), r, r, h, w)
    n = len(batch)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*batch, c // (r * r), h * r, w * r)


def _ref_pixel_unshuffle(x, a):
    r = a["factor"]
    *batch, c, h, w = x.shape
    y = x.reshape(*batch, c, h // r, r, w // r, r)
    n = len(batch)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*batch, c * r * r, h // r, w // r)


VIEW_OPS = {
    # name: (attrs, shape rule, view, reference, doc)
    "permute": ({"perm": Attr("ints")}, _out_permute, _view_permute,
                lambda x, a: np.transpose(x, a["perm"]), "y = x.permute(perm)"),
    "slice": ({"dim": Attr("int"), "start": Attr("int"), "end": Attr("int"), "step": Attr("int", 1)},
              _out_slice, _view_slice, _ref_slice, "y = x[..., start:end:step, ...] (normalised bounds)"),
    "select": ({"dim": Attr("int"), "index": Attr("int")}, _out_select, _view_select,
               lambda x, a: np.take(x, a["index"], axis=a["dim"]), "y = x[..., index, ...] (drops dim)"),
    "expand": ({"shape": Attr("ints")}, _out_expand, _view_expand,
               lambda x, a: np.broadcast_to(x, a["shape"]), "broadcast size-1 / missing leading dims"),
    "repeat": ({"repeats": Attr("ints")}, _out_repeat, _view_repeat,
               lambda x, a: np.tile(x, a["repeats"]), "torch.Tensor.repeat (numpy tile)"),
    "flip": ({"dims": Attr("ints")}, _out_flip, _view_flip,
             lambda x, a: np.flip(x, a["dims"]) if a["dims"] else x, "reverse the listed dims"),
    "unfold": ({"dim": Attr("int"), "size": Attr("int"), "step": Attr("int")}, _out_unfold, _view_unfold,
               _ref_unfold, "sliding windows along dim, window as a new last dim"),
    "diagonal": ({"offset": Attr("int", 0), "dim1": Attr("int"), "dim2": Attr("int")}, _out_diagonal,
                 _view_diagonal, lambda x, a: np.diagonal(x, a["offset"], a["dim1"], a["dim2"]),
                 "torch.diagonal: the diagonal of dims (dim1, dim2) becomes the last dim"),
    "pixel_shuffle": ({"factor": Attr("int")}, _out_pixel_shuffle, _view_pixel_shuffle, _ref_pixel_shuffle,
                      "[*, C*r*r, H, W] -> [*, C, H*r, W*r]"),
    "pixel_unshuffle": ({"factor": Attr("int")}, _out_pixel_unshuffle, _view_pixel_unshuffle,
                        _ref_pixel_unshuffle, "[*, C, H*r, W*r] -> [*, C*r*r, H, W]"),
}


def strided_view(op: str, shape: Sequence[int], attrs: dict) -> tuple[list[int], list[int], int]:
    """The merged (dims, strides, offset) through which op `op` reads its contiguous input."""
    dims, strides, offset = VIEW_OPS[op][2](tuple(shape), attrs)
    dims, (strides,) = collapse(list(dims), list(strides))
    return dims, strides, int(offset)


def _check_view(op: str, shape, attrs, out) -> None:
    if numel(out) == 0:
        raise ValueError(f"{op} gives an empty tensor {list(out)}; zero-size tensors are not supported")
    dims, strides, offset = strided_view(op, shape, attrs)
    if len(dims) > MAX_RANK:
        raise ValueError(f"{op} needs a {len(dims)}-dimensional strided copy, more than {MAX_RANK}")
    lo = offset + sum(min(0, (n - 1) * s) for n, s in zip(dims, strides))
    hi = offset + sum(max(0, (n - 1) * s) for n, s in zip(dims, strides))
    if lo < 0 or hi >= max(numel(shape), 1):  # the kernel's safety rests on this
        raise ValueError(f"{op} view reads [{lo}, {hi}] outside its input of {numel(shape)} elements")


def _make_view_op(name: str) -> OpDef:
    attrs, out_rule, _view, ref, doc = VIEW_OPS[name]

    def infer(node, ins):
        x = ins[0]
        kernel_suffix(x.dtype)
        out = out_rule(x.shape, node.attrs)
        _check_view(name, x.shape, node.attrs, out)
        return [(tuple(out), x.dtype)]

    def reference(node, args):
        return [np.array(ref(args[0], node.attrs), order="C", copy=True)]

    def emit(ctx, node):
        x, y = node.inputs[0], node.outputs[0]
        dims, strides, offset = strided_view(name, ctx.shape(x), node.attrs)
        sfx = kernel_suffix(ctx.tensor(x).dtype)
        return (f"mb_strided_copy_{sfx}({ctx.ptr(x)}, {ctx.ptr(y)}, {ctx.ints(dims, 'dims')}, "
                f"{ctx.ints(strides, 'strides')}, {len(dims)}, {offset});")

    return OpDef(name=name, infer=infer, reference=reference, emit=emit, kernels=("mb_layout",),
                 attrs=attrs, num_inputs=(1, 1), doc=doc)


for _name in VIEW_OPS:
    register(_make_view_op(_name))


# -- index_select with constant indices ---------------------------------------------------------


def _index_select_infer(node, ins):
    x = ins[0]
    kernel_suffix(x.dtype)
    d, idx = node.attrs["dim"], node.attrs["indices"]
    if not 0 <= d < len(x.shape):
        raise ValueError(f"dim {d} out of range for rank {len(x.shape)}")
    if not idx:
        raise ValueError("index_select with no indices gives an empty tensor")
    if any(not 0 <= i < x.shape[d] for i in idx):
        raise ValueError(f"indices {list(idx)} out of range for size {x.shape[d]}")
    out = list(x.shape)
    out[d] = len(idx)
    return [(tuple(out), x.dtype)]


def _index_select_emit(ctx, node):
    x, y = node.inputs[0], node.outputs[0]
    shape, d, idx = ctx.shape(x), node.attrs["dim"], node.attrs["indices"]
    sfx = kernel_suffix(ctx.tensor(x).dtype)
    return (f"mb_index_select_{sfx}({ctx.ptr(x)}, {ctx.ptr(y)}, {ctx.ints(idx, 'indices')}, {len(idx)}, "
            f"{numel(shape[:d])}, {shape[d]}, {numel(shape[d + 1:])});")


register(OpDef(
    name="index_select", infer=_index_select_infer,
    reference=lambda node, args: [np.take(args[0], np.array(node.attrs["indices"], dtype=np.int64),
                                          axis=node.attrs["dim"])],
    emit=_index_select_emit, kernels=("mb_layout",),
    attrs={"dim": Attr("int"), "indices": Attr("ints")}, num_inputs=(1, 1),
    doc="y = x.index_select(dim, indices) with compile-time indices",
))


# -- converters -----------------------------------------------------------------------------------


def _rank(ctx, name: str) -> int:
    return len(ctx.shape(name))


def permute(ctx, x: str, perm: Sequence[int]) -> str:
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return ctx.emit1("permute", [x], {"perm": perm})


def slice_(ctx, x: str, dim: int, start, end, step=1) -> str:
    shape = ctx.shape(x)
    dim = ctx.dim(dim, len(shape))
    try:
        start, end, step = python_slice(shape[dim], start, end, step)
    except ValueError as exc:
        raise ctx.unsupported(str(exc)) from None
    if (start, end, step) == (0, shape[dim], 1):
        return x
    if end == start:
        raise ctx.unsupported(f"slice {start}:{end} of dim {dim} (size {shape[dim]}) is empty; "
                              "zero-size tensors are not supported")
    return ctx.emit1("slice", [x], {"dim": dim, "start": start, "end": end, "step": step})


def select(ctx, x: str, dim: int, index: int) -> str:
    shape = ctx.shape(x)
    dim = ctx.dim(dim, len(shape))
    n, index = shape[dim], int(index)
    if not -n <= index < n:
        raise ctx.unsupported(f"index {index} is out of range for dim {dim} of size {n}")
    return ctx.emit1("select", [x], {"dim": dim, "index": index % n})


def expand(ctx, x: str, shape: Sequence[int]) -> str:
    shape = tuple(int(d) for d in shape)
    if shape == ctx.shape(x):
        return x
    return ctx.emit1("expand", [x], {"shape": shape})


@converts("aten.permute.default", "aten.permute_copy.default")
def _permute(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    rank = _rank(ctx, x)
    return permute(ctx, x, [ctx.dim(d, rank) for d in a["dims"]])


@converts("aten.transpose.int", "aten.transpose_copy.int", "aten.swapaxes.default", "aten.swapdims.default")
def _transpose(ctx, fx):
    x = ctx.tensor(fx.args[0])
    rank = _rank(ctx, x)
    d0, d1 = (ctx.dim(d, rank) for d in fx.args[1:3])
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute(ctx, x, perm)


@converts("aten.t.default", "aten.t_copy.default", "aten.numpy_T.default")
def _t(ctx, fx):
    x = ctx.tensor(fx.args[0])
    return permute(ctx, x, list(range(_rank(ctx, x)))[::-1])


@converts("aten.slice.Tensor", "aten.slice_copy.Tensor")
def _slice(ctx, fx):
    a = ctx.args(fx)
    return slice_(ctx, ctx.tensor(a["self"]), a["dim"], a["start"], a["end"], a["step"])


@converts("aten.narrow.default", "aten.narrow_copy.default")
def _narrow(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], _rank(ctx, x))
    start = int(a["start"])
    if start < 0:
        start += ctx.shape(x)[dim]
    return slice_(ctx, x, dim, start, start + int(a["length"]))


@converts("aten.select.int", "aten.select_copy.int")
def _select(ctx, fx):
    a = ctx.args(fx)
    return select(ctx, ctx.tensor(a["self"]), a["dim"], a["index"])


@converts("aten.unbind.int", "aten.unbind_copy.int")
def _unbind(ctx, fx):
    """One select node per slice, so that DCE drops the parts a model does not use."""
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], _rank(ctx, x))
    return tuple(select(ctx, x, dim, i) for i in range(ctx.shape(x)[dim]))


@converts("aten.expand.default", "aten.expand_copy.default", "aten.expand_as.default", "aten.broadcast_to.default")
def _expand(ctx, fx):
    return expand(ctx, ctx.tensor(fx.args[0]), fx.meta["val"].shape)


@converts("aten.repeat.default")
def _repeat(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    reps = tuple(int(r) for r in a["repeats"])
    if any(r < 1 for r in reps):
        raise ctx.unsupported(f"repeat counts {list(reps)} must be positive (zero gives an empty tensor)")
    if len(reps) == _rank(ctx, x) and all(r == 1 for r in reps):
        return x
    return ctx.emit1("repeat", [x], {"repeats": reps})


@converts("aten.tile.default")
def _tile(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    reps = tuple(int(r) for r in a["dims"])
    reps = (1,) * (_rank(ctx, x) - len(reps)) + reps
    if any(r < 1 for r in reps):
        raise ctx.unsupported(f"tile counts {list(reps)} must be positive (zero gives an empty tensor)")
    if all(r == 1 for r in reps) and len(reps) == _rank(ctx, x):
        return x
    return ctx.emit1("repeat", [x], {"repeats": reps})


def flip(ctx, x: str, dims) -> str:
    shape = ctx.shape(x)
    dims = tuple(sorted({ctx.dim(d, len(shape)) for d in dims}))
    dims = tuple(d for d in dims if shape[d] > 1)
    if not dims:
        return x
    return ctx.emit1("flip", [x], {"dims": dims})


@converts("aten.flip.default")
def _flip(ctx, fx):
    a = ctx.args(fx)
    return flip(ctx, ctx.tensor(a["self"]), a["dims"])


@converts("aten.fliplr.default")
def _fliplr(ctx, fx):
    x = ctx.tensor(fx.args[0])
    if len(ctx.shape(x)) < 2:
        raise ctx.unsupported("fliplr needs at least 2 dims")
    return flip(ctx, x, (1,))


@converts("aten.flipud.default")
def _flipud(ctx, fx):
    x = ctx.tensor(fx.args[0])
    if len(ctx.shape(x)) < 1:
        raise ctx.unsupported("flipud needs at least 1 dim")
    return flip(ctx, x, (0,))


@converts("aten.diagonal.default", "aten.diagonal_copy.default")
def _diagonal(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    rank = _rank(ctx, x)
    if rank < 2:
        raise ctx.unsupported("diagonal needs at least 2 dims")
    attrs = {"offset": int(a["offset"]), "dim1": ctx.dim(a["dim1"], rank), "dim2": ctx.dim(a["dim2"], rank)}
    if _out_diagonal(ctx.shape(x), attrs)[-1] == 0:
        raise ctx.unsupported(f"diagonal with offset {attrs['offset']} is empty; zero-size tensors are not supported")
    return ctx.emit1("diagonal", [x], attrs)


def reshape(ctx, x: str, shape) -> str:
    shape = tuple(int(d) for d in shape)
    return x if ctx.shape(x) == shape else ctx.emit1("reshape", [x], {"shape": shape})


@converts("aten.repeat_interleave.self_int")
def _repeat_interleave(ctx, fx):
    """Each element `repeats` times in a row: a view with a new size-1 dim after `dim`, expanded."""
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    r = int(a["repeats"])
    if r < 1:
        raise ctx.unsupported(f"repeat_interleave by {r}: zero-size tensors are not supported")
    if a["dim"] is None:
        x, dim = reshape(ctx, x, (numel(ctx.shape(x)),)), 0
    else:
        dim = ctx.dim(a["dim"], _rank(ctx, x))
    s = ctx.shape(x)
    y = expand(ctx, reshape(ctx, x, s[:dim + 1] + (1,) + s[dim + 1:]), s[:dim + 1] + (r,) + s[dim + 1:])
    return reshape(ctx, y, s[:dim] + (s[dim] * r,) + s[dim + 1:])


@converts("aten.unfold.default")
def _unfold(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    rank = _rank(ctx, x)
    if rank == 0:
        raise ctx.unsupported("unfold of a 0-d tensor is not supported")
    dim = ctx.dim(a["dimension"], rank)
    return ctx.emit1("unfold", [x], {"dim": dim, "size": int(a["size"]), "step": int(a["step"])})


@converts("aten.pixel_shuffle.default")
def _pixel_shuffle(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("pixel_shuffle", [ctx.tensor(a["self"])], {"factor": int(a["upscale_factor"])})


@converts("aten.pixel_unshuffle.default")
def _pixel_unshuffle(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("pixel_unshuffle", [ctx.tensor(a["self"])], {"factor": int(a["downscale_factor"])})


def _constant_indices(ctx, value, what: str) -> np.ndarray:
    idx = ctx.constant_value(value)
    if idx is None:
        raise ctx.unsupported(f"{what} with indices computed from the model's inputs (a data-dependent gather) "
                              "is not supported; only compile-time constant indices are")
    idx = np.asarray(idx)
    if idx.dtype == np.bool_:
        raise ctx.unsupported(f"{what} with a boolean mask is not supported: its result has a data-dependent "
                              "shape for torch.export; index with the integer positions instead")
    if idx.dtype.kind not in "iu":
        raise ctx.unsupported(f"{what} with {idx.dtype} indices is not supported")
    return idx


def index_select(ctx, x: str, dim: int, idx: np.ndarray) -> str:
    """x.index_select(dim, idx) for constant indices; arithmetic progressions become a slice."""
    n = ctx.shape(x)[dim]
    flat = [int(i) for i in np.asarray(idx).reshape(-1)]
    if any(not -n <= i < n for i in flat):
        raise ctx.unsupported(f"index out of range for dim {dim} of size {n}: {flat}")
    flat = [i % n for i in flat]
    if not flat:
        raise ctx.unsupported("indexing with an empty index gives a zero-size tensor, which is not supported")
    step = flat[1] - flat[0] if len(flat) > 1 else 1
    if step >= 1 and flat == list(range(flat[0], flat[0] + step * len(flat), step)):
        return slice_(ctx, x, dim, flat[0], flat[-1] + 1, step)
    return ctx.emit1("index_select", [x], {"dim": dim, "indices": tuple(flat)})


@converts("aten.index_select.default")
def _index_select(ctx, fx):
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    dim = ctx.dim(a["dim"], _rank(ctx, x))
    return index_select(ctx, x, dim, _constant_indices(ctx, a["index"], "index_select"))


@converts("aten.index.Tensor")
def _index(ctx, fx):
    """x[..., idx, ...] with one constant integer index tensor (any shape)."""
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    indices = list(a["indices"])
    used = [k for k, v in enumerate(indices) if v is not None]
    if len(used) != 1:
        raise ctx.unsupported(f"advanced indexing with {len(used)} index tensors is not supported "
                              "(one constant index tensor is)")
    dim = used[0]
    idx = _constant_indices(ctx, indices[dim], "tensor indexing")
    y = index_select(ctx, x, dim, idx.reshape(-1))
    want = tuple(int(d) for d in fx.meta["val"].shape)
    return y if ctx.shape(y) == want else ctx.emit1("reshape", [y], {"shape": want})


@converts("aten.rot90.default")
def _rot90(ctx, fx):
    """torch's own definition: a flip of one dim then a transpose (k = 1, 3) or two flips (k = 2)."""
    a = ctx.args(fx)
    x = ctx.tensor(a["self"])
    shape = ctx.shape(x)
    d0, d1 = (ctx.dim(d, len(shape)) for d in a["dims"])
    if d0 == d1:
        raise ctx.unsupported("rot90 needs two different dims")
    k = int(a["k"]) % 4
    if k == 0:
        return x
    flip = {1: (d1,), 2: (d0, d1), 3: (d0,)}[k]
    flip = tuple(sorted(d for d in flip if shape[d] > 1))
    y = ctx.emit1("flip", [x], {"dims": flip}) if flip else x
    if k == 2:
        return y
    perm = list(range(len(shape)))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute(ctx, y, perm)


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Transpose")
def _from_onnx_transpose(ctx, node):
    x = ctx.input(0)
    rank = _rank(ctx, x)
    perm = tuple(int(p) for p in ctx.attr("perm", tuple(range(rank - 1, -1, -1))))
    if sorted(perm) != list(range(rank)):
        raise ctx.unsupported(f"perm {list(perm)} is not a permutation of {rank} dims")
    return permute(ctx, x, perm)


@converts_onnx("Slice")
def _from_onnx_slice(ctx, node):
    """starts/ends/axes: attributes before opset 10, (constant) inputs with steps from 10 on. Ends past
    the dimension (INT_MAX) are clamped; a negative step slices the flipped axis."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    rank = len(shape)
    if ctx.opset >= 10:
        starts = [int(v) for v in np.asarray(ctx.required_const(1, "starts")).reshape(-1)]
        ends = [int(v) for v in np.asarray(ctx.required_const(2, "ends")).reshape(-1)]
        axes = ctx.ints_operand("axes", 3, 10, default=tuple(range(len(starts))))
        steps = ctx.ints_operand("steps", 4, 10, default=(1,) * len(starts))
    else:
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes = tuple(ctx.attr("axes", tuple(range(len(starts)))))
        steps = (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.unsupported("starts, ends, axes and steps differ in length")
    y = x
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = ctx.dim(axis, rank)
        if step == 0:
            raise ctx.unsupported("Slice step 0 is not valid")
        n = shape[axis]
        if step < 0:  # walk the flipped axis forwards: index i there is n - 1 - i here
            start = min(max(start + n if start < 0 else start, 0), n - 1)
            end = min(max(end + n if end < 0 else end, -1), n - 1)
            y, start, end, step = flip(ctx, y, (axis,)), n - 1 - start, n - 1 - end, -step
        end = min(end, n) if end >= 0 else max(end, -n - 1)
        start = min(start, n) if start >= 0 else max(start, -n)
        y = slice_(ctx, y, axis, start, end, step)
    return y


@converts_onnx("Gather")
def _from_onnx_gather(ctx, node):
    """Constant indices: a scalar index selects (drops the axis), an index tensor of shape I replaces
    the axis by I."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    axis = ctx.dim(int(ctx.attr("axis", 0)), len(shape))
    if ctx.const(1) is None:
        return _onnx_gather_lookup(ctx, x, axis)
    idx = _constant_indices(ctx, ctx.input_name(1), "Gather")
    if idx.ndim == 0:
        return select(ctx, x, axis, int(idx))
    y = index_select(ctx, x, axis, idx.reshape(-1))
    if idx.ndim == 1:
        return y
    out = shape[:axis] + tuple(idx.shape) + shape[axis + 1:]
    return reshape(ctx, y, out)


def _onnx_gather_lookup(ctx, x: str, axis: int) -> str:
    """Gather with indices computed at run time: a row lookup (embedding) of x seen as [x.shape[axis], rest],
    with the gathered axis moved to the front first and the index dims moved back to `axis` after.
    Negative indices count from the end, as ONNX says (the embedding kernel does that)."""
    idx = ctx.input(1)
    if ctx.info(idx).dtype != DType.int32:
        raise ctx.unsupported(f"Gather indices of dtype {ctx.info(idx).dtype.value} computed from the model's "
                              "inputs are not supported (integer indices, or compile-time constant ones, are)")
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"Gather of {ctx.info(x).dtype.value} data with indices computed from the model's "
                              "inputs is not supported (float32 data is)")
    shape, ishape = ctx.shape(x), ctx.shape(idx)
    rank = len(shape)
    front = permute(ctx, x, (axis,) + tuple(d for d in range(rank) if d != axis))
    rest = tuple(d for k, d in enumerate(shape) if k != axis)
    table = front if rank == 2 and axis == 0 else ctx.emit1("reshape", [front], {"shape": (shape[axis], numel(rest))})
    y = ctx.emit1("embedding", [table, idx])
    if rest != (numel(rest),):
        y = ctx.emit1("reshape", [y], {"shape": ishape + rest})
    if axis == 0:
        return y
    k = len(ishape)
    perm = tuple(range(k, k + axis)) + tuple(range(k)) + tuple(range(k + axis, k + rank - 1))
    return permute(ctx, y, perm)


@converts_onnx("Expand")
def _from_onnx_expand(ctx, node):
    """The output shape broadcasts x's shape with the (constant) shape input both ways, as NumPy does."""
    x = ctx.input(0)
    want = tuple(int(v) for v in np.asarray(ctx.required_const(1, "shape")).reshape(-1))
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(ctx.shape(x), want))
    except ValueError:
        raise ctx.unsupported(f"shape {list(want)} does not broadcast with the input's {list(ctx.shape(x))}") from None
    return expand(ctx, x, out)


@converts_onnx("Tile")
def _from_onnx_tile(ctx, node):
    x = ctx.input(0)
    reps = tuple(int(v) for v in np.asarray(ctx.required_const(1, "repeats")).reshape(-1))
    if len(reps) != _rank(ctx, x) or any(r < 1 for r in reps):
        raise ctx.unsupported(f"repeats {list(reps)} must be positive and one per dim of {list(ctx.shape(x))}")
    if all(r == 1 for r in reps):
        return x
    return ctx.emit1("repeat", [x], {"repeats": reps})


def _blocks_rearranged(ctx, x: str, split: tuple, perm: tuple, out: tuple) -> str:
    """reshape -> permute -> reshape: the general form of DepthToSpace / SpaceToDepth."""
    y = ctx.emit1("reshape", [x], {"shape": split})
    return ctx.emit1("reshape", [permute(ctx, y, perm)], {"shape": out})


@converts_onnx("DepthToSpace")
def _from_onnx_depth_to_space(ctx, node):
    """CRD is PyTorch's pixel_shuffle; DCR (the default) takes the blocks from the outer channel bits."""
    x = ctx.input(0)
    b = int(ctx.attr("blocksize"))
    mode = str(ctx.attr("mode", "DCR"))
    if len(ctx.shape(x)) != 4 or b < 1 or ctx.shape(x)[1] % (b * b):
        raise ctx.unsupported(f"blocksize {b} does not fit input {list(ctx.shape(x))} (N, C, H, W)")
    n, c, h, w = ctx.shape(x)
    co = c // (b * b)
    if mode == "CRD":
        return ctx.emit1("pixel_shuffle", [x], {"factor": b})
    if mode != "DCR":
        raise ctx.unsupported(f"attribute mode={mode!r} is not supported (DCR and CRD are)")
    return _blocks_rearranged(ctx, x, (n, b, b, co, h, w), (0, 3, 4, 1, 5, 2), (n, co, h * b, w * b))


@converts_onnx("SpaceToDepth")
def _from_onnx_space_to_depth(ctx, node):
    """Output channel (bh * b + bw) * C + c: blocks outermost, unlike PyTorch's pixel_unshuffle."""
    x = ctx.input(0)
    b = int(ctx.attr("blocksize"))
    if len(ctx.shape(x)) != 4 or b < 1 or ctx.shape(x)[2] % b or ctx.shape(x)[3] % b:
        raise ctx.unsupported(f"blocksize {b} does not divide the height and width of {list(ctx.shape(x))}")
    n, c, h, w = ctx.shape(x)
    return _blocks_rearranged(ctx, x, (n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4), (n, c * b * b, h // b, w // b))
