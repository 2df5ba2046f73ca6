"""Pooling over the last 1 or 2 dimensions: max_pool, avg_pool, adaptive_avg_pool, adaptive_max_pool.

All four take one input whose trailing `len(kernel)` (or `len(output_size)`) dimensions are
pooled; the leading dimensions (N, C, or just C for unbatched input) are independent planes.

- max_pool: `kernel`, `stride`, `padding` (symmetric, per dimension), `dilation`, `ceil_mode`.
  Padding never wins a max (PyTorch pads with -inf); NaN propagates as in PyTorch.
- avg_pool: `kernel`, `stride`, `padding`, `ceil_mode`, `count_include_pad`, `divisor_override`,
  with PyTorch's divisor rule: a window is clipped to the padded input for count_include_pad and
  to the input otherwise; divisor_override replaces both.
- adaptive_avg_pool / adaptive_max_pool: `output_size`; output i covers input
  [floor(i * In / Out), ceil((i + 1) * In / Out)), PyTorch's bins.

Sources: aten.max_pool1d/2d (and _with_indices: only the values are produced), aten.avg_pool1d/2d,
aten.adaptive_avg_pool1d/2d (and _adaptive_avg_pool2d), aten.adaptive_max_pool1d/2d (values only).
The C kernels are 2-D; 1-D pooling runs with H = 1.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, converts_onnx, numel, register


def pool_out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape."""
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _check_float(x, name):
    if x.dtype != DType.float32:
        raise ValueError(f"{name} takes float32, got {x.dtype.value}")


def window_out_shape(x, a, name) -> tuple[int, ...]:
    """Output shape of a 1-D/2-D window pool of `x` under attributes `a` (shared with ops/q_pool.py)."""
    nsp = len(a["kernel"])
    if nsp not in (1, 2):
        raise ValueError(f"{name} pools 1 or 2 dimensions, got kernel {list(a['kernel'])}")
    if len(x.shape) < nsp + 1:
        raise ValueError(f"{name} {nsp}-D needs rank >= {nsp + 1}, got {list(x.shape)}")
    dil = a.get("dilation", (1,) * nsp)
    if not (len(a["stride"]) == len(a["padding"]) == len(dil) == nsp):
        raise ValueError("kernel, stride, padding and dilation must have one value per pooled dimension")
    out = []
    for i in range(nsp):
        k, s, p, d = a["kernel"][i], a["stride"][i], a["padding"][i], dil[i]
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ValueError("kernel, stride and dilation must be >= 1 and padding >= 0")
        if p * 2 > k:
            raise ValueError(f"padding {p} must be at most half the kernel size {k}")
        n = x.shape[len(x.shape) - nsp + i]
        o = pool_out_size(n, k, s, p, d, a["ceil_mode"])
        if o < 1:
            raise ValueError(f"output size is {o} in pooled dimension {i}: the input is too small")
        out.append(o)
    return x.shape[:len(x.shape) - nsp] + tuple(out)


def _window_infer(name):
    def infer(node, ins):
        _check_float(ins[0], name)
        return [(window_out_shape(ins[0], node.attrs, name), DType.float32)]

    return infer


def _planes_2d(x: np.ndarray, nsp: int) -> np.ndarray:
    """(planes, H, W) view of x, H = 1 for 1-D pooling."""
    lead = x.shape[:x.ndim - nsp]
    spatial = x.shape[x.ndim - nsp:]
    if nsp == 1:
        spatial = (1,) + spatial
    return x.reshape((int(np.prod(lead, dtype=np.int64)),) + spatial)


def _params_2d(a):
    """(kernel, stride, padding, dilation) as 2-D tuples."""
    nsp = len(a["kernel"])
    dil = a.get("dilation", (1,) * nsp)
    if nsp == 1:
        return (1,) + a["kernel"], (1,) + a["stride"], (0,) + a["padding"], (1,) + dil
    return a["kernel"], a["stride"], a["padding"], dil


