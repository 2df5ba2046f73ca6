"""conv and conv_transpose, 1-D (N, C, L) and 2-D (N, C, H, W), with stride, dilation and groups.

conv: inputs (x, w, b); w is [Cout, Cin/groups, *kernel] as in PyTorch; b may be "" (no bias).
Attributes hold one value per spatial dimension (1 or 2 of them): `stride`, `dilation`, and
`padding` given per side as (begin..., end...), i.e. (left, right) for 1-D and (top, left,
bottom, right) for 2-D, so that padding='same' with an even kernel (asymmetric) needs no pad op.
The kernel applies the fused clamp `act_min`/`act_max` (Prop.FUSED_CLAMP), so
`passes/fuse_activation.py` can absorb a following ReLU / ReLU6, and `passes/fold_batchnorm.py`
folds a following BatchNorm into w and b (it relies on the op name "conv" and inputs (x, w, b)).

conv_transpose: inputs (x, w, b); w is [Cin, Cout/groups, *kernel] as in PyTorch; symmetric
`padding`, `output_padding`, `stride`, `dilation`, `groups`. The C kernel gathers: each output
element sums the input positions that a scatter would have sent to it, so no scratch is needed.

The C kernels are 2-D; a 1-D op runs as H = 1 with a 1-row kernel.

Optimised conv kernels (mb_conv_f32_opt.c; passes/select_kernels.py takes the first that applies, for
layers of at least MIN_MACS): "depthwise3x3" (groups = cin = cout, 3x3, stride 1 or 2), "pointwise"
(1x1, stride 1, no padding: a GEMM on the input in place) and "im2col" (any other conv with a
constant weight: patches of 4 positions copied from a band of zero-padded input rows, then a GEMM
with 4 output channels at a time). The GEMM kernels read the weight re-laid-out offline in panels
of 4 output channels (`_weight_panels`, the same number of floats as w).

Sources: aten.conv1d/conv2d (.default and .padding, whose padding is 'same' or 'valid'),
aten.convolution / aten._convolution (transposed or not), aten.conv_transpose1d/2d; ONNX Conv and
ConvTranspose (pads with begin >= end: the crop is `padding` = begin plus a larger output_padding).
Reflect / replicate / circular padding_mode exports as a pad op before the conv (ops/resize.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ir.dtypes import DType
from .registry import CLAMP_ATTRS, Attr, OpDef, Prop, Variant, apply_clamp, converts, converts_onnx, numel, register


# -- conv ---------------------------------------------------------------------------------------

def _spatial(node) -> int:
    return len(node.attrs["stride"])


def _check_common(node, ins, name):
    x, w, b = ins
    nsp = _spatial(node)
    if nsp not in (1, 2):
        raise ValueError(f"{name} supports 1-D and 2-D only, got {nsp} spatial dimensions")
    if x.dtype != DType.float32 or w.dtype != DType.float32:
        raise ValueError(f"{name} takes float32, got {x.dtype.value} and {w.dtype.value}")
    if len(x.shape) != nsp + 2 or len(w.shape) != nsp + 2:
        raise ValueError(f"{name} {nsp}-D needs input and weight of rank {nsp + 2}, got {list(x.shape)} "
                         f"and {list(w.shape)}")
    if len(node.attrs["dilation"]) != nsp:
        raise ValueError("stride and dilation must have one value per spatial dimension")
    if any(s < 1 for s in node.attrs["stride"]) or any(d < 1 for d in node.attrs["dilation"]):
        raise ValueError("stride and dilation must be >= 1")
    if node.attrs["groups"] < 1:
        raise ValueError("groups must be >= 1")
    return x, w, b, nsp


def _conv_out_size(n, k, s, pb, pe, d):
    return (n + pb + pe - d * (k - 1) - 1) // s + 1


def _conv_infer(node, ins):
    x, w, b, nsp = _check_common(node, ins, "conv")
    a = node.attrs
    g = a["groups"]
    pads = a["padding"]
    if len(pads) != 2 * nsp or any(p < 0 for p in pads):
        raise ValueError(f"padding must be {2 * nsp} non-negative values (begin..., end...), got {pads}")
    cin, cout = x.shape[1], w.shape[0]
    if cin % g or cout % g or w.shape[1] * g != cin:
        raise ValueError(f"input channels {cin}, weight {list(w.shape)} and groups {g} do not agree")
    if b is not None and b.shape != (cout,):
        raise ValueError(f"bias {list(b.shape)} does not match {cout} output channels")
    out = []
    for i in range(nsp):
        o = _conv_out_size(x.shape[2 + i], w.shape[2 + i], a["stride"][i], pads[i], pads[nsp + i], a["dilation"][i])
        if o < 1:
            raise ValueError(f"the kernel does not fit the padded input {list(x.shape)} in dimension {2 + i}")
        out.append(o)
    return [((x.shape[0], cout) + tuple(out), DType.float32)]


def _as_2d(x, w, pads, stride, dilation):
    """View 1-D operands as 2-D with H = 1 (the C kernels do the same)."""
    if x.ndim == 3:
        return (x[:, :, None, :], w[:, :, None, :], (0, pads[0], 0, pads[1]), (1, stride[0]), (1, dilation[0]))
    return x, w, tuple(pads), tuple(stride), tuple(dilation)


def _conv_reference(node, args):
    x, w, b = args
    a = node.attrs
    one_d = x.ndim == 3
    x, w, pads, (sh, sw), (dh, dw) = _as_2d(x.astype(np.float64), w.astype(np.float64), a["padding"],
                                           a["stride"], a["dilation"])
    g = a["groups"]
    n, cin, _, _ = x.shape
    cout, cig, kh, kw = w.shape
    cog = cout // g
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, cout, oh, ow))
    for gi in range(g):
        xs_c = xp[:, gi * cig:(gi + 1) * cig]
        wg = w[gi * cog:(gi + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                win = xs_c[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, gi * cog:(gi + 1) * cog] += np.einsum("nchw,oc->nohw", win, wg[:, :, i, j])
    if b is not None:
        y += b.astype(np.float64).reshape(1, -1, 1, 1)
    if one_d:
        y = y[:, :, 0, :]
    return [apply_clamp(y.astype(np.float32), node)]


class ConvDims(NamedTuple):
    """A convolution's sizes as the C kernels take them, a 1-D op seen as 2-D of height 1; padding
    holds the leading (top, left) values: the end padding follows from the shapes."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int


