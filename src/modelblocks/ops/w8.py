"""Int8-weights ops: weights int8 (symmetric, one float scale per output channel), activations and
bias float32. `passes/quantize_weights.py` puts them in place of linear / conv / embedding nodes
whose weight is a constant (compile(..., quantize="int8-weights")): the weights take a quarter of
the flash and the math stays float, so no calibration is needed.

linear_w8: inputs (x, w, scales, b). x float32 [..., in], w int8 [out, in], scales float32 [out],
    b float32 [out] or "" (no bias). y = clamp(scales[o] * sum_i x[.., i] * w[o, i] + b[o]).
conv_w8: inputs (x, w, scales, b) and the attributes of `conv` (ops/conv.py: 1-D or 2-D, stride,
    padding per side (begin..., end...), dilation, groups); w int8 [Cout, Cin/groups, *k],
    scales float32 [Cout]. y = clamp(scales[o] * conv(x, w)[o] + b[o]).
embedding_w8: inputs (w, scales, indices). w int8 [num, dim], scales float32 [num] (one per row),
    indices int32 of any shape. y[..., :] = scales[i] * w[i, :]; an out-of-range index gives a
    row of zeros, as `embedding` does.

The kernels (mb_w8.c) accumulate x * (float)w in float and scale once per output, so the
dequantization costs no multiply per MAC. The references compute in float64 (like the float ops;
the C matches them to float rounding), except embedding_w8 whose single float32 product per
element is exact to reproduce, so C and NumPy agree bit for bit there.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .conv import _conv_out_size, _geometry_2d
from .registry import CLAMP_ATTRS, Attr, OpDef, Prop, apply_clamp, numel, register


def _check_scales(w, scales, bias, channels: int, name: str) -> None:
    if w.dtype != DType.int8:
        raise ValueError(f"{name} weight must be int8, got {w.dtype.value}")
    if scales.dtype != DType.float32 or scales.shape != (channels,):
        raise ValueError(f"{name} scales must be float32 [{channels}], got {scales.dtype.value}{list(scales.shape)}")
    if bias is not None and (bias.dtype != DType.float32 or bias.shape != (channels,)):
        raise ValueError(f"{name} bias must be float32 [{channels}], got {bias.dtype.value}{list(bias.shape)}")


def _finish(acc: np.ndarray, scales: np.ndarray, bias: np.ndarray | None, axis: int, node) -> np.ndarray:
    """float64 accumulator -> scale per output channel (along `axis`), + bias, float32, clamp."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    y = acc * scales.astype(np.float64).reshape(shape)
    if bias is not None:
        y = y + bias.astype(np.float64).reshape(shape)
    return apply_clamp(y.astype(np.float32), node)


# -- linear_w8 ------------------------------------------------------------------------------------

def _linear_infer(node, ins):
    x, w, scales, b = ins
    if x.dtype != DType.float32:
        raise ValueError(f"linear_w8 takes a float32 input, got {x.dtype.value}")
    if len(w.shape) != 2 or not x.shape or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not match weight {list(w.shape)}")
    _check_scales(w, scales, b, w.shape[0], "linear_w8")
    return [(x.shape[:-1] + (w.shape[0],), DType.float32)]


def _linear_reference(node, args):
    x, w, scales, b = args
    acc = np.matmul(x.astype(np.float64), w.astype(np.float64).T)
    return [_finish(acc, scales, b, acc.ndim - 1, node)]


def _linear_emit(ctx, node):
    x, w, scales, b = node.inputs
    out_features, in_features = ctx.shape(w)
    rows = numel(ctx.shape(x)[:-1])
    bias = ctx.ptr(b) if b else "NULL"
    return (f"mb_linear_w8_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {ctx.ptr(scales)}, {bias}, {ctx.ptr(node.outputs[0])}, "
            f"{rows}, {in_features}, {out_features}, {ctx.clamp(node)});")


register(OpDef(
    name="linear_w8", infer=_linear_infer, reference=_linear_reference, emit=_linear_emit, kernels=("mb_w8",),
    attrs=CLAMP_ATTRS, num_inputs=(4, 4), props=frozenset({Prop.FUSED_CLAMP}),
    macs=lambda node, ins, outs: numel(outs[0].shape) * ins[1].shape[1],
    doc="y = clamp(scales * (x @ W^T) + b), W int8 per output channel",
))


# -- conv_w8 --------------------------------------------------------------------------------------

