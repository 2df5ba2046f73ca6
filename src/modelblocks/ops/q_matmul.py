"""q_matmul: int8 batched matrix product with broadcast batch dimensions (both operands int8 per
tensor, e.g. q @ k^T and attn @ v in hand-written attention), and the int8 lowering rule of the
float `matmul` op.

Inputs: a int8 (..., M, K) with zero point `a_zp`, b int8 (..., K, N) with zero point `b_zp`; the
batch dims broadcast as in float matmul (numpy rules). Scalar attributes `mult`, `shift` spell the
real multiplier s_a * s_b / s_out (quant/arith.py).

    acc = sum_p (a[..., i, p] - a_zp) * (b[..., p, j] - b_zp)                       (int32)
    y[..., i, j] = clamp(requantize(acc, mult, shift) + out_zp, act_min, act_max)

Lowered from float matmul only when alpha == 1 and there is no added term (c); a fused clamp
becomes act_min/act_max. The accumulator bound K * 255 * 255 must stay below 2^31.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from ..quant.lowering import lowers
from .binary import broadcast_strides, collapse
from .matmul import _out_shape
from .q_linear import (FAST_ACC_LIMIT, acc_bound_ok, check_q_attrs, finish, input_params, multipliers_fit,
                       output_params_ok)
from .registry import MAX_RANK, Attr, OpDef, Variant, numel, register

AB_MAX = 255 * 255  # |(a - a_zp) * (b - b_zp)| for int8 values and zero points


def _infer(node, ins):
    a, b = ins
    check_q_attrs(node, ("a_zp", "b_zp", "out_zp"))
    if a.dtype != DType.int8 or b.dtype != DType.int8:
        raise ValueError(f"q_matmul takes int8 operands, got {a.dtype.value} and {b.dtype.value}")
    out = _out_shape(a.shape, b.shape)
    if len(out) - 2 > MAX_RANK:
        raise ValueError(f"more than {MAX_RANK} batch dimensions")
    if not 0 <= node.attrs["mult"] <= arith.INT32_MAX or not -31 <= node.attrs["shift"] <= 30:
        raise ValueError(f"mult {node.attrs['mult']} / shift {node.attrs['shift']} is not a requantization")
    if not acc_bound_ok(a.shape[-1], AB_MAX):
        raise ValueError(f"inner dimension {a.shape[-1]} may overflow the int32 accumulator")
    return [(out, DType.int8)]


def _reference(node, args):
    a, b = args
    at = node.attrs
    acc = np.matmul(a.astype(np.int64) - at["a_zp"], b.astype(np.int64) - at["b_zp"])
    return [finish(acc, at["mult"], at["shift"], at["out_zp"], at.get("act_min", arith.QMIN),
                   at.get("act_max", arith.QMAX))]


def _emit(ctx, node):
    a, b = node.inputs
    at = node.attrs
    out = ctx.shape(node.outputs[0])
    m, k, n = ctx.shape(a)[-2], ctx.shape(a)[-1], out[-1]
    batch = list(out[:-2])
    a_bs = broadcast_strides(ctx.shape(a), tuple(batch) + (m, k))[:-2]
    b_bs = broadcast_strides(ctx.shape(b), tuple(batch) + (k, n))[:-2]
    dims, (a_bs, b_bs) = collapse(batch, a_bs, b_bs)
    name, scratch = ("mb_q_matmul_s8_dsp", f", {ctx.scratch(node, 'int16_t')}") if node.kernel else ("mb_q_matmul_s8", "")
    return (f"{name}({ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, {len(dims)}, "
            f"{ctx.ints(dims, 'dims')}, {ctx.ints(a_bs, 'strides')}, {ctx.ints(b_bs, 'strides')}, {m}, {k}, {n}, "
            f"{ctx.i(at['a_zp'])}, {ctx.i(at['b_zp'])}, {ctx.i(at['mult'])}, {ctx.i(at['shift'])}, "
            f"{ctx.i(at['out_zp'])}, {ctx.i(at.get('act_min', arith.QMIN))}, "
            f"{ctx.i(at.get('act_max', arith.QMAX))}{scratch});")


def _dsp_applies(node, ins, outs):
    """mb_q_gemm.h's fast requantization: accumulators below 2^30 and a multiplier below 1."""
    return acc_bound_ok(ins[0].shape[-1], AB_MAX, 0, FAST_ACC_LIMIT) and node.attrs["shift"] <= 0


def _dsp_scratch(node, ins, outs):
    k2 = ins[0].shape[-1] + ins[0].shape[-1] % 2
    return 2 * k2 * (outs[0].shape[-1] + 2)  # b^T and two rows of a, int16


def _macs(node, ins, outs):
    return numel(outs[0].shape) * ins[0].shape[-1]


register(OpDef(
    name="q_matmul", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_q_matmul", "mb_quant"),
    attrs={"a_zp": Attr("int"), "b_zp": Attr("int"), "out_zp": Attr("int"), "mult": Attr("int"),
           "shift": Attr("int"), "act_min": Attr("int", arith.QMIN), "act_max": Attr("int", arith.QMAX)},
    num_inputs=(2, 2), macs=_macs,
    variants=(Variant("dsp", applies=_dsp_applies, kernels=("mb_q_matmul_opt", "mb_q_gemm", "mb_arm"),
                      scratch_bytes=_dsp_scratch,
                      doc="b^T and a's rows as int16, two rows x two columns by SMLAD"),),
    doc="int8 y = clamp(requant((a - a_zp) @ (b - b_zp)) + out_zp), batch dims broadcast",
))


@lowers("matmul")
def _lower_matmul(q, node) -> bool:
    a, b, c = node.inputs
    y = node.outputs[0]
    if c or float(node.attrs.get("alpha", 1.0)) != 1.0:
        return False
    at, bt = q.float_tensor(a), q.float_tensor(b)
    if len(at.shape) < 2 or len(bt.shape) < 2 or not acc_bound_ok(at.shape[-1], AB_MAX):
        return False
    try:
        s_a, _ = input_params(q, a)
        s_b, _ = input_params(q, b)
    except (KeyError, ValueError):
        return False
    p_out = q.params(y)
    if not output_params_ok(p_out) or not multipliers_fit([s_a * s_b / float(p_out.scale[0])]):
        return False

    aq, bq = q.int8(a), q.int8(b)
    (s_a, a_zp), (s_b, b_zp) = q.qparams(aq), q.qparams(bq)
    yq = q.output(y)
    s_out, out_zp = q.qparams(yq)
    mult, shift = arith.quantize_multiplier(float(s_a) * float(s_b) / float(s_out))
    lo, hi = q.clamp_range(node, yq)
    q.emit("q_matmul", [aq, bq], [yq], {"a_zp": int(a_zp), "b_zp": int(b_zp), "out_zp": int(out_zp),
                                        "mult": int(mult), "shift": int(shift), "act_min": lo, "act_max": hi})
    return True
