"""Int8 pooling and mean: q_max_pool, q_avg_pool, q_adaptive_avg_pool, q_adaptive_max_pool, q_mean.

The window pools take the float ops' attributes unchanged (ops/pool.py: 1-D or 2-D over the trailing
dimensions, padding per dimension, ceil_mode, dilation for max, count_include_pad and
divisor_override for avg) and keep the input's quantization parameters:
- max pools: the plain int8 maximum; padding never wins (an empty window, possible only in odd
  ceil_mode / dilation cases, gives -128, i.e. -inf saturated).
- avg pools: y = zp + round_half_away(sum(x - zp) / div) with the float op's divisor (window clipped
  to the padded input for count_include_pad, to the input otherwise, or divisor_override); an empty
  window gives zp (0.0, as in PyTorch). divisor_override smaller than the kernel area is not lowered
  (the average could leave the input's range).

q_mean: sum (x - in_zp) over `axes` in int32, y = clamp(requantize(acc * 2^left_shift, mult, shift)
+ out_zp) with real s_in / (s_out * count) for a mean (s_in / s_out for a sum), output parameters
calibrated. The left shift (<= 20, as large as the accumulator allows) keeps fraction bits through
requantize's double rounding.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from ..quant.lowering import QuantContext, lowers
from .binary import collapse
from .pool import (_params_2d, _planes_2d, adaptive_bins, adaptive_call_args, adaptive_out_shape, window_call_args,
                   pool_out_size, window_macs, window_out_shape)
from .reduce import _contiguous_strides, _reduced_shape
from .registry import MAX_RANK, Attr, OpDef, numel, register

_WINDOW = {"kernel": Attr("ints"), "stride": Attr("ints"), "padding": Attr("ints"), "ceil_mode": Attr("bool", False)}


def _check_int8(x, name):
    if x.dtype != DType.int8:
        raise ValueError(f"{name} takes int8, got {x.dtype.value}")


def _check_zp(node, *keys):
    for k in keys:
        if not arith.QMIN <= node.attrs[k] <= arith.QMAX:
            raise ValueError(f"{k} = {node.attrs[k]} is not an int8 zero point")


def _window_infer(name):
    def infer(node, ins):
        x = ins[0]
        _check_int8(x, name)
        a = node.attrs
        if name == "q_avg_pool":
            _check_zp(node, "zero_point")
            if a.get("divisor_override") is not None and a["divisor_override"] < 1:
                raise ValueError(f"divisor_override must be >= 1, got {a['divisor_override']}")
        shape = window_out_shape(x, a, name)
        div = a.get("divisor_override") or 0
        if 255 * numel(a["kernel"]) + div // 2 > arith.INT32_MAX or div > 1 << 24:
            raise ValueError(f"{name}: a window of {numel(a['kernel'])} elements (divisor {div}) could overflow int32")
        return [(shape, DType.int8)]

    return infer


def _div_round(num, den):
    """num / den rounded half away from zero (den > 0), on int64 arrays."""
    num = np.asarray(num, dtype=np.int64)
    mag = (np.abs(num) + den // 2) // den
    return np.where(num >= 0, mag, -mag)


def _shape_out(x, nsp, oh, ow):
    return x.shape[:x.ndim - nsp] + ((ow,) if nsp == 1 else (oh, ow))


def _max_reference(node, args):
    x = args[0]
    a = node.attrs
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _params_2d(a)
    nsp = len(a["kernel"])
    xp = _planes_2d(x.astype(np.int64), nsp)
    p, h, w = xp.shape
    oh = pool_out_size(h, kh, sh, ph, dh, a["ceil_mode"])
    ow = pool_out_size(w, kw, sw, pw, dw, a["ceil_mode"])
    big = np.full((p, h + 2 * ph + kh * dh + sh, w + 2 * pw + kw * dw + sw), arith.QMIN, dtype=np.int64)
    big[:, ph:ph + h, pw:pw + w] = xp
    y = np.full((p, oh, ow), arith.QMIN, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, big[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw])
    return [y.reshape(_shape_out(x, nsp, oh, ow)).astype(np.int8)]


def _avg_reference(node, args):
    x = args[0]
    a = node.attrs
    zp = a["zero_point"]
    (kh, kw), (sh, sw), (ph, pw), _ = _params_2d(a)
    nsp = len(a["kernel"])
    xp = _planes_2d(x.astype(np.int64) - zp, nsp)
    p, h, w = xp.shape
    oh = pool_out_size(h, kh, sh, ph, 1, a["ceil_mode"])
    ow = pool_out_size(w, kw, sw, pw, 1, a["ceil_mode"])
    y = np.full((p, oh, ow), zp, dtype=np.int64)
    for r in range(oh):
        for c in range(ow):
            h0, w0 = r * sh - ph, c * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if h0 >= h1 or w0 >= w1:
                continue
            if a.get("divisor_override"):
                div = a["divisor_override"]
            elif a["count_include_pad"]:
                div = pool_size
            else:
                div = (h1 - h0) * (w1 - w0)
            y[:, r, c] = zp + _div_round(xp[:, h0:h1, w0:w1].sum(axis=(1, 2)), div)
    y = np.clip(y, arith.QMIN, arith.QMAX)
    return [y.reshape(_shape_out(x, nsp, oh, ow)).astype(np.int8)]


def _window_emit(kind):
    def emit(ctx, node):
        head, dh, dw = window_call_args(ctx, node)
        a = node.attrs
        if kind == "max":
            return f"mb_q_max_pool_s8({head}, {dh}, {dw});"
        div = a.get("divisor_override") or 0
        return (f"mb_q_avg_pool_s8({head}, {int(a['count_include_pad'])}, {div}, "
                f"{ctx.i(a['zero_point'])});")

    return emit


register(OpDef(
    name="q_max_pool", infer=_window_infer("q_max_pool"), reference=_max_reference, emit=_window_emit("max"),
    kernels=("mb_q_pool", "mb_quant"), attrs={**_WINDOW, "dilation": Attr("ints")}, macs=window_macs,
    doc="int8 max over 1-D/2-D windows (same parameters in and out; padding never wins)",
))
register(OpDef(
    name="q_avg_pool", infer=_window_infer("q_avg_pool"), reference=_avg_reference, emit=_window_emit("avg"),
    kernels=("mb_q_pool", "mb_quant"),
    attrs={**_WINDOW, "count_include_pad": Attr("bool", True), "divisor_override": Attr("opt_int", None),
           "zero_point": Attr("int")},
    macs=window_macs,
    doc="int8 mean over 1-D/2-D windows: zp + round_half_away(sum(x - zp) / div), PyTorch's divisors",
))


# -- adaptive pools ------------------------------------------------------------------------------------

def _adaptive_infer(name):
    def infer(node, ins):
        x = ins[0]
        _check_int8(x, name)
        if name == "q_adaptive_avg_pool":
            _check_zp(node, "zero_point")
        size = node.attrs["output_size"]
        shape = adaptive_out_shape(x, size, name)
        if 255 * 2 * numel(x.shape[len(x.shape) - len(size):]) > arith.INT32_MAX:
            raise ValueError(f"{name}: a bin of {list(x.shape[len(x.shape) - len(size):])} could overflow int32")
        return [(shape, DType.int8)]

    return infer


def _adaptive_reference(kind):
    def reference(node, args):
        x = args[0]
        size = node.attrs["output_size"]
        nsp = len(size)
        zp = node.attrs.get("zero_point", 0)
        xp = _planes_2d(x.astype(np.int64), nsp)
        oh, ow = (1,) + size if nsp == 1 else size
        hs, he = adaptive_bins(xp.shape[1], oh)
        ws, we = adaptive_bins(xp.shape[2], ow)
        y = np.zeros((xp.shape[0], oh, ow), dtype=np.int64)
        for r in range(oh):
            for c in range(ow):
                win = xp[:, hs[r]:he[r], ws[c]:we[c]].reshape(xp.shape[0], -1)
                if kind == "avg":
                    y[:, r, c] = zp + _div_round((win - zp).sum(axis=1), win.shape[1])
                else:
                    y[:, r, c] = win.max(axis=1)
        y = np.clip(y, arith.QMIN, arith.QMAX)
        return [y.reshape(x.shape[:x.ndim - nsp] + size).astype(np.int8)]

    return reference


def _adaptive_emit(kind):
    def emit(ctx, node):
        zp = f", {ctx.i(node.attrs['zero_point'])}" if kind == "avg" else ""
        return f"mb_q_adaptive_{kind}_pool_s8({adaptive_call_args(ctx, node)}{zp});"

    return emit


for _kind in ("avg", "max"):
    register(OpDef(
        name=f"q_adaptive_{_kind}_pool", infer=_adaptive_infer(f"q_adaptive_{_kind}_pool"),
        reference=_adaptive_reference(_kind), emit=_adaptive_emit(_kind), kernels=("mb_q_pool", "mb_quant"),
        attrs={"output_size": Attr("ints"), **({"zero_point": Attr("int")} if _kind == "avg" else {})},
        macs=lambda node, ins, outs: numel(ins[0].shape),
        doc=f"int8 {_kind} over PyTorch's adaptive bins (same parameters in and out)",
    ))


# -- q_mean ----------------------------------------------------------------------------------------------

def _mean_infer(node, ins):
    x = ins[0]
    _check_int8(x, "q_mean")
    a = node.attrs
    _check_zp(node, "in_zp", "out_zp")
    rank = len(x.shape)
    axes = a["axes"]
    if rank < 1 or rank > MAX_RANK:
        raise ValueError(f"q_mean needs a rank in 1..{MAX_RANK}, got {rank}")
    if not axes or len(set(axes)) != len(axes) or any(not 0 <= d < rank for d in axes) or tuple(sorted(axes)) != axes:
        raise ValueError(f"axes {list(axes)} must be distinct, sorted, non-empty and within rank {rank}")
    count = numel([x.shape[d] for d in axes])
    if count < 1 or 255 * count * (1 << a["left_shift"]) > arith.INT32_MAX or not 0 <= a["left_shift"] <= 20:
        raise ValueError(f"q_mean over {count} elements with left_shift {a['left_shift']} could overflow int32")
    if not -31 <= a["shift"] <= 30 or not 0 <= a["mult"] <= arith.INT32_MAX:
        raise ValueError(f"bad multiplier ({a['mult']}, {a['shift']})")
    return [(_reduced_shape(x.shape, axes, a["keepdim"]), DType.int8)]


def _mean_reference(node, args):
    a = node.attrs
    acc = np.sum(args[0].astype(np.int64) - a["in_zp"], axis=a["axes"], keepdims=a["keepdim"])
    v = arith.requantize(acc * (np.int64(1) << a["left_shift"]), a["mult"], a["shift"]) + a["out_zp"]
    return [np.clip(v, arith.QMIN, arith.QMAX).astype(np.int8)]


def _mean_emit(ctx, node):
    shape = ctx.shape(node.inputs[0])
    a = node.attrs
    axes = a["axes"]
    strides = _contiguous_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    out_dims, (out_strides,) = collapse([shape[d] for d in kept], [strides[d] for d in kept])
    red_dims, (red_strides,) = collapse([shape[d] for d in axes], [strides[d] for d in axes])
    return (f"mb_q_mean_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
            f"{len(out_dims)}, {ctx.ints(out_dims, 'dims')}, {ctx.ints(out_strides, 'strides')}, "
            f"{len(red_dims)}, {ctx.ints(red_dims, 'dims')}, {ctx.ints(red_strides, 'strides')}, "
            f"{ctx.i(a['in_zp'])}, {a['left_shift']}, {ctx.i(a['mult'])}, {ctx.i(a['shift'])}, {ctx.i(a['out_zp'])});")


register(OpDef(
    name="q_mean", infer=_mean_infer, reference=_mean_reference, emit=_mean_emit, kernels=("mb_q_pool", "mb_quant"),
    attrs={"axes": Attr("ints"), "keepdim": Attr("bool", False), "in_zp": Attr("int"), "out_zp": Attr("int"),
           "left_shift": Attr("int"), "mult": Attr("int"), "shift": Attr("int")},
    macs=lambda node, ins, outs: numel(ins[0].shape),
    doc="int8 sum / mean over axes: requantize(sum(x - in_zp) * 2^left_shift, mult, shift) + out_zp",
))


# -- lowering rules --------------------------------------------------------------------------------------

# A rule raises ValueError with the reason when the node must stay float (the pass reports it).

@lowers("max_pool", "adaptive_max_pool")
def _lower_max(q: QuantContext, node) -> bool:
    xq = q.int8(node.inputs[0])
    q.emit(f"q_{node.op}", [xq], [q.same_params_output(node.outputs[0], xq)], dict(node.attrs))
    return True


@lowers("avg_pool", "adaptive_avg_pool")
def _lower_avg(q: QuantContext, node) -> bool:
    from .q_elementwise import input_params  # noqa: PLC0415

    attrs = dict(node.attrs)
    if node.op == "avg_pool":
        div = attrs.get("divisor_override")
        if div is not None and div < numel(attrs["kernel"]):
            raise ValueError(f"divisor_override {div} is smaller than the window: the average could leave the "
                             "input's range, which int8 average pooling keeps")
    _, zp = input_params(q, node.inputs[0])
    attrs["zero_point"] = int(zp)
    xq = q.int8(node.inputs[0])
    q.emit(f"q_{node.op}", [xq], [q.same_params_output(node.outputs[0], xq)], attrs)
    return True


@lowers("reduce")
def _lower_reduce(q: QuantContext, node) -> bool:
    from .q_elementwise import input_params  # noqa: PLC0415

    kind, axes = node.attrs["kind"], tuple(node.attrs["axes"])
    x, y = node.inputs[0], node.outputs[0]
    shape = q.float_tensor(x).shape
    if kind not in ("mean", "sum"):
        raise ValueError(f"int8 reduce supports mean and sum, not {kind}")
    if not shape or not axes or len(shape) > MAX_RANK:
        raise ValueError(f"int8 mean needs a rank in 1..{MAX_RANK} and at least one axis")
    count = numel([shape[d] for d in axes])
    if count < 1 or 255 * count > arith.INT32_MAX:
        raise ValueError(f"a sum of {count} int8 values could overflow the int32 accumulator")
    left_shift = min(20, int(math.floor(math.log2(arith.INT32_MAX / (255 * count)))))
    s_in, zp_in = input_params(q, x)
    out = q.params(y)
    real = float(s_in) / float(out.scale[0]) / (count if kind == "mean" else 1)
    try:
        mult, shift = arith.quantize_multiplier(real / float(1 << left_shift))
    except ValueError:
        raise ValueError(f"the output multiplier {real:.3g} is out of the int8 scheme's range") from None
    xq = q.int8(x)
    yq = q.output(y)
    q.emit("q_mean", [xq], [yq], {"axes": axes, "keepdim": bool(node.attrs["keepdim"]), "in_zp": int(zp_in),
                                  "out_zp": int(out.zero_point[0]), "left_shift": left_shift, "mult": mult,
                                  "shift": shift})
    return True