def _conv_infer(node, ins):
    x, w, scales, b = ins
    a = node.attrs
    nsp = len(a["stride"])
    if nsp not in (1, 2):
        raise ValueError(f"conv_w8 supports 1-D and 2-D only, got {nsp} spatial dimensions")
    if x.dtype != DType.float32:
        raise ValueError(f"conv_w8 takes a float32 input, got {x.dtype.value}")
    if len(x.shape) != nsp + 2 or len(w.shape) != nsp + 2:
        raise ValueError(f"conv_w8 {nsp}-D needs input and weight of rank {nsp + 2}, got {list(x.shape)} "
                         f"and {list(w.shape)}")
    if len(a["dilation"]) != nsp or len(a["padding"]) != 2 * nsp:
        raise ValueError(f"needs {nsp} dilation values and {2 * nsp} padding values (begin..., end...)")
    if any(s < 1 for s in a["stride"]) or any(d < 1 for d in a["dilation"]) or any(p < 0 for p in a["padding"]):
        raise ValueError("stride and dilation must be >= 1 and padding >= 0")
    g = a["groups"]
    cin, cout = x.shape[1], w.shape[0]
    if g < 1 or cin % g or cout % g or w.shape[1] * g != cin:
        raise ValueError(f"input channels {cin}, weight {list(w.shape)} and groups {g} do not agree")
    _check_scales(w, scales, b, cout, "conv_w8")
    out = []
    for i in range(nsp):
        o = _conv_out_size(x.shape[2 + i], w.shape[2 + i], a["stride"][i], a["padding"][i], a["padding"][nsp + i],
                           a["dilation"][i])
        if o < 1:
            raise ValueError(f"the kernel does not fit the padded input {list(x.shape)} in dimension {2 + i}")
        out.append(o)
    return [((x.shape[0], cout) + tuple(out), DType.float32)]


def _conv_reference(node, args):
    x, w, scales, b = args
    a = node.attrs
    one_d = x.ndim == 3
    x, w = x.astype(np.float64), w.astype(np.float64)
    pads, stride, dil = a["padding"], a["stride"], a["dilation"]
    if one_d:  # as 2-D with H = 1, like the kernel
        x, w = x[:, :, None, :], w[:, :, None, :]
        pads, stride, dil = (0, pads[0], 0, pads[1]), (1,) + stride, (1,) + dil
    (sh, sw), (dh, dw), g = stride, dil, a["groups"]
    n = x.shape[0]
    cout, cig, kh, kw = w.shape
    cog = cout // g
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    acc = np.zeros((n, cout, oh, ow))
    for gi in range(g):
        xg = xp[:, gi * cig:(gi + 1) * cig]
        wg = w[gi * cog:(gi + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                win = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                acc[:, gi * cog:(gi + 1) * cog] += np.einsum("nchw,oc->nohw", win, wg[:, :, i, j])
    if one_d:
        acc = acc[:, :, 0, :]
    return [_finish(acc, scales, b, 1, node)]


def _conv_emit(ctx, node):
    x, w, scales, b = node.inputs
    bias = ctx.ptr(b) if b else "NULL"
    return (f"mb_conv_w8_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {ctx.ptr(scales)}, {bias}, {ctx.ptr(node.outputs[0])}, "
            f"{_geometry_2d(ctx, node.replace(inputs=(x, w, b)))}, {ctx.clamp(node)});")  # conv's (x, w, b) layout


register(OpDef(
    name="conv_w8", infer=_conv_infer, reference=_conv_reference, emit=_conv_emit, kernels=("mb_w8",),
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"), "groups": Attr("int", 1),
           **CLAMP_ATTRS},
    num_inputs=(4, 4), props=frozenset({Prop.FUSED_CLAMP}),
    macs=lambda node, ins, outs: numel(outs[0].shape) * numel(ins[1].shape[1:]),
    doc="1-D/2-D convolution with int8 weights per output channel: y = clamp(scales * conv(x, W) + b)",
))


# -- embedding_w8 ---------------------------------------------------------------------------------

def _embedding_infer(node, ins):
    w, scales, idx = ins
    if len(w.shape) != 2:
        raise ValueError(f"embedding_w8 weight must be a matrix, got {list(w.shape)}")
    _check_scales(w, scales, None, w.shape[0], "embedding_w8")
    if idx.dtype != DType.int32:
        raise ValueError(f"embedding_w8 indices must be int32, got {idx.dtype.value}")
    return [(idx.shape + (w.shape[1],), DType.float32)]


def _embedding_reference(node, args):
    w, scales, idx = args
    idx = np.asarray(idx, dtype=np.int64)
    idx = np.where((idx < 0) & (idx >= -w.shape[0]), idx + w.shape[0], idx)  # from the end, as NumPy does
    valid = (idx >= 0) & (idx < w.shape[0])
    safe = np.where(valid, idx, 0)
    if not w.shape[0]:
        return [np.zeros(idx.shape + (w.shape[1],), np.float32)]
    rows = scales.astype(np.float32)[safe][..., None] * w[safe].astype(np.float32)  # one float32 product: exact as C
    return [np.where(valid[..., None], rows, np.float32(0)).astype(np.float32)]


def _embedding_emit(ctx, node):
    w, scales, idx = node.inputs
    num, dim = ctx.shape(w)
    return (f"(void)mb_embedding_w8_f32({ctx.ptr(w)}, {ctx.ptr(scales)}, {ctx.ptr(idx)}, {ctx.ptr(node.outputs[0])}, "
            f"{numel(ctx.shape(idx))}, {num}, {dim});")


register(OpDef(
    name="embedding_w8", infer=_embedding_infer, reference=_embedding_reference, emit=_embedding_emit,
    kernels=("mb_w8",), num_inputs=(3, 3),
    doc="row lookup scales[i] * W[i] of an int8 table with a scale per row; out-of-range indices give zero rows",
))
