"""matmul: batched matrix product with broadcast batch dims, optional added term and clamp.

    y = clamp(alpha * (a @ b) + beta * c)

a is (..., M, K), b is (..., K, N) (both rank >= 2), y is (broadcast(...), M, N), and the
optional c broadcasts to y's shape. Sources: aten.matmul (1-D operands are viewed as a row or
column and the extra dim removed afterwards, as torch defines), aten.mm, aten.bmm, aten.mv,
aten.dot, aten.addmm and aten.baddbmm (beta, alpha). Either operand may be a constant weight or
an activation. The kernel walks the batch dims with per-operand strides (0 on broadcast dims),
so broadcasting never copies. The optimised kernel "tiled4x4" (mb_matmul_f32_opt.c) computes 4x4
register tiles: 4 rows of a packed into scratch, 4 columns of b read in place.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .binary import broadcast_strides, collapse
from .registry import CLAMP_ATTRS, MAX_RANK, Attr, OpDef, Prop, Variant, apply_clamp, converts, converts_onnx, numel, register



def _out_shape(a_shape, b_shape) -> tuple[int, ...]:
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ValueError(f"matmul operands must have rank >= 2, got {list(a_shape)} and {list(b_shape)}")
    if a_shape[-1] != b_shape[-2]:
        raise ValueError(f"inner dimensions differ: {list(a_shape)} @ {list(b_shape)}")
    batch = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    return batch + (a_shape[-2], b_shape[-1])


def _infer(node, ins):
    a, b, c = ins
    for t in (a, b, c):
        if t is not None and t.dtype != DType.float32:
            raise ValueError(f"matmul takes float32, got {t.dtype.value}")
    out = _out_shape(a.shape, b.shape)
    if len(out) - 2 > MAX_RANK:
        raise ValueError(f"more than {MAX_RANK} batch dimensions")
    if c is not None and tuple(np.broadcast_shapes(c.shape, out)) != out:
        raise ValueError(f"added term {list(c.shape)} does not broadcast to the product's shape {list(out)}")
    return [(out, DType.float32)]


def _reference(node, args):
    a, b, c = args
    y = np.matmul(a.astype(np.float64), b.astype(np.float64)) * node.attrs["alpha"]
    if c is not None:
        y = y + node.attrs["beta"] * c.astype(np.float64)
    return [apply_clamp(y.astype(np.float32), node)]


def _emit(ctx, node):
    a, b, c = node.inputs
    out = ctx.shape(node.outputs[0])
    m, k, n = ctx.shape(a)[-2], ctx.shape(a)[-1], out[-1]
    batch = list(out[:-2])
    a_bs = broadcast_strides(ctx.shape(a), tuple(batch) + (m, k))[:-2]
    b_bs = broadcast_strides(ctx.shape(b), tuple(batch) + (k, n))[:-2]
    c_full = broadcast_strides(ctx.shape(c), out) if c else [0] * len(out)
    dims, (a_bs, b_bs, c_bs) = collapse(batch, a_bs, b_bs, c_full[:-2])
    c_rs, c_cs = c_full[-2], c_full[-1]
    fn, scratch = ("mb_matmul_f32_opt", f", {ctx.scratch(node)}") if node.kernel else ("mb_matmul_f32", "")
    return (f"{fn}({ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(c) if c else 'NULL'}, {ctx.ptr(node.outputs[0])}, "
            f"{len(dims)}, {ctx.ints(dims, 'dims')}, {ctx.ints(a_bs, 'strides')}, {ctx.ints(b_bs, 'strides')}, "
            f"{ctx.ints(c_bs, 'strides')}, {m}, {k}, {n}, {c_rs}, {c_cs}, "
            f"{ctx.f(node.attrs['alpha'])}, {ctx.f(node.attrs['beta'])}, {ctx.clamp(node)}{scratch});")


def _macs(node, ins, outs):
    return numel(outs[0].shape) * ins[0].shape[-1]


# Below this many MACs a product keeps the reference kernel (see ops/linear.py MIN_MACS).
MIN_MACS = 1024


def _tiled_applies(node, ins, outs) -> bool:
    """Rows and columns to tile (a single row or column would waste 3/4 of each 4x4 tile)."""
    m, k = ins[0].shape[-2:]
    return m >= 2 and k >= 1 and outs[0].shape[-1] >= 2 and _macs(node, ins, outs) >= MIN_MACS


register(OpDef(
    name="matmul", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_matmul",),
    attrs={"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0), **CLAMP_ATTRS}, num_inputs=(3, 3),
    macs=_macs, props=frozenset({Prop.FUSED_CLAMP}),
    doc="y = clamp(alpha * (a @ b) + beta * c), batch dims broadcast",
    variants=(
        Variant("tiled4x4", _tiled_applies, ("mb_gemm_f32_opt", "mb_matmul_f32_opt"),
                lambda node, ins, outs: 32 * ins[0].shape[-1],
                doc="4x4 register tiles: 4 rows of a packed into scratch, 4 columns of b read in place"),
    ),
))


def _matmul(ctx, a_val, b_val, c_val=None, alpha=1.0, beta=1.0) -> str:
    """a @ b with torch.matmul's rules for 1-D operands, plus beta * c."""
    a, b = ctx.tensor(a_val), ctx.tensor(b_val)
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if not a_shape or not b_shape:
        raise ctx.unsupported("matmul of a 0-d tensor is not defined")
    if len(a_shape) == 1:
        a = ctx.emit1("reshape", [a], {"shape": (1, a_shape[0])})
    if len(b_shape) == 1:
        b = ctx.emit1("reshape", [b], {"shape": (b_shape[0], 1)})
    inputs = [a, b, ""]
    if c_val is not None and beta != 0:  # torch ignores c (even NaN/inf in it) when beta == 0
        c = ctx.tensor(c_val)
        if len(a_shape) == 1 or len(b_shape) == 1:
            raise ctx.unsupported("an added term with 1-D matmul operands is not supported")
        inputs[2] = c
    y = ctx.emit1("matmul", inputs, {"alpha": float(alpha), "beta": float(beta)})
    out = ctx.shape(y)
    if len(a_shape) == 1 or len(b_shape) == 1:
        final = list(out)
        if len(b_shape) == 1:
            final.pop(-1)
        if len(a_shape) == 1:
            final.pop(-2 if len(b_shape) > 1 else -1)
        y = ctx.emit1("reshape", [y], {"shape": tuple(final)})
    return y