def conv_dims(x_shape, w_shape, y_shape, attrs) -> ConvDims:
    nsp = len(x_shape) - 2

    def hw(values, fill):
        return (fill,) * (2 - nsp) + tuple(values[:nsp])

    return ConvDims(x_shape[0], x_shape[1], *hw(x_shape[2:], 1), y_shape[1], *hw(y_shape[2:], 1),
                    *hw(w_shape[2:], 1), *hw(attrs["stride"], 1), *hw(attrs["padding"], 0), *hw(attrs["dilation"], 1))


def dims_text(d: ConvDims) -> str:
    """The kernels' shape arguments, batch to dilation."""
    return ", ".join(str(v) for v in d)


def _geometry_2d(ctx, node) -> str:
    """The kernels' shape arguments, batch to groups."""
    x, w = node.inputs[:2]
    d = conv_dims(ctx.shape(x), ctx.shape(w), ctx.shape(node.outputs[0]), node.attrs)
    return f"{dims_text(d)}, {node.attrs['groups']}"


def _conv_emit(ctx, node):
    x, w, b = node.inputs
    bias = ctx.ptr(b) if b else "NULL"
    y = ctx.ptr(node.outputs[0])
    if node.kernel == "depthwise3x3":
        n, c, h, wd = _as_nchw(ctx.shape(x))
        _, _, oh, ow = _as_nchw(ctx.shape(node.outputs[0]))
        (sh, sw), (pt, pl) = node.attrs["stride"], node.attrs["padding"][:2]
        return (f"mb_conv_dw3x3_f32_opt({ctx.ptr(x)}, {ctx.ptr(w)}, {bias}, {y}, {n}, {c}, {h}, {wd}, {oh}, {ow}, "
                f"{sh}, {sw}, {pt}, {pl}, {ctx.clamp(node)}, {ctx.scratch(node)});")
    if node.kernel in ("pointwise", "im2col"):
        g = node.attrs["groups"]
        wp = ctx.relayout(w, "panels4" if g == 1 else f"panels4_g{g}", lambda data: _weight_panels(data, g))
        scratch = ctx.scratch(node) if node.name in ctx.plan.scratch else "NULL"
        if node.kernel == "pointwise":
            xs = ctx.shape(x)
            return (f"mb_conv_pointwise_f32_opt({ctx.ptr(x)}, {wp}, {bias}, {y}, {xs[0]}, {xs[1]}, {numel(xs[2:])}, "
                    f"{ctx.shape(w)[0]}, {g}, {ctx.clamp(node)}, {scratch});")
        ins = [ctx.tensor(t) if t else None for t in node.inputs]
        use_band = int(_band_floats(node, ins, [ctx.tensor(node.outputs[0])]) > 0)
        return (f"mb_conv_im2col_f32_opt({ctx.ptr(x)}, {wp}, {bias}, {y}, {_geometry_2d(ctx, node)}, "
                f"{ctx.clamp(node)}, {use_band}, {scratch});")
    return (f"mb_conv_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {bias}, {y}, "
            f"{_geometry_2d(ctx, node)}, {ctx.clamp(node)});")


