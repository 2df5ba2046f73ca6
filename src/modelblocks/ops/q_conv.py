"""q_conv: int8 1-D/2-D convolution with stride, per-side padding, dilation and groups (depthwise
included), NCHW (TFLite int8 / CMSIS-NN arm_convolve_s8 and arm_depthwise_conv_s8), and the int8
lowering rule of the float `conv` op.

Inputs: x int8 [N, Cin, (H,) W] (per tensor, zero point `in_zp`), w int8 [Cout, Cin/groups, (kh,) kw]
(symmetric per output channel), bias int32 [Cout] (zeros when the float conv has none), mult int32
[Cout] and shift int8 [Cout] (M[o] = s_in * s_w[o] / s_out). Attributes as the float conv
(`stride`, `dilation` per spatial dim, `padding` per side (begin..., end...), `groups`) plus
`in_zp`, `out_zp`, `act_min`, `act_max`.

    acc[n, o, p] = bias[o] + sum_{c in group(o), k} (x[n, c, p * s + k * d - pad] - in_zp) * w[o, c, k]
    y = clamp(requantize(acc, mult[o], shift[o]) + out_zp, act_min, act_max)

Padding positions contribute nothing (the same as padding x with in_zp, which is real zero).
A 1-D conv runs as 2-D with H = 1, like the float kernel. Depthwise (groups == Cin, one input
channel per group) takes a dedicated C kernel without the channel loop.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from ..quant.lowering import lowers
from .conv import ConvDims, _conv_out_size, conv_dims, dims_text
from .q_linear import (Q_ATTRS, XW_MAX, acc_bound_ok, bias_bound, check_q_attrs, check_tables, finish,
                       fast_requant_ok, gemm_stream, lower_weighted, padded8)
from .registry import Attr, OpDef, Variant, numel, register


def _infer(node, ins):
    x, w = ins[0], ins[1]
    a = node.attrs
    check_q_attrs(node, ("in_zp", "out_zp"))
    nsp = len(a["stride"])
    if nsp not in (1, 2):
        raise ValueError(f"q_conv supports 1-D and 2-D only, got {nsp} spatial dimensions")
    if x.dtype != DType.int8 or w.dtype != DType.int8:
        raise ValueError(f"q_conv takes int8 x and w, got {x.dtype.value} and {w.dtype.value}")
    if len(x.shape) != nsp + 2 or len(w.shape) != nsp + 2:
        raise ValueError(f"q_conv {nsp}-D needs input and weight of rank {nsp + 2}, got {list(x.shape)} "
                         f"and {list(w.shape)}")
    if len(a["dilation"]) != nsp or len(a["padding"]) != 2 * nsp:
        raise ValueError("stride and dilation need one value per spatial dimension, padding two")
    if any(s < 1 for s in a["stride"]) or any(d < 1 for d in a["dilation"]) or any(p < 0 for p in a["padding"]):
        raise ValueError("stride and dilation must be >= 1, padding >= 0")
    g = a["groups"]
    cin, cout = x.shape[1], w.shape[0]
    if g < 1 or cin % g or cout % g or w.shape[1] * g != cin:
        raise ValueError(f"input channels {cin}, weight {list(w.shape)} and groups {g} do not agree")
    check_tables(ins[2:], cout)
    if not acc_bound_ok(numel(w.shape[1:]), XW_MAX, bias_bound(ins[2])):
        raise ValueError(f"{numel(w.shape[1:])} terms per output may overflow the int32 accumulator")
    out = []
    for i in range(nsp):
        o = _conv_out_size(x.shape[2 + i], w.shape[2 + i], a["stride"][i], a["padding"][i], a["padding"][nsp + i],
                           a["dilation"][i])
        if o < 1:
            raise ValueError(f"the kernel does not fit the padded input {list(x.shape)} in dimension {2 + i}")
        out.append(o)
    return [((x.shape[0], cout) + tuple(out), DType.int8)]


def _reference(node, args):
    x, w, bias, mult, shift = args
    a = node.attrs
    one_d = x.ndim == 3
    xs = x.astype(np.int64) - a["in_zp"]
    ws = w.astype(np.int64)
    pads, stride, dil = a["padding"], a["stride"], a["dilation"]
    if one_d:
        xs, ws = xs[:, :, None, :], ws[:, :, None, :]
        pads, stride, dil = (0, pads[0], 0, pads[1]), (1, stride[0]), (1, dil[0])
    (sh, sw), (dh, dw) = stride, dil
    g = a["groups"]
    n, _, _, _ = xs.shape
    cout, cig, kh, kw = ws.shape
    cog = cout // g
    xp = np.pad(xs, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))  # zeros == in_zp before the shift
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    acc = np.zeros((n, cout, oh, ow), dtype=np.int64)
    for gi in range(g):
        xg = xp[:, gi * cig:(gi + 1) * cig]
        wg = ws[gi * cog:(gi + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                win = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                acc[:, gi * cog:(gi + 1) * cog] += np.einsum("nchw,oc->nohw", win, wg[:, :, i, j])
    acc += bias.astype(np.int64).reshape(1, -1, 1, 1)
    col = (1, -1, 1, 1)
    y = finish(acc, mult.astype(np.int64).reshape(col), shift.astype(np.int64).reshape(col), a["out_zp"],
               a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX))
    return [y[:, :, 0, :] if one_d else y]


def _is_depthwise(xs, ws, groups) -> bool:
    return groups == xs[1] and ws[1] == 1


def _emit(ctx, node):
    x, w, bias, mult, shift = node.inputs
    a = node.attrs
    d = conv_dims(ctx.shape(x), ctx.shape(w), ctx.shape(node.outputs[0]), a)
    ptrs = (f"{ctx.ptr(x)}, {ctx.ptr(w)}, {ctx.ptr(bias)}, {ctx.ptr(mult)}, {ctx.ptr(shift)}, "
            f"{ctx.ptr(node.outputs[0])}")
    if _is_depthwise(ctx.shape(x), ctx.shape(w), a["groups"]):
        return f"mb_q_depthwise_conv_s8({ptrs}, {dims_text(d)}, {_tail(ctx, a)});"
    return f"mb_q_conv_s8({ptrs}, {dims_text(d)}, {a['groups']}, {_tail(ctx, a)});"


def _tail(ctx, a) -> str:
    return (f"{ctx.i(a['in_zp'])}, {ctx.i(a['out_zp'])}, {ctx.i(a.get('act_min', arith.QMIN))}, "
            f"{ctx.i(a.get('act_max', arith.QMAX))}")


def _macs(node, ins, outs):
    return numel(outs[0].shape) * numel(ins[1].shape[1:])


# -- optimised kernels (mb_q_conv_opt.c, mb_q_depthwise_opt.c) ----------------------------------------------------------

DW_MAX_PAIRS = 66  # MB_Q_DW_MAX_PAIRS in mb_q_depthwise_opt.h
ROWS_MAX_SEGMENTS = 64  # MB_Q_ROWS_MAX_SEGMENTS in mb_q_conv_opt.h


def _geometry(node, ins, outs) -> ConvDims:
    return conv_dims(ins[0].shape, ins[1].shape, outs[0].shape, node.attrs)


def _ring(node, ins, outs, channels: int) -> int:
    """int16 elements of the rows kernel's ring of input rows: R rows (R + stride when the output width
    is odd, as position pairs then span two output rows) of padded width * channels."""
    d = _geometry(node, ins, outs)
    rows = (d.kh - 1) * d.dh + 1 + (d.sh if d.ow % 2 else 0)
    return rows * ((d.ow - 1) * d.sw + (d.kw - 1) * d.dw + 1) * channels


def conv_weight_matrix(w: np.ndarray, dw: int) -> np.ndarray:
    """[cout, cin, (kh,) kw] int8 weights as [cout, K] in the k order of the rows kernel: kernel rows
    i, within a row the taps j and channels c (c fastest; one segment per row when dw == 1, per tap
    otherwise), each segment padded with zeros to a multiple of 4."""
    w4 = w.reshape(w.shape[0], w.shape[1], -1, w.shape[-1])  # 1-D: kh = 1
    cout, cin, kh, kw = w4.shape
    hwc = w4.transpose(0, 2, 3, 1)  # [cout, kh, kw, cin]
    segs = hwc.reshape(cout, kh, kw * cin) if dw == 1 else hwc.reshape(cout, kh * kw, cin)
    seg_len = segs.shape[-1]
    padded = np.zeros(segs.shape[:2] + (-(-seg_len // 4) * 4,), dtype=w.dtype)
    padded[..., :seg_len] = segs
    return padded.reshape(cout, -1)


def _plane_scratch(node, ins, outs):
    """int16 bytes of one input channel's padded plane for the depthwise kernel, plus one int16 to
    word-align it: `mb_dw_plane_width` columns (mb_q_depthwise_opt.c)."""
    d = _geometry(node, ins, outs)
    wp = max((d.ow - 1) * d.sw + (d.kw - 1) * d.dw + 2, (d.ow + 2) * d.sw + 2)
    return 2 * (((d.oh - 1) * d.sh + (d.kh - 1) * d.dh + 1) * (wp + wp % 2) + 1)


def _rows_scratch(node, ins, outs):
    d = _geometry(node, ins, outs)
    cin = ins[1].shape[1]
    seg_len = d.kw * cin if d.dw == 1 else cin
    k = d.kh * (1 if d.dw == 1 else d.kw) * (-(-seg_len // 4) * 4)
    pointwise = (d.kh, d.kw, d.sh, d.sw, d.ph, d.pw, d.oh, d.ow) == (1, 1, 1, 1, 0, 0, d.h, d.w)  # no ring
    ring = 0 if pointwise else -(-_ring(node, ins, outs, cin) // 4) * 4
    return 2 * (ring + 2 * padded8(k))


def _rows_applies(node, ins, outs):
    d = _geometry(node, ins, outs)
    segments = d.kh * (1 if d.dw == 1 else d.kw)
    return (node.attrs["groups"] == 1 and segments <= ROWS_MAX_SEGMENTS
            and fast_requant_ok(ins, numel(ins[1].shape[1:])))


def _emit_opt(ctx, node):
    x, w, bias, mult, shift = node.inputs
    a = node.attrs
    d = conv_dims(ctx.shape(x), ctx.shape(w), ctx.shape(node.outputs[0]), a)
    if node.kernel == "rows":
        weights = gemm_stream(ctx, w, bias, mult, shift, f"rows{d.dw == 1}_stream",
                              lambda data: conv_weight_matrix(data, d.dw))
        name = "mb_q_conv_s8_rows"
    else:
        weights = f"{ctx.ptr(w)}, {ctx.ptr(bias)}, {ctx.ptr(mult)}, {ctx.ptr(shift)}"
        name = "mb_q_depthwise_conv_s8_rows"
    return (f"{name}({ctx.ptr(x)}, {weights}, "
            f"{ctx.ptr(node.outputs[0])}, {dims_text(d)}, {_tail(ctx, a)}, {ctx.scratch(node, 'int16_t')});")


def _emit_any(ctx, node):
    return _emit_opt(ctx, node) if node.kernel else _emit(ctx, node)


def _depthwise_applies(node, ins, outs):
    d = _geometry(node, ins, outs)
    return (_is_depthwise(ins[0].shape, ins[1].shape, node.attrs["groups"]) and d.kh * ((d.kw + 1) // 2) <= DW_MAX_PAIRS
            and fast_requant_ok(ins, d.kh * d.kw))


_OPT_KERNELS = ("mb_q_conv_opt", "mb_q_gemm", "mb_arm")
VARIANTS = (
    Variant("rows", applies=_rows_applies,
            kernels=_OPT_KERNELS,
            scratch_bytes=_rows_scratch,
            doc="input rows as int16 HWC, two positions' patches as columns, 2x2 SMLAD GEMM"),
    Variant("depthwise", applies=_depthwise_applies, kernels=("mb_q_depthwise_opt", "mb_q_gemm", "mb_arm"),
            scratch_bytes=_plane_scratch,
            doc="per channel: the padded plane as int16; 3x3 six outputs of a row per SMLAD step, else tap pairs"),
)

register(OpDef(
    name="q_conv", infer=_infer, reference=_reference, emit=_emit_any, kernels=("mb_q_conv", "mb_quant"),
    variants=VARIANTS,
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"), "groups": Attr("int", 1),
           **Q_ATTRS},
    num_inputs=(5, 5), macs=_macs,
    doc="int8 1-D/2-D convolution (groups, depthwise), per-channel requantization, int8 clamp",
))


@lowers("conv")
def _lower_conv(q, node) -> bool:
    x, w, b = node.inputs
    if not q.is_constant(w) or (b and not q.is_constant(b)):
        return False
    wt = q.float_tensor(w)
    nsp = len(node.attrs["stride"])
    if nsp not in (1, 2) or len(wt.shape) != nsp + 2:
        return False
    layer = lower_weighted(q, node, numel(wt.shape[1:]))
    if layer is None:
        return False
    a = node.attrs
    q.emit("q_conv", layer.inputs, [layer.output],
           {"stride": tuple(a["stride"]), "padding": tuple(a["padding"]), "dilation": tuple(a["dilation"]),
            "groups": int(a.get("groups", 1)), **layer.attrs})
    return True
