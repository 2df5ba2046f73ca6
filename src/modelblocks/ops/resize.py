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
aten.reflection_pad1d/2d/3d, aten.replication_pad1d/2d/3d, aten._pad_circular.
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
    on (axes from 18 on). Modes: constant, reflect, edge."""
    x = ctx.input(0)
    rank = len(ctx.shape(x))
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(ctx.attr("mode", "constant"))
    if mode is None:
        raise ctx.unsupported(f"Pad mode {ctx.attr('mode')!r} is not supported (constant, reflect, edge are)")
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