def _conv_macs(node, ins, outs):
    w = ins[1]
    return numel(outs[0].shape) * numel(w.shape[1:])


# -- optimised kernels (passes/select_kernels.py picks the first that applies) -----------------------

# Below this many MACs a layer keeps the reference kernel: it costs at most a few ten thousand
# instructions there, and a model made only of such layers keeps the smaller code.
MIN_MACS = 1024

# im2col reads the patches from a band of padded input rows only for first layers: with few input
# channels the per-tap bookkeeping of in-place reads costs more than copying the rows, and the band
# stays small.
BAND_MAX_CHANNELS = 4
BAND_MAX_BYTES = 8192


def _as_nchw(shape):
    """(N, C, H, W) of a 1-D (N, C, L) or 2-D shape, 1-D seen as H = 1."""
    return tuple(shape[:2]) + (1,) * (4 - len(shape)) + tuple(shape[2:])


def _weight_panels(w: np.ndarray, groups: int) -> np.ndarray:
    """w [cout, cin/groups, *k] in panels of 4 output channels per group (mb_conv_f32_opt.h), as many
    floats as w: taps ordered (kernel position, input channel) as the im2col panel orders them; per
    group [cog // 4][K][4], then the last cog % 4 channels as [K][cog % 4]."""
    cog = w.shape[0] // groups
    k = numel(w.shape[1:])
    taps = np.moveaxis(w, 1, -1).reshape(groups, cog, k)
    full = cog // 4
    parts = []
    for g in range(groups):
        parts.append(taps[g, :4 * full].reshape(full, 4, k).transpose(0, 2, 1).reshape(-1))
        parts.append(taps[g, 4 * full:].T.reshape(-1))
    return np.concatenate(parts)


def _big_enough(node, ins, outs) -> bool:
    return _conv_macs(node, ins, outs) >= MIN_MACS


def _depthwise_applies(node, ins, outs) -> bool:
    x, w = ins[0], ins[1]
    a = node.attrs
    return (_big_enough(node, ins, outs) and len(a["stride"]) == 2 and a["groups"] == x.shape[1] == w.shape[0]
            and w.shape[1] == 1 and tuple(w.shape[2:]) == (3, 3) and tuple(a["dilation"]) == (1, 1)
            and all(s in (1, 2) for s in a["stride"]))