def _max_reference(node, args):
    x = args[0]
    a = node.attrs
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _params_2d(a)
    nsp = len(a["kernel"])
    xp = _planes_2d(x.astype(np.float64), nsp)
    p, h, w = xp.shape
    oh = pool_out_size(h, kh, sh, ph, dh, a["ceil_mode"])
    ow = pool_out_size(w, kw, sw, pw, dw, a["ceil_mode"])
    # pad with -inf well beyond what any (ceil-mode) window can reach
    big = np.full((p, h + 2 * ph + kh * dh + sh, w + 2 * pw + kw * dw + sw), -np.inf)
    big[:, ph:ph + h, pw:pw + w] = xp
    y = np.full((p, oh, ow), -np.inf)
    isnan = np.zeros((p, oh, ow), dtype=bool)
    for i in range(kh):
        for j in range(kw):
            win = big[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            isnan |= np.isnan(win)
            y = np.fmax(y, win)
    y[isnan] = np.nan
    return [y.reshape(x.shape[:x.ndim - nsp] + ((ow,) if nsp == 1 else (oh, ow))).astype(np.float32)]


def _avg_reference(node, args):
    x = args[0]
    a = node.attrs
    (kh, kw), (sh, sw), (ph, pw), _ = _params_2d(a)
    nsp = len(a["kernel"])
    xp = _planes_2d(x.astype(np.float64), nsp)
    p, h, w = xp.shape
    oh = pool_out_size(h, kh, sh, ph, 1, a["ceil_mode"])
    ow = pool_out_size(w, kw, sw, pw, 1, a["ceil_mode"])
    y = np.zeros((p, oh, ow))
    for r in range(oh):
        for c in range(ow):
            h0, w0 = r * sh - ph, c * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if h0 >= h1 or w0 >= w1:
                continue
            if a["divisor_override"]:
                div = a["divisor_override"]
            elif a["count_include_pad"]:
                div = pool_size
            else:
                div = (h1 - h0) * (w1 - w0)
            y[:, r, c] = xp[:, h0:h1, w0:w1].sum(axis=(1, 2)) / div
    return [y.reshape(x.shape[:x.ndim - nsp] + ((ow,) if nsp == 1 else (oh, ow))).astype(np.float32)]


def window_call_args(ctx, node) -> tuple[str, int, int]:
    """The leading C arguments of a window pool call (pointers, planes, sizes, kernel, stride,
    padding) and the dilation (dh, dw); shared with ops/q_pool.py."""
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    nsp = len(a["kernel"])
    xs, ys = ctx.shape(x), ctx.shape(y)
    planes = numel(xs[:len(xs) - nsp])
    h, w = (1, xs[-1]) if nsp == 1 else xs[-2:]
    oh, ow = (1, ys[-1]) if nsp == 1 else ys[-2:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _params_2d(a)
    return f"{ctx.ptr(x)}, {ctx.ptr(y)}, {planes}, {h}, {w}, {oh}, {ow}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}", dh, dw


def _window_emit(kind):
    def emit(ctx, node):
        head, dh, dw = window_call_args(ctx, node)
        if kind == "max":
            return f"mb_max_pool_f32({head}, {dh}, {dw});"
        div = node.attrs["divisor_override"] or 0
        return f"mb_avg_pool_f32({head}, {int(node.attrs['count_include_pad'])}, {div});"

    return emit


_WINDOW = {"kernel": Attr("ints"), "stride": Attr("ints"), "padding": Attr("ints"), "ceil_mode": Attr("bool", False)}


def window_macs(node, ins, outs):
    return numel(outs[0].shape) * numel(node.attrs["kernel"])


register(OpDef(
    name="max_pool", infer=_window_infer("max_pool"), reference=_max_reference, emit=_window_emit("max"),
    kernels=("mb_pool",), attrs={**_WINDOW, "dilation": Attr("ints")}, macs=window_macs,
    doc="max over 1-D/2-D windows of the trailing dimensions (padding never wins)",
))
register(OpDef(
    name="avg_pool", infer=_window_infer("avg_pool"), reference=_avg_reference, emit=_window_emit("avg"),
    kernels=("mb_pool",),
    attrs={**_WINDOW, "count_include_pad": Attr("bool", True), "divisor_override": Attr("opt_int", None)},
    macs=window_macs,
    doc="mean over 1-D/2-D windows of the trailing dimensions, PyTorch's divisor rules",
))


# -- adaptive pools -------------------------------------------------------------------------------

def adaptive_bins(n_in: int, n_out: int) -> tuple[list[int], list[int]]:
    starts = [(i * n_in) // n_out for i in range(n_out)]
    ends = [-((-(i + 1) * n_in) // n_out) for i in range(n_out)]
    return starts, ends


def adaptive_out_shape(x, size, name) -> tuple[int, ...]:
    if len(size) not in (1, 2) or any(s < 1 for s in size):
        raise ValueError(f"{name} output_size must be 1 or 2 positive values, got {list(size)}")
    if len(x.shape) < len(size) + 1:
        raise ValueError(f"{name} {len(size)}-D needs rank >= {len(size) + 1}, got {list(x.shape)}")
    return x.shape[:len(x.shape) - len(size)] + tuple(size)


def _adaptive_infer(name):
    def infer(node, ins):
        _check_float(ins[0], name)
        return [(adaptive_out_shape(ins[0], node.attrs["output_size"], name), DType.float32)]

    return infer


def _adaptive_reference(kind):
    def reference(node, args):
        x = args[0]
        size = node.attrs["output_size"]
        nsp = len(size)
        xp = _planes_2d(x.astype(np.float64), nsp)
        oh, ow = (1,) + size if nsp == 1 else size
        hs, he = adaptive_bins(xp.shape[1], oh)
        ws, we = adaptive_bins(xp.shape[2], ow)
        y = np.zeros((xp.shape[0], oh, ow))
        for r in range(oh):
            for c in range(ow):
                win = xp[:, hs[r]:he[r], ws[c]:we[c]].reshape(xp.shape[0], -1)
                if kind == "avg":
                    y[:, r, c] = win.mean(axis=1)
                else:
                    y[:, r, c] = np.where(np.isnan(win).any(axis=1), np.nan, win.max(axis=1))
        return [y.reshape(x.shape[:x.ndim - nsp] + size).astype(np.float32)]

    return reference


def adaptive_call_args(ctx, node) -> str:
    """The C arguments of an adaptive pool call: pointers, planes, input and output sizes."""
    x, y = node.inputs[0], node.outputs[0]
    size = node.attrs["output_size"]
    nsp = len(size)
    xs = ctx.shape(x)
    planes = numel(xs[:len(xs) - nsp])
    h, w = (1, xs[-1]) if nsp == 1 else xs[-2:]
    oh, ow = (1,) + size if nsp == 1 else size
    return f"{ctx.ptr(x)}, {ctx.ptr(y)}, {planes}, {h}, {w}, {oh}, {ow}"


def _adaptive_emit(kind):
    def emit(ctx, node):
        return f"mb_adaptive_{kind}_pool_f32({adaptive_call_args(ctx, node)});"

    return emit


def _adaptive_macs(node, ins, outs):
    return numel(ins[0].shape)


for _kind in ("avg", "max"):
    register(OpDef(
        name=f"adaptive_{_kind}_pool", infer=_adaptive_infer(f"adaptive_{_kind}_pool"),
        reference=_adaptive_reference(_kind), emit=_adaptive_emit(_kind), kernels=("mb_pool",),
        attrs={"output_size": Attr("ints")}, macs=_adaptive_macs,
        doc=f"{_kind} over PyTorch's adaptive bins of the trailing 1 or 2 dimensions",
    ))


# -- converters -----------------------------------------------------------------------------------

def _nsp(target: str) -> int:
    return 1 if "1d" in target else 2


def _window_attrs(ctx, a, nsp):
    kernel = ctx.per_dim(a["kernel_size"], nsp, "kernel_size")
    return {"kernel": kernel, "stride": ctx.per_dim(a["stride"], nsp, "stride", default=kernel),
            "padding": ctx.per_dim(a["padding"], nsp, "padding"), "ceil_mode": bool(a["ceil_mode"])}


@converts("aten.max_pool1d.default", "aten.max_pool2d.default",
          "aten.max_pool1d_with_indices.default", "aten.max_pool2d_with_indices.default")
def _from_max_pool(ctx, fx):
    a = ctx.args(fx)
    nsp = _nsp(str(fx.target))
    attrs = _window_attrs(ctx, a, nsp)
    attrs["dilation"] = ctx.per_dim(a["dilation"], nsp, "dilation")
    y = ctx.emit1("max_pool", [ctx.tensor(a["self"])], attrs)
    return (y, "") if "with_indices" in str(fx.target) else y


@converts("aten.avg_pool1d.default", "aten.avg_pool2d.default")
def _from_avg_pool(ctx, fx):
    a = ctx.args(fx)
    nsp = _nsp(str(fx.target))
    attrs = _window_attrs(ctx, a, nsp)
    attrs["count_include_pad"] = bool(a["count_include_pad"])
    div = a.get("divisor_override")
    if div is not None and int(div) == 0:
        raise ctx.unsupported("avg_pool divisor_override=0 (division by zero)")
    attrs["divisor_override"] = None if div is None else int(div)
    return ctx.emit1("avg_pool", [ctx.tensor(a["self"])], attrs)


def _output_size(ctx, fx, a, nsp):
    # None entries (keep the input size) are resolved from torch's result shape
    return tuple(int(d) for d in fx.meta["val"].shape[-nsp:])


@converts("aten.adaptive_avg_pool1d.default", "aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default")
def _from_adaptive_avg(ctx, fx):
    a = ctx.args(fx)
    nsp = _nsp(str(fx.target))
    return ctx.emit1("adaptive_avg_pool", [ctx.tensor(a["self"])], {"output_size": _output_size(ctx, fx, a, nsp)})


@converts("aten.adaptive_max_pool1d.default", "aten.adaptive_max_pool2d.default")
def _from_adaptive_max(ctx, fx):
    a = ctx.args(fx)
    nsp = _nsp(str(fx.target))
    out = fx.meta["val"][0].shape[-nsp:]
    y = ctx.emit1("adaptive_max_pool", [ctx.tensor(a["self"])], {"output_size": tuple(int(d) for d in out)})
    return (y, "")


# -- ONNX ------------------------------------------------------------------------------------------

def _onnx_window(ctx, with_dilation: bool) -> tuple[str, dict]:
    from .conv import onnx_pads  # noqa: PLC0415

    x = ctx.input(0)
    nsp = len(ctx.shape(x)) - 2
    if nsp not in (1, 2):
        raise ctx.unsupported(f"{nsp}-D pooling is not supported (1-D and 2-D are)")
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape"))
    stride = tuple(int(s) for s in ctx.attr("strides", (1,) * nsp))
    dilation = tuple(int(d) for d in ctx.attr("dilations", (1,) * nsp))
    if not with_dilation and dilation != (1,) * nsp:
        raise ctx.unsupported(f"dilations {list(dilation)} are not supported for this pooling")
    pads = onnx_pads(ctx, ctx.shape(x)[2:], kernel, stride, dilation, nsp)
    if pads[:nsp] != pads[nsp:]:
        raise ctx.unsupported(f"asymmetric pooling pads {list(pads)} are not supported (begin and end must match)")
    attrs = {"kernel": kernel, "stride": stride, "padding": pads[:nsp], "ceil_mode": bool(ctx.attr("ceil_mode", 0))}
    if with_dilation:
        attrs["dilation"] = dilation
    return x, attrs


@converts_onnx("MaxPool")
def _from_onnx_max_pool(ctx, node):
    if ctx.output_used(1):
        raise ctx.unsupported("MaxPool's Indices output is not supported; only the pooled values are")
    if int(ctx.attr("storage_order", 0)) != 0:
        raise ctx.unsupported("MaxPool storage_order=1 is not supported")
    x, attrs = _onnx_window(ctx, True)
    return ctx.emit1("max_pool", [x], attrs), ""


@converts_onnx("AveragePool")
def _from_onnx_avg_pool(ctx, node):
    x, attrs = _onnx_window(ctx, ctx.opset >= 19)
    attrs.pop("dilation", None)
    if ctx.opset >= 19 and tuple(ctx.attr("dilations", ())) not in ((), (1,) * len(attrs["kernel"])):
        raise ctx.unsupported("AveragePool with dilations is not supported")
    attrs["count_include_pad"] = bool(ctx.attr("count_include_pad", 0))
    return ctx.emit1("avg_pool", [x], attrs)


@converts_onnx("GlobalAveragePool", "GlobalMaxPool")
def _from_onnx_global_pool(ctx, node):
    x = ctx.input(0)
    nsp = len(ctx.shape(x)) - 2
    if nsp not in (1, 2):
        raise ctx.unsupported(f"{nsp}-D global pooling is not supported (1-D and 2-D are)")
    op = "adaptive_avg_pool" if node.op_type == "GlobalAveragePool" else "adaptive_max_pool"
    return ctx.emit1(op, [x], {"output_size": (1,) * nsp})
