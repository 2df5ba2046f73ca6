"""upsample (nearest, nearest-exact, linear / bilinear) and pad (constant, reflect, replicate, circular).

upsample: input (N, C, L) or (N, C, H, W); attributes `mode` ("nearest", "nearest_exact",
"linear"), `align_corners` (linear only), `size` (the output's spatial size) and `scales` (the
user's scale factor per spatial dimension, 0.0 when the size was given instead). PyTorch maps
output index i to a source position with the scale factor when one was given (1 / scale, not
In / Out), in float32. That mapping is computed here once per axis at compile time
(`axis_tables`) and the C kernel only gathers with the resulting index / weight tables, so the
C picks exactly the source pixels PyTorch picks.

pad: any rank; `pads` holds (begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}) over all
dimensions (PyTorch's F.pad lists pairs from the last dimension backwards; the converter
reorders). `mode` is constant (fill with `value`), reflect (mirror without repeating the edge),
replicate (repeat the edge) or circular (wrap around). Negative pads crop, in every mode but
circular (PyTorch crops before wrapping there, which this gather does not reproduce).

Sources: aten.upsample_nearest1d/2d, aten._upsample_nearest_exact1d/2d, aten.upsample_linear1d,
aten.upsample_bilinear2d (.vec and .default), aten.pad, aten.constant_pad_nd,
aten.reflection_pad1d/2d/3d, aten.replication_pad1d/2d/3d, aten._pad_circular; ONNX Pad, and ONNX
Resize / Upsample wherever an upsample node's tables equal ONNX's mapping (checked per axis at
compile time; other coordinate_transformation_mode / nearest_mode combinations are refused).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, converts_onnx, numel, register

MODES = ("nearest", "nearest_exact", "linear")
PAD_MODES = ("constant", "reflect", "replicate", "circular")


# -- upsample -------------------------------------------------------------------------------------

def axis_tables(mode: str, n_in: int, n_out: int, align_corners: bool, scale: float, shortcut: bool = False):
    """Per output index: (index0, index1, weight0, weight1), PyTorch's CPU rules in float32.

    `scale` is the user's scale factor for this axis or 0.0 if the output size was given.
    `shortcut`: PyTorch's 2-D nearest kernel ignores the scale when Out == In (copy) or
    Out == 2 * In (index i // 2); its 1-D kernel does not (checked against torch 2.x by sweeps
    over sizes and scales in tests/ops/test_cnn_ops.py)."""
    f32 = np.float32
    idx = np.arange(n_out)
    if mode in ("nearest", "nearest_exact"):
        ratio = f32(1.0 / scale) if scale > 0 else f32(n_in) / f32(n_out)
        if shortcut and mode == "nearest" and n_out == n_in:
            i0 = idx
        elif shortcut and mode == "nearest" and n_out == 2 * n_in:
            i0 = idx >> 1
        else:
            offset = f32(0.5) if mode == "nearest_exact" else f32(0.0)
            src = np.floor((idx.astype(f32) + offset) * ratio).astype(np.int64)
            i0 = np.minimum(src, n_in - 1)
        return i0, i0, np.ones(n_out, f32), np.zeros(n_out, f32)
    # linear
    if n_out == n_in:
        return idx, idx, np.ones(n_out, f32), np.zeros(n_out, f32)
    if align_corners:
        ratio = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0.0)
        real = ratio * idx.astype(f32)
    else:
        ratio = f32(1.0 / scale) if scale > 0 else f32(n_in) / f32(n_out)
        real = np.maximum(ratio * (idx.astype(f32) + f32(0.5)) - f32(0.5), f32(0.0))
    i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
    lam1 = np.clip(real - i0.astype(f32), f32(0.0), f32(1.0)).astype(f32)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (f32(1.0) - lam1).astype(f32), lam1


def _up_infer(node, ins):
    x = ins[0]
    a = node.attrs
    nsp = len(a["size"])
    if x.dtype != DType.float32:
        raise ValueError(f"upsample takes float32, got {x.dtype.value}")
    if a["mode"] not in MODES:
        raise ValueError(f"upsample mode {a['mode']!r} is not one of {MODES}")
    if nsp not in (1, 2) or len(x.shape) != nsp + 2 or len(a["scales"]) != nsp:
        raise ValueError(f"upsample {nsp}-D needs input rank {nsp + 2} and {nsp} scales, got {list(x.shape)}")
    if any(s < 1 for s in a["size"]):
        raise ValueError(f"output size {list(a['size'])} must be positive")
    return [(x.shape[:2] + tuple(a["size"]), DType.float32)]


def _tables_2d(node, shape):
    """Row and column tables for an input of `shape`; a 1-D input has one row."""
    a = node.attrs
    nsp = len(a["size"])
    ins = shape[2:]
    cols = axis_tables(a["mode"], ins[-1], a["size"][-1], a["align_corners"], a["scales"][-1], nsp == 2)
    if nsp == 1:
        rows = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.float32), np.zeros(1, np.float32))
    else:
        rows = axis_tables(a["mode"], ins[0], a["size"][0], a["align_corners"], a["scales"][0], True)
    return rows, cols


def _up_reference(node, args):
    x = args[0]
    (r0, r1, rw0, rw1), (c0, c1, cw0, cw1) = _tables_2d(node, x.shape)
    nsp = len(node.attrs["size"])
    xp = x.astype(np.float64).reshape(x.shape[0] * x.shape[1], 1 if nsp == 1 else x.shape[2], x.shape[-1])
    rw0, rw1 = rw0.astype(np.float64)[:, None], rw1.astype(np.float64)[:, None]
    cw0, cw1 = cw0.astype(np.float64)[None, :], cw1.astype(np.float64)[None, :]
    top = xp[:, r0][:, :, c0] * cw0 + xp[:, r0][:, :, c1] * cw1
    bottom = xp[:, r1][:, :, c0] * cw0 + xp[:, r1][:, :, c1] * cw1
    y = top * rw0 + bottom * rw1
    return [y.reshape(x.shape[:2] + tuple(node.attrs["size"])).astype(np.float32)]


def _up_emit(ctx, node):
    x, y = node.inputs[0], node.outputs[0]
    xs = ctx.shape(x)
    (r0, r1, rw0, rw1), (c0, c1, cw0, cw1) = _tables_2d(node, xs)
    h = 1 if len(xs) == 3 else xs[2]
    planes = xs[0] * xs[1]
    if node.attrs["mode"] == "linear":
        rows = ctx.ints(np.concatenate([r0, r1]), "up_rows")
        cols = ctx.ints(np.concatenate([c0, c1]), "up_cols")
        rw = ctx.floats(np.concatenate([rw0, rw1]), "up_row_w")
        cw = ctx.floats(np.concatenate([cw0, cw1]), "up_col_w")
        return (f"mb_upsample_linear_f32({ctx.ptr(x)}, {ctx.ptr(y)}, {planes}, {h}, {xs[-1]}, {len(r0)}, "
                f"{len(c0)}, {rows}, {cols}, {rw}, {cw});")
    return (f"mb_upsample_nearest_f32({ctx.ptr(x)}, {ctx.ptr(y)}, {planes}, {h}, {xs[-1]}, {len(r0)}, "
            f"{len(c0)}, {ctx.ints(r0, 'up_rows')}, {ctx.ints(c0, 'up_cols')});")


def _up_macs(node, ins, outs):
    return numel(outs[0].shape) * (4 if node.attrs["mode"] == "linear" else 0)


register(OpDef(
    name="upsample", infer=_up_infer, reference=_up_reference, emit=_up_emit, kernels=("mb_resize",),
    attrs={"mode": Attr("str"), "align_corners": Attr("bool", False), "size": Attr("ints"),
           "scales": Attr("floats")},
    macs=_up_macs, doc="nearest / nearest-exact / (bi)linear resize of the last 1 or 2 dimensions",
))


def _scales(values, nsp):
    if values is None:
        return (0.0,) * nsp
    vals = tuple(0.0 if v is None else float(v) for v in (values if isinstance(values, (list, tuple)) else [values]))
    return vals * nsp if len(vals) == 1 else vals


@converts("aten.upsample_nearest1d.vec", "aten.upsample_nearest2d.vec", "aten._upsample_nearest_exact1d.vec",
          "aten._upsample_nearest_exact2d.vec", "aten.upsample_linear1d.vec", "aten.upsample_bilinear2d.vec",
          "aten.upsample_nearest1d.default", "aten.upsample_nearest2d.default",
          "aten._upsample_nearest_exact1d.default", "aten._upsample_nearest_exact2d.default",
          "aten.upsample_linear1d.default", "aten.upsample_bilinear2d.default")
def _from_upsample(ctx, fx):
    a = ctx.args(fx)
    target = str(fx.target)
    nsp = 1 if "1d" in target else 2
    mode = "nearest_exact" if "exact" in target else ("nearest" if "nearest" in target else "linear")
    x = ctx.tensor(a.get("input", a.get("self")))
    if len(ctx.shape(x)) != nsp + 2:
        raise ctx.unsupported(f"upsample {nsp}-D needs a batched input of rank {nsp + 2}, got {list(ctx.shape(x))}")
    if target.endswith(".vec"):
        scales = _scales(a["scale_factors"], nsp)
    elif nsp == 1:
        scales = _scales(a["scales"], 1)
    else:
        scales = _scales([a["scales_h"], a["scales_w"]], 2)
    size = tuple(int(d) for d in fx.meta["val"].shape[2:])
    align = bool(a.get("align_corners") or False)
    return ctx.emit1("upsample", [x], {"mode": mode, "align_corners": align, "size": size, "scales": scales})


# -- pad ------------------------------------------------------------------------------------------

def _pad_infer(node, ins):
    x = ins[0]
    a = node.attrs
    rank = len(x.shape)
    pads, mode = a["pads"], a["mode"]
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode {mode!r} is not one of {PAD_MODES}")
    if len(pads) != 2 * rank:
        raise ValueError(f"pads must have {2 * rank} values for rank {rank}, got {len(pads)}")
    out = []
    for d in range(rank):
        b, e, n = pads[d], pads[rank + d], x.shape[d]
        if mode != "constant" and (b or e):
            if mode == "circular" and (b < 0 or e < 0):
                raise ValueError("negative circular padding is not supported")
            if mode == "reflect" and (b >= n or e >= n):
                raise ValueError(f"reflect padding ({b}, {e}) must be smaller than the dimension size {n}")
            if mode == "circular" and (b > n or e > n):
                raise ValueError(f"circular padding ({b}, {e}) must not exceed the dimension size {n}")
        o = n + b + e
        if o < 1:
            raise ValueError(f"padding ({b}, {e}) leaves nothing of dimension {d} (size {n})")
        out.append(o)
    return [(tuple(out), x.dtype)]


def _source_index(mode, i, n):
    """Map padded coordinates i (may be out of range) to input coordinates; -1 = fill value."""
    if mode == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return np.mod(i, n)
    r = np.abs(i)  # reflect around 0 and n - 1
    return np.where(r >= n, 2 * (n - 1) - r, r)


def _pad_reference(node, args):
    x = args[0]
    a = node.attrs
    rank = x.ndim
    y = x
    valid = np.ones((), dtype=bool)
    for d in range(rank):
        b, e, n = a["pads"][d], a["pads"][rank + d], x.shape[d]
        src = _source_index(a["mode"], np.arange(-b, n + e), n)
        y = np.take(y, np.maximum(src, 0), axis=d)
        shape = [1] * rank
        shape[d] = len(src)
        valid = valid & (src >= 0).reshape(shape)
    fill = np.array(a["value"], dtype=np.float64).astype(x.dtype)
    return [np.where(valid, y, fill).astype(x.dtype)]


def _pad_emit(ctx, node):
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    if ctx.tensor(x).dtype != DType.float32:
        raise ValueError("pad in C supports float32 tensors only")
    xs, ys = ctx.shape(x), ctx.shape(y)
    rank = len(xs)
    mode = PAD_MODES.index(a["mode"])
    return (f"mb_pad_f32({ctx.ptr(x)}, {ctx.ptr(y)}, {rank}, {ctx.ints(xs, 'pad_in')}, {ctx.ints(ys, 'pad_out')}, "
            f"{ctx.ints(a['pads'][:rank], 'pad_begin')}, {mode}, {ctx.f(a['value'])});")


register(OpDef(
    name="pad", infer=_pad_infer, reference=_pad_reference, emit=_pad_emit, kernels=("mb_resize",),
    attrs={"pads": Attr("ints"), "mode": Attr("str", "constant"), "value": Attr("float", 0.0)},
    doc="pad (or crop, constant mode) every dimension: constant / reflect / replicate / circular",
))


def _torch_pads_to_ir(ctx, pad, rank):
    """F.pad order (last dim begin, last dim end, second-to-last begin, ...) -> (begins, ends)."""
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise ctx.unsupported(f"pad {pad} does not fit a tensor of rank {rank}")
    begins, ends = [0] * rank, [0] * rank
    for k in range(len(pad) // 2):
        begins[rank - 1 - k], ends[rank - 1 - k] = pad[2 * k], pad[2 * k + 1]
    return tuple(begins) + tuple(ends)


def _emit_pad(ctx, x_value, pad, mode, value=0.0):
    x = ctx.tensor(x_value)
    shape = ctx.shape(x)
    if mode not in PAD_MODES:
        raise ctx.unsupported(f"pad mode {mode!r} is not supported (supported: {', '.join(PAD_MODES)})")
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"pad of {ctx.info(x).dtype.value} tensors is not supported (float32 is)")
    pads = _torch_pads_to_ir(ctx, pad, len(shape))
    if mode != "constant" and len(pad) // 2 > 3:
        raise ctx.unsupported(f"{mode} padding of more than 3 dimensions is not supported by PyTorch")
    if mode == "circular" and any(p < 0 for p in pads):
        # PyTorch crops first and wraps around the cropped tensor: not this kernel's mapping
        raise ctx.unsupported("negative circular padding (cropping) is not supported")
    return ctx.emit1("pad", [x], {"pads": pads, "mode": mode, "value": float(value)})


@converts("aten.pad.default")
def _from_pad(ctx, fx):
    a = ctx.args(fx)
    value = a.get("value")
    return _emit_pad(ctx, a["self"], a["pad"], a["mode"], 0.0 if value is None else value)


@converts("aten.constant_pad_nd.default")
def _from_constant_pad(ctx, fx):
    a = ctx.args(fx)
    return _emit_pad(ctx, a["self"], a["pad"], "constant", a["value"])


@converts("aten.reflection_pad1d.default", "aten.reflection_pad2d.default", "aten.reflection_pad3d.default",
          "aten.replication_pad1d.default", "aten.replication_pad2d.default", "aten.replication_pad3d.default",
          "aten._pad_circular.default")
def _from_mode_pad(ctx, fx):
    a = ctx.args(fx)
    target = str(fx.target)
    mode = "reflect" if "reflection" in target else ("replicate" if "replication" in target else "circular")
    return _emit_pad(ctx, a["self"], a.get("padding", a.get("pad")), mode)


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Pad")
def _from_onnx_pad(ctx, node):
    """pads (begins then ends, the IR's order) and value: attributes before opset 11, inputs from 11
    on (axes from 18 on). Modes: constant, reflect, edge, wrap (opset 19; the dynamo exporter writes
    circular padding as it)."""
    x = ctx.input(0)
    rank = len(ctx.shape(x))
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
            "wrap": "circular"}.get(ctx.attr("mode", "constant"))
    if mode is None:
        raise ctx.unsupported(f"Pad mode {ctx.attr('mode')!r} is not supported (constant, reflect, edge, wrap are)")
    if ctx.opset >= 11:
        pads = [int(v) for v in np.asarray(ctx.required_const(1, "pads")).reshape(-1)]
        value = ctx.const(2)
        if ctx.has_input(2) and value is None:
            raise ctx.unsupported("constant_value computed from the model's inputs is not supported")
        value = 0.0 if value is None or np.asarray(value).size == 0 else float(np.asarray(value).reshape(-1)[0])
        axes = ctx.ints_operand("axes", 3, 18)
    else:
        pads = [int(v) for v in ctx.attr("pads" if ctx.opset >= 2 else "paddings")]
        value, axes = float(ctx.attr("value", 0.0)), None
    if axes is not None:
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            a = a + rank if a < 0 else a
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    if len(pads) != 2 * rank:
        raise ctx.unsupported(f"pads {pads} does not have {2 * rank} values")
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"Pad of {ctx.info(x).dtype.value} tensors is not supported (float32 is)")
    if not any(pads):
        return x
    return ctx.emit1("pad", [x], {"pads": tuple(pads), "mode": mode, "value": value})


# -- ONNX Resize / Upsample: the IR's upsample when its index tables give exactly ONNX's mapping --------

_ONNX_COORDS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
_ONNX_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _onnx_source_coords(coords: str, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """ONNX's source coordinate of each output index along one axis, in float32 as onnxruntime computes it."""
    f32 = np.float32
    i, s = np.arange(n_out, dtype=f32), f32(scale)
    if coords == "half_pixel" or (coords == "pytorch_half_pixel" and n_out > 1):
        return (i + f32(0.5)) / s - f32(0.5)
    if coords == "pytorch_half_pixel":
        return np.zeros(n_out, f32)
    if coords == "align_corners":
        return np.zeros(n_out, f32) if n_out == 1 else i * (f32(n_in - 1) / f32(n_out - 1))
    if coords == "tf_half_pixel_for_nn":
        return (i + f32(0.5)) / s
    return i / s  # asymmetric


def _onnx_axis_matrix(mode: str, coords: str, nearest: str, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """[n_out, n_in] interpolation matrix of ONNX Resize along one axis."""
    x = _onnx_source_coords(coords, n_in, n_out, scale).astype(np.float64)
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if mode == "nearest":
        pick = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}[nearest]
        m[rows, np.clip(pick(x), 0, n_in - 1).astype(np.int64)] = 1.0
        return m
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = x - i0
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


def _ir_axis_matrices(attrs: dict, shape) -> list[np.ndarray]:
    """The [out, in] matrix of each resized axis for an upsample node with `attrs` on an input of `shape`."""
    from ..ir.graph import Node  # noqa: PLC0415

    rows, cols = _tables_2d(Node("probe", "upsample", ("x",), ("y",), attrs), shape)
    mats = []
    for (i0, i1, w0, w1), n_in in ((rows, shape[2] if len(shape) == 4 else 1), (cols, shape[-1])):
        m = np.zeros((len(i0), n_in))
        np.add.at(m, (np.arange(len(i0)), i0), w0.astype(np.float64))
        np.add.at(m, (np.arange(len(i0)), i1), w1.astype(np.float64))
        mats.append(m)
    return mats[1:] if len(shape) == 3 else mats


def _onnx_resize(ctx, x: str, scales, sizes, mode: str, coords: str, nearest: str) -> str:
    """Resize x's spatial axes (all others must keep their size) with ONNX's semantics, as an upsample
    node whose tables reproduce ONNX's mapping (to 1e-6 for linear weights), else UnsupportedOpError."""
    shape = ctx.shape(x)
    rank = len(shape)
    if ctx.info(x).dtype != DType.float32:
        raise ctx.unsupported(f"resizing a {ctx.info(x).dtype.value} tensor is not supported (float32 is)")
    if sizes is not None:
        out = tuple(int(v) for v in sizes)
        scale = tuple(float(np.float32(o) / np.float32(n)) for o, n in zip(out, shape))
    else:
        scale = tuple(float(v) for v in scales)
        out = tuple(int(np.floor(np.float32(n) * np.float32(s))) for n, s in zip(shape, scale))
    if len(out) != rank:
        raise ctx.unsupported(f"{len(out)} scales/sizes for an input of rank {rank}")
    if out[:2] != shape[:2] or rank not in (3, 4):
        raise ctx.unsupported(f"resizing {list(shape)} to {list(out)} is not supported: only the last 1 or 2 "
                              "dimensions of an (N, C, L) or (N, C, H, W) input can be resized")
    if out == shape and (mode == "nearest" or coords in ("half_pixel", "pytorch_half_pixel", "align_corners")):
        return x  # every transform maps each index onto itself
    want = [_onnx_axis_matrix(mode, coords, nearest, n, o, s) for n, o, s in zip(shape[2:], out[2:], scale[2:])]
    ir_modes = ("nearest", "nearest_exact") if mode == "nearest" else ("linear",)
    for ir_mode in ir_modes:
        for align in ((False, True) if ir_mode == "linear" else (False,)):
            for ir_scales in (scale[2:], (0.0,) * (rank - 2)):
                attrs = {"mode": ir_mode, "align_corners": align, "size": out[2:], "scales": tuple(ir_scales)}
                got = _ir_axis_matrices(attrs, shape)
                if all(g.shape == w.shape and np.allclose(g, w, rtol=0, atol=1e-6) for g, w in zip(got, want)):
                    return ctx.emit1("upsample", [x], attrs)
    detail = f", nearest_mode={nearest!r}" if mode == "nearest" else ""
    raise ctx.unsupported(f"mode={mode!r} with coordinate_transformation_mode={coords!r}{detail} from "
                          f"{list(shape)} to {list(out)} picks source pixels the IR's upsample (PyTorch's "
                          "nearest / nearest-exact / bilinear rules) cannot reproduce exactly")


@converts_onnx("Resize")
def _from_onnx_resize(ctx, node):
    """Resize-10: (X, scales), asymmetric; 11+: (X, roi, scales, sizes) with coordinate_transformation_mode
    and nearest_mode; 18+: axes, antialias, keep_aspect_ratio_policy."""
    x = ctx.input(0)
    rank = len(ctx.shape(x))
    mode = str(ctx.attr("mode", "nearest"))
    if mode not in ("nearest", "linear"):
        raise ctx.unsupported(f"attribute mode={mode!r} is not supported (nearest and linear are)")
    if ctx.opset < 11:
        scales, sizes = ctx.required_const(1, "scales"), None
        coords, nearest = "asymmetric", "floor"
    else:
        coords = str(ctx.attr("coordinate_transformation_mode", "half_pixel"))
        nearest = str(ctx.attr("nearest_mode", "round_prefer_floor"))
        scales = ctx.required_const(2, "scales") if ctx.has_input(2) else None
        sizes = ctx.required_const(3, "sizes") if ctx.has_input(3) else None
        if scales is not None and np.asarray(scales).size == 0:
            scales = None
        if (scales is None) == (sizes is None or np.asarray(sizes).size == 0):
            raise ctx.unsupported("exactly one of the inputs scales and sizes must be given")
    if coords not in _ONNX_COORDS:
        raise ctx.unsupported(f"attribute coordinate_transformation_mode={coords!r} is not supported "
                              f"({', '.join(_ONNX_COORDS)} are)")
    if nearest not in _ONNX_NEAREST:
        raise ctx.unsupported(f"attribute nearest_mode={nearest!r} is not supported")
    if int(ctx.attr("antialias", 0)):
        raise ctx.unsupported("attribute antialias=1 is not supported")
    policy = str(ctx.attr("keep_aspect_ratio_policy", "stretch"))
    if policy != "stretch" and sizes is not None:
        raise ctx.unsupported(f"attribute keep_aspect_ratio_policy={policy!r} is not supported (stretch is)")
    axes = ctx.attr("axes", None)
    full_scales = None if scales is None else [float(v) for v in np.asarray(scales).reshape(-1)]
    full_sizes = None if sizes is None else [int(v) for v in np.asarray(sizes).reshape(-1)]
    if axes is not None:
        shape = ctx.shape(x)
        axes = [int(a) % rank for a in axes]
        if full_scales is not None:
            full_scales = [full_scales[axes.index(d)] if d in axes else 1.0 for d in range(rank)]
        if full_sizes is not None:
            full_sizes = [full_sizes[axes.index(d)] if d in axes else shape[d] for d in range(rank)]
    return _onnx_resize(ctx, x, full_scales, full_sizes, mode, coords, nearest)


@converts_onnx("Upsample")
def _from_onnx_upsample(ctx, node):
    """Upsample (opset 7-9, deprecated since 10): scales as attribute (7) or input (9), asymmetric
    coordinates, nearest picks floor."""
    mode = str(ctx.attr("mode", "nearest"))
    if mode not in ("nearest", "linear", "bilinear"):
        raise ctx.unsupported(f"attribute mode={mode!r} is not supported (nearest and linear are)")
    scales = ctx.required_const(1, "scales") if ctx.opset >= 9 else ctx.attr("scales")
    return _onnx_resize(ctx, ctx.input(0), [float(v) for v in np.asarray(scales).reshape(-1)], None,
                        "nearest" if mode == "nearest" else "linear", "asymmetric", "floor")