def _scalar(ctx, value, what):
    if isinstance(value, (bool, int, float)):
        return float(value)
    raise ctx.unsupported(f"{what} must be a number, got {type(value).__name__}")


@converts("aten.matmul.default", "aten.mm.default", "aten.bmm.default", "aten.mv.default", "aten.dot.default")
def _from_matmul(ctx, fx):
    a = ctx.args(fx)
    first = a["self"]
    second = next(a[k] for k in ("other", "mat2", "vec", "tensor") if k in a)
    if str(fx.target) == "aten.bmm.default":
        ranks = (len(fx.args[0].meta["val"].shape), len(fx.args[1].meta["val"].shape))
        if ranks != (3, 3):
            raise ctx.unsupported(f"bmm needs two 3-D operands, got ranks {ranks}")
    return _matmul(ctx, first, second)


@converts("aten.addmm.default", "aten.baddbmm.default")
def _from_addmm(ctx, fx):
    a = ctx.args(fx)
    mat1 = a["mat1"] if "mat1" in a else a["batch1"]
    mat2 = a["mat2"] if "mat2" in a else a["batch2"]
    return _matmul(ctx, mat1, mat2, a["self"], _scalar(ctx, a["alpha"], "alpha"), _scalar(ctx, a["beta"], "beta"))


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("MatMul")
def _from_onnx_matmul(ctx, node):
    """numpy.matmul semantics, as torch.matmul (1-D operands included). x @ W with a constant 2-D W is
    a linear layer (weight W^T, as nn.Linear stores it; the frontend folds a following bias Add)."""
    w = ctx.const(1)
    if w is not None and w.ndim == 2 and len(ctx.input_shape(0)) >= 2 and ctx.const(0) is None:
        weight = np.ascontiguousarray(np.asarray(w, dtype=np.float32).T)
        return ctx.emit1("linear", [ctx.input(0), ctx.constant(weight, "weight"), ""])
    return _matmul(ctx, ctx.input_name(0), ctx.input_name(1))