def _depthwise_scratch(node, ins, outs) -> int:
    """Bytes of the zero-bordered copy of one channel: the rows and columns 6-output steps read."""
    _, _, oh, ow = _as_nchw(outs[0].shape)
    sh, sw = node.attrs["stride"]
    return _round16(4 * ((oh - 1) * sh + 3) * ((6 * -(-ow // 6) - 1) * sw + 3))


def _round16(nbytes: int) -> int:
    """Scratch in whole 16-byte units, as the arena is aligned (its size then matches the ELF's)."""
    return -(-nbytes // 16) * 16


def _gemm_applies(node, ins, outs) -> bool:
    return _big_enough(node, ins, outs) and ins[1].is_constant


def _pointwise_applies(node, ins, outs) -> bool:
    a = node.attrs
    return (_gemm_applies(node, ins, outs) and all(k == 1 for k in ins[1].shape[2:])
            and all(s == 1 for s in a["stride"]) and not any(a["padding"]))


def _pointwise_scratch(node, ins, outs) -> int:
    """Bytes of the last hw % 4 positions, packed (none when hw is a multiple of 4)."""
    return 16 * ins[1].shape[1] if numel(ins[0].shape[2:]) % 4 else 0


def _band_floats(node, ins, outs) -> int:
    """Floats of the band of padded input rows that mb_conv_im2col_f32_opt reads the patches from when
    the layer has few input channels (mb_band_shape in mb_conv_f32_opt.c); 0 when it reads in place."""
    cig, *k = ins[1].shape[1:]
    if cig > BAND_MAX_CHANNELS:
        return 0
    pair = lambda v: (1, v[0]) if len(v) == 1 else tuple(v)  # noqa: E731  (1-D: height 1)
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(node.attrs["stride"]), pair(node.attrs["dilation"])
    ow = outs[0].shape[-1]
    rows_out = (ow + 2) // ow + 1
    bh = (rows_out - 1) * sh + (kh - 1) * dh + 1
    wq = -(-((ow - 1) * sw + (kw - 1) * dw + 1) // sw)
    floats = cig * bh * sw * wq
    return floats if 4 * floats <= BAND_MAX_BYTES else 0


def _im2col_scratch(node, ins, outs) -> int:
    """Bytes: the patch panel (4 positions), the int32 offset of each patch element, the band if any."""
    k = numel(ins[1].shape[1:])
    return _round16(4 * (5 * k + _band_floats(node, ins, outs)))


_CONV_OPT = ("mb_gemm_f32_opt", "mb_conv_f32_opt")

register(OpDef(
    name="conv", infer=_conv_infer, reference=_conv_reference, emit=_conv_emit, kernels=("mb_conv",),
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"), "groups": Attr("int", 1),
           **CLAMP_ATTRS},
    num_inputs=(3, 3), macs=_conv_macs, props=frozenset({Prop.FUSED_CLAMP}),
    doc="1-D/2-D convolution, w [Cout, Cin/groups, *k], padding (begin..., end...), fused clamp",
    variants=(
        Variant("depthwise3x3", _depthwise_applies, _CONV_OPT, _depthwise_scratch,
                doc="groups = cin = cout, 3x3, stride 1 or 2: 6 outputs of a row per step, 9 weights in registers, "
                    "each channel copied into a zero-bordered scratch"),
        Variant("pointwise", _pointwise_applies, _CONV_OPT, _pointwise_scratch,
                doc="1x1, stride 1, no padding: GEMM of 4 output channels x 4 positions reading the input in place"),
        Variant("im2col", _gemm_applies, _CONV_OPT, _im2col_scratch,
                doc="any other conv: the patches of 4 positions copied into scratch, GEMM with 4 output channels"),
    ),
))


# -- conv_transpose -------------------------------------------------------------------------------

def _convt_out_size(n, k, s, p, op, d):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _convt_infer(node, ins):
    x, w, b, nsp = _check_common(node, ins, "conv_transpose")
    a = node.attrs
    g = a["groups"]
    if len(a["padding"]) != nsp or len(a["output_padding"]) != nsp:
        raise ValueError("padding and output_padding must have one value per spatial dimension")
    if any(p < 0 for p in a["padding"]) or any(p < 0 for p in a["output_padding"]):
        raise ValueError("padding and output_padding must be >= 0")
    cin = x.shape[1]
    if w.shape[0] != cin or cin % g:
        raise ValueError(f"input channels {cin}, weight {list(w.shape)} and groups {g} do not agree")
    cout = w.shape[1] * g
    if b is not None and b.shape != (cout,):
        raise ValueError(f"bias {list(b.shape)} does not match {cout} output channels")
    out = []
    for i in range(nsp):
        o = _convt_out_size(x.shape[2 + i], w.shape[2 + i], a["stride"][i], a["padding"][i],
                            a["output_padding"][i], a["dilation"][i])
        if o < 1:
            raise ValueError(f"empty output in dimension {2 + i}")
        out.append(o)
    return [((x.shape[0], cout) + tuple(out), DType.float32)]


def _convt_reference(node, args):
    x, w, b = args
    a = node.attrs
    one_d = x.ndim == 3
    x, w = x.astype(np.float64), w.astype(np.float64)
    if one_d:
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, pad, opad, dil = (1,) + a["stride"], (0,) + a["padding"], (0,) + a["output_padding"], \
            (1,) + a["dilation"]
    else:
        stride, pad, opad, dil = a["stride"], a["padding"], a["output_padding"], a["dilation"]
    g = a["groups"]
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    cig = cin // g
    (sh, sw), (dh, dw) = stride, dil
    full_h = (h - 1) * sh + dh * (kh - 1) + opad[0] + 1
    full_w = (wd - 1) * sw + dw * (kw - 1) + opad[1] + 1
    buf = np.zeros((n, cog * g, full_h, full_w))
    for gi in range(g):
        xg = x[:, gi * cig:(gi + 1) * cig]
        wg = w[gi * cig:(gi + 1) * cig]
        for i in range(kh):
            for j in range(kw):
                buf[:, gi * cog:(gi + 1) * cog, i * dh:i * dh + sh * (h - 1) + 1:sh,
                    j * dw:j * dw + sw * (wd - 1) + 1:sw] += np.einsum("nchw,co->nohw", xg, wg[:, :, i, j])
    oh, ow = full_h - 2 * pad[0], full_w - 2 * pad[1]
    y = buf[:, :, pad[0]:pad[0] + oh, pad[1]:pad[1] + ow]
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    if one_d:
        y = y[:, :, 0, :]
    return [apply_clamp(y.astype(np.float32), node)]


def _convt_emit(ctx, node):
    x, w, b = node.inputs
    bias = ctx.ptr(b) if b else "NULL"
    return (f"mb_conv_transpose_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {bias}, {ctx.ptr(node.outputs[0])}, "
            f"{_geometry_2d(ctx, node)}, {ctx.clamp(node)});")


def _convt_macs(node, ins, outs):
    x, w = ins[0], ins[1]
    return numel(x.shape) * numel(w.shape[1:])


register(OpDef(
    name="conv_transpose", infer=_convt_infer, reference=_convt_reference, emit=_convt_emit,
    kernels=("mb_conv",),
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "output_padding": Attr("ints"),
           "dilation": Attr("ints"), "groups": Attr("int", 1), **CLAMP_ATTRS},
    num_inputs=(3, 3), macs=_convt_macs, props=frozenset({Prop.FUSED_CLAMP}),
    doc="1-D/2-D transposed convolution, w [Cin, Cout/groups, *k], fused clamp",
))


# -- converters -----------------------------------------------------------------------------------

def _batched(ctx, x, nsp):
    """Unbatched input (C, *spatial) runs as a batch of one; returns (x, original shape or None)."""
    shape = ctx.shape(x)
    if len(shape) == nsp + 1:
        return ctx.emit1("reshape", [x], {"shape": (1,) + shape}), shape
    return x, None


def _unbatch(ctx, y, orig):
    if orig is None:
        return y
    return ctx.emit1("reshape", [y], {"shape": ctx.shape(y)[1:]})


def _emit_conv(ctx, a, padding, transposed=False, output_padding=None):
    x, w = ctx.tensor(a["input"]), ctx.tensor(a["weight"])
    nsp = len(ctx.shape(w)) - 2
    if nsp not in (1, 2):
        raise ctx.unsupported(f"{nsp}-D convolution is not supported (1-D and 2-D are)")
    stride = ctx.per_dim(a["stride"], nsp, "stride")
    dilation = ctx.per_dim(a["dilation"], nsp, "dilation")
    groups = int(a["groups"])
    x, orig = _batched(ctx, x, nsp)
    bias = ctx.optional_tensor(a["bias"])
    if transposed:
        attrs = {"stride": stride, "padding": ctx.per_dim(padding, nsp, "padding"),
                 "output_padding": ctx.per_dim(output_padding, nsp, "output_padding"),
                 "dilation": dilation, "groups": groups}
        return _unbatch(ctx, ctx.emit1("conv_transpose", [x, w, bias], attrs), orig)
    kernel = ctx.shape(w)[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0,) * (2 * nsp)
        elif padding == "same":
            total = [dilation[i] * (kernel[i] - 1) for i in range(nsp)]
            # PyTorch puts the odd extra element of 'same' padding at the end
            pads = tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
        else:
            raise ctx.unsupported(f"conv padding={padding!r} is not supported ('same', 'valid' or ints are)")
    else:
        sym = ctx.per_dim(padding, nsp, "padding")
        pads = sym + sym
    attrs = {"stride": stride, "padding": pads, "dilation": dilation, "groups": groups}
    return _unbatch(ctx, ctx.emit1("conv", [x, w, bias], attrs), orig)


@converts("aten.conv1d.default", "aten.conv2d.default", "aten.conv1d.padding", "aten.conv2d.padding")
def _from_conv(ctx, fx):
    a = ctx.args(fx)
    return _emit_conv(ctx, a, a["padding"])


@converts("aten.convolution.default", "aten._convolution.default", "aten._convolution.deprecated")
def _from_convolution(ctx, fx):
    a = ctx.args(fx)
    return _emit_conv(ctx, a, a["padding"], transposed=bool(a["transposed"]), output_padding=a["output_padding"])


@converts("aten.conv_transpose1d.default", "aten.conv_transpose2d.input")
def _from_conv_transpose(ctx, fx):
    a = ctx.args(fx)
    return _emit_conv(ctx, a, a["padding"], transposed=True, output_padding=a["output_padding"])


# -- ONNX ------------------------------------------------------------------------------------------

def onnx_pads(ctx, in_sizes, kernel, stride, dilation, nsp) -> tuple[int, ...]:
    """ONNX `pads` (begins then ends, as the IR's padding) from the attribute or `auto_pad`."""
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = tuple(int(p) for p in ctx.attr("pads", (0,) * (2 * nsp)))
        if len(pads) != 2 * nsp:
            raise ctx.unsupported(f"pads {list(pads)} does not have {2 * nsp} values")
        return pads
    if auto == "VALID":
        return (0,) * (2 * nsp)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for n, k, s, d in zip(in_sizes, kernel, stride, dilation):
            out = -(-n // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
            small = total // 2
            begins.append(small if auto == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        return tuple(begins) + tuple(ends)
    raise ctx.unsupported(f"auto_pad={auto!r} is not supported (NOTSET, SAME_UPPER, SAME_LOWER, VALID are)")


@converts_onnx("Conv")
def _from_onnx_conv(ctx, node):
    x = ctx.input(0)
    w_shape = ctx.input_shape(1)
    nsp = len(w_shape) - 2
    if nsp not in (1, 2):
        raise ctx.unsupported(f"{nsp}-D convolution is not supported (1-D and 2-D are)")
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape", w_shape[2:]))
    if kernel != tuple(w_shape[2:]):
        raise ctx.unsupported(f"kernel_shape {list(kernel)} differs from the weight's {list(w_shape[2:])}")
    stride = tuple(int(s) for s in ctx.attr("strides", (1,) * nsp))
    dilation = tuple(int(d) for d in ctx.attr("dilations", (1,) * nsp))
    pads = onnx_pads(ctx, ctx.shape(x)[2:], kernel, stride, dilation, nsp)
    attrs = {"stride": stride, "padding": pads, "dilation": dilation, "groups": int(ctx.attr("group", 1))}
    return ctx.emit1("conv", [x, ctx.input(1), ctx.input(2)], attrs)


@converts_onnx("ConvTranspose")
def _from_onnx_conv_transpose(ctx, node):
    """pads (begins, ends) -> the IR's symmetric crop `padding` = begin plus `output_padding` grown by
    begin - end, which crops the same window; auto_pad SAME_* and output_shape are refused."""
    x = ctx.input(0)
    w_shape = ctx.input_shape(1)
    nsp = len(w_shape) - 2
    if nsp not in (1, 2):
        raise ctx.unsupported(f"{nsp}-D transposed convolution is not supported (1-D and 2-D are)")
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape", w_shape[2:]))
    if kernel != tuple(w_shape[2:]):
        raise ctx.unsupported(f"kernel_shape {list(kernel)} differs from the weight's {list(w_shape[2:])}")
    if ctx.has_attr("output_shape"):
        raise ctx.unsupported(f"attribute output_shape={list(ctx.attr('output_shape'))} is not supported "
                              "(give pads and output_padding instead)")
    auto = str(ctx.attr("auto_pad", "NOTSET"))
    if auto not in ("NOTSET", "VALID"):
        raise ctx.unsupported(f"attribute auto_pad={auto!r} is not supported (NOTSET and VALID are)")
    stride = tuple(int(s) for s in ctx.attr("strides", (1,) * nsp))
    dilation = tuple(int(d) for d in ctx.attr("dilations", (1,) * nsp))
    out_pad = tuple(int(p) for p in ctx.attr("output_padding", (0,) * nsp))
    pads = tuple(int(p) for p in ctx.attr("pads", (0,) * (2 * nsp))) if auto == "NOTSET" else (0,) * (2 * nsp)
    if len(pads) != 2 * nsp or len(stride) != nsp or len(dilation) != nsp or len(out_pad) != nsp:
        raise ctx.unsupported(f"pads {list(pads)}, strides, dilations and output_padding do not fit {nsp}-D")
    begins, ends = pads[:nsp], pads[nsp:]
    grown = tuple(op + b - e for op, b, e in zip(out_pad, begins, ends))
    if any(p < 0 for p in begins + grown):
        raise ctx.unsupported(f"attribute pads={list(pads)} with output_padding={list(out_pad)} is not supported "
                              "(end pads larger than begin pads plus output_padding)")
    attrs = {"stride": stride, "padding": begins, "output_padding": grown, "dilation": dilation,
             "groups": int(ctx.attr("group", 1))}
    return ctx.emit1("conv_transpose", [x, ctx.input(1), ctx.input(2)], attrs)
