"""linear: y = x @ W^T + b over the last dimension, with an optional fused clamp (ReLU, ReLU6).

Sources: aten.linear. W is [out, in] as in nn.Linear; x may have any leading dimensions.

Optimised kernels (mb_linear_f32_opt.c over the register-tiled micro-kernels of mb_gemm_f32_opt.c),
for a constant W of layers with at least MIN_MACS: "gemm4x4" (4 or more rows: 4 rows x 4 outputs
per tile) and "matvec" (fewer rows: 4 outputs at a time). Both read W re-laid-out offline in panels
of 4 outputs (`weight_panels`, the same number of floats as W).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import CLAMP_ATTRS, OpDef, Prop, Variant, apply_clamp, converts, converts_onnx, numel, register


def _infer(node, ins):
    x, w, b = ins
    if x.dtype != DType.float32 or w.dtype != DType.float32:
        raise ValueError(f"linear takes float32, got {x.dtype.value} and {w.dtype.value}")
    if len(w.shape) != 2 or not x.shape or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not match weight {list(w.shape)}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias {list(b.shape)} does not match weight {list(w.shape)}")
    return [(x.shape[:-1] + (w.shape[0],), DType.float32)]


def _reference(node, args):
    x, w, b = args
    y = np.matmul(x.astype(np.float64), w.astype(np.float64).T)
    if b is not None:
        y = y + b
    return [apply_clamp(y.astype(np.float32), node)]


def _emit(ctx, node):
    x, w, b = node.inputs
    out_features, in_features = ctx.shape(w)
    rows = numel(ctx.shape(x)[:-1])
    bias = ctx.ptr(b) if b else "NULL"
    if node.kernel:
        wp = ctx.relayout(w, "panels4", weight_panels)
        scratch = ctx.scratch(node) if node.name in ctx.plan.scratch else "NULL"
        return (f"mb_linear_f32_opt({ctx.ptr(x)}, {wp}, {bias}, {ctx.ptr(node.outputs[0])}, "
                f"{rows}, {in_features}, {out_features}, {ctx.clamp(node)}, {scratch});")
    return (f"mb_linear_f32({ctx.ptr(x)}, {ctx.ptr(w)}, {bias}, {ctx.ptr(node.outputs[0])}, "
            f"{rows}, {in_features}, {out_features}, {ctx.clamp(node)});")


def _macs(node, ins, outs):
    return numel(outs[0].shape) * ins[1].shape[1]


# -- optimised kernels (passes/select_kernels.py) -------------------------------------------------

# Below this many MACs a layer keeps the reference kernel: it costs at most a few ten thousand
# instructions there, and a model made only of such layers keeps the smaller code.
MIN_MACS = 1024


def weight_panels(w: np.ndarray) -> np.ndarray:
    """W [out, in] in panels of 4 outputs (mb_gemm_f32_opt.h), same size as W: [out // 4][in][4], then
    the last out % 4 outputs as [in][out % 4]."""
    out_features, in_features = w.shape
    full = out_features // 4
    head = w[:4 * full].reshape(full, 4, in_features).transpose(0, 2, 1).reshape(-1)
    return np.concatenate([head, w[4 * full:].T.reshape(-1)])


def _rows(ins) -> int:
    return numel(ins[0].shape[:-1])


def _applies(node, ins, outs) -> bool:
    return ins[1].is_constant and _macs(node, ins, outs) >= MIN_MACS


def _scratch(node, ins, outs) -> int:
    """Bytes of 4 input rows packed (when rows >= 4)."""
    return 16 * ins[1].shape[1] if _rows(ins) >= 4 else 0


_OPT = ("mb_gemm_f32_opt", "mb_linear_f32_opt")

register(OpDef(
    name="linear", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_linear",),
    attrs=CLAMP_ATTRS, num_inputs=(3, 3), macs=_macs, props=frozenset({Prop.FUSED_CLAMP}),
    doc="y = clamp(x @ W^T + b)",
    variants=(
        Variant("gemm4x4", lambda node, ins, outs: _applies(node, ins, outs) and _rows(ins) >= 4, _OPT, _scratch,
                doc="4 rows x 4 outputs per register tile (rows packed into scratch), W in panels of 4 outputs"),
        Variant("matvec", lambda node, ins, outs: _applies(node, ins, outs) and _rows(ins) < 4, _OPT, _scratch,
                doc="fewer than 4 rows: 4 outputs at a time, W in panels of 4 outputs streamed 16 floats per load"),
    ),
))


@converts("aten.linear.default")
def _from_linear(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("linear", [ctx.tensor(a["input"]), ctx.tensor(a["weight"]), ctx.optional_tensor(a["bias"])])


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Gemm")
def _from_onnx_gemm(ctx, node):
    """Y = alpha * A' @ B' + beta * C (A' = A or A^T, B' = B or B^T). A constant B with a 1-D (or
    absent) C is a linear layer (weights [N, K], as torch stores them); the rest is a matmul."""
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    trans_a, trans_b = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    a = ctx.input(0)
    if len(ctx.shape(a)) != 2:
        raise ctx.unsupported(f"Gemm needs a 2-D A, got shape {list(ctx.shape(a))}")
    if trans_a:
        a = ctx.emit1("permute", [a], {"perm": (1, 0)})
    b_const, c_const = ctx.const(1), ctx.const(2)
    n = None
    if b_const is not None:
        weight = np.asarray(b_const, dtype=np.float32)
        weight = weight if trans_b else weight.T  # -> [N, K]
        n = weight.shape[0]
    # C as a bias: absent, ignored (beta 0), or a constant scalar / [N] / [1, N] row
    c_ok = not ctx.has_input(2) or beta == 0 or (
        c_const is not None and c_const.ndim <= 2 and c_const.size in (1, n) and (c_const.ndim < 2 or c_const.shape[0] == 1))
    if b_const is not None and c_ok:
        weight = weight * np.float32(alpha) if alpha != 1.0 else weight
        bias = ""
        if ctx.has_input(2) and beta != 0:
            c = np.broadcast_to(np.asarray(c_const, dtype=np.float32).reshape(-1), (n,)) * np.float32(beta)
            bias = ctx.constant(np.ascontiguousarray(c, dtype=np.float32), "bias")
        return ctx.emit1("linear", [a, ctx.constant(np.ascontiguousarray(weight), "weight"), bias])
    b = ctx.input(1)
    if trans_b:
        b = ctx.emit1("permute", [b], {"perm": (1, 0)})
    c = ctx.input(2) if ctx.has_input(2) and beta != 0 else ""
    return ctx.emit1("matmul", [a, b, c], {"alpha": alpha, "beta": beta})
