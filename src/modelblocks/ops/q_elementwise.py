"""Int8 elementwise arithmetic: q_add (also sub), q_mul (also div by a constant) and q_requantize.

All tensors are int8 with per-tensor asymmetric parameters; every integer the kernels use is an
attribute, so the NumPy references below compute exactly what `mb_q_elementwise.c` computes.

- q_add (TFLite / CMSIS-NN arm_elementwise_add_s8), NumPy broadcasting:
  ra = requantize((a - a_zp) * 2^left_shift, a_mult, a_shift), rb likewise,
  y = clamp(requantize(ra + rb, out_mult, out_shift) + out_zp, act_min, act_max),
  with left_shift = 20, reals s_a / (2 max(s_a, s_b)), s_b / (2 max(s_a, s_b)) and
  2 max(s_a, s_b) / (2^20 s_out). `sub` is q_add with a negated b multiplier.
- q_mul: acc = (a - a_zp) * (b - b_zp), y = clamp(requantize(acc, mult, shift) + out_zp), real
  s_a s_b / s_out. `div` by a constant becomes q_mul by its reciprocal (quantized per tensor).
- q_requantize: int8 -> int8 with other parameters (concat inputs): acc = (x - in_zp) * 2^left_shift,
  y = clamp(requantize(acc, mult, shift) + out_zp), real s_in / s_out / 2^left_shift; the left
  shift keeps 20 fraction bits through the double rounding, so y is round(x_real / s_out) up to
  ties.

Lowering rules: float add, sub, mul (two operands, activations or constants through `q.int8`) and
div with a constant divisor; the output takes its calibrated parameters, and add / sub their fused
clamp as act_min / act_max. With a one-element constant operand (x * scale, x / 3, 1 - x) the op is a
function of x alone and, from LUT_MIN_ELEMENTS elements, lowers to a q_lut instead (ops/q_lut.py),
rounded once from the float result.

Optimised kernels of q_add (mb_q_elementwise_opt.c), for same-shape operands: "table" (each operand's
rescaling looked up in a 256-entry table built in scratch, or a multiply for the operand rescaled by
1/2; one requantization per element) from TABLE_MIN_ELEMENTS elements, "flat" (three requantizations
per element) below.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import QuantParams, Tensor
from ..quant import arith
from ..quant.lowering import QuantContext, lowers
from .binary import broadcast_strides, collapse
from .registry import MAX_RANK, Attr, OpDef, Prop, Variant, get_op, numel, register

ADD_LEFT_SHIFT = 20  # TFLite's left shift for int8 add
REQUANT_LEFT_SHIFT = 20  # (x - zp) * 2^20 fits int32 for any int8 x


_CLAMP = {"act_min": Attr("int", arith.QMIN), "act_max": Attr("int", arith.QMAX)}


def check_int8_attrs(node, zps=(), shifts=(), mults=(), name: str = "") -> None:
    """Range checks shared by the int8 ops' shape rules (raise ValueError on bad attributes)."""
    a = node.attrs
    for k in zps:
        if not arith.QMIN <= a[k] <= arith.QMAX:
            raise ValueError(f"{k} = {a[k]} is not an int8 zero point")
    for k in shifts:
        if not -31 <= a[k] <= 30:
            raise ValueError(f"{k} = {a[k]} is outside [-31, 30]")
    for k in mults:
        if not -arith.INT32_MAX <= a[k] <= arith.INT32_MAX:
            raise ValueError(f"{k} = {a[k]} does not fit int32")
    lo, hi = a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX)
    if not arith.QMIN <= lo <= hi <= arith.QMAX:
        raise ValueError(f"act_min {lo} / act_max {hi} must satisfy -128 <= act_min <= act_max <= 127")


def _out(v, node) -> np.ndarray:
    """v + out_zp clamped to [act_min, act_max], as int8 (int64 arithmetic: no overflow)."""
    a = node.attrs
    v = np.asarray(v, dtype=np.int64) + a["out_zp"]
    return np.clip(v, a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX)).astype(np.int8)


# -- q_add / q_mul ----------------------------------------------------------------------------------

def _binary_infer(name, zps, shifts, mults):
    def infer(node, ins):
        a, b = ins
        if a.dtype != DType.int8 or b.dtype != DType.int8:
            raise ValueError(f"{name} takes int8 operands, got {a.dtype.value} and {b.dtype.value}")
        check_int8_attrs(node, zps, shifts, mults)
        if name == "q_add":
            if not 0 <= node.attrs["left_shift"] <= 20:
                raise ValueError(f"left_shift {node.attrs['left_shift']} must be in [0, 20]")
            if node.attrs["a_shift"] > 0 or node.attrs["b_shift"] > 0:  # |real| <= 1/2: the int32 sum cannot overflow
                raise ValueError("q_add's input multipliers must be at most 1 (a_shift, b_shift <= 0)")
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        if len(shape) > MAX_RANK:
            raise ValueError(f"rank {len(shape)} exceeds {MAX_RANK}")
        return [(shape, DType.int8)]

    return infer


def _add_reference(node, args):
    a = node.attrs
    x, z = (v.astype(np.int64) for v in args)
    scale = np.int64(1) << a["left_shift"]
    ra = arith.requantize((x - a["a_zp"]) * scale, a["a_mult"], a["a_shift"])
    rb = arith.requantize((z - a["b_zp"]) * scale, a["b_mult"], a["b_shift"])
    return [_out(arith.requantize(ra + rb, a["out_mult"], a["out_shift"]), node)]


def _mul_reference(node, args):
    a = node.attrs
    x, z = (v.astype(np.int64) for v in args)
    return [_out(arith.requantize((x - a["a_zp"]) * (z - a["b_zp"]), a["mult"], a["shift"]), node)]


def _walk(ctx, node) -> str:
    a, b = node.inputs
    out = ctx.shape(node.outputs[0])
    dims, (sa, sb) = collapse(list(out), broadcast_strides(ctx.shape(a), out), broadcast_strides(ctx.shape(b), out))
    return (f"{ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, {ctx.ints(dims, 'dims')}, "
            f"{ctx.ints(sa, 'strides')}, {ctx.ints(sb, 'strides')}, {len(dims)}")


def _args(ctx, node, keys) -> str:
    return ", ".join(ctx.i(node.attrs.get(k, arith.QMIN if k == "act_min" else arith.QMAX)) for k in keys)


_ADD_KEYS = ("a_zp", "a_mult", "a_shift", "b_zp", "b_mult", "b_shift", "left_shift", "out_zp", "out_mult",
             "out_shift", "act_min", "act_max")
_MUL_KEYS = ("a_zp", "b_zp", "out_zp", "mult", "shift", "act_min", "act_max")

def _add_emit(ctx, node) -> str:
    if node.kernel:
        a, b = node.inputs
        tables = f", {ctx.scratch(node, 'int32_t')}" if node.kernel == "table" else ""
        return (f"mb_q_add_s8_{node.kernel}({ctx.ptr(a)}, {ctx.ptr(b)}, {ctx.ptr(node.outputs[0])}, "
                f"{numel(ctx.shape(a))}, {_args(ctx, node, _ADD_KEYS)}{tables});")
    return f"mb_q_add_s8({_walk(ctx, node)}, {_args(ctx, node, _ADD_KEYS)});"


def _add_flat_applies(node, ins, outs) -> bool:
    """Same shapes (no broadcast) and every multiplier below 1, the fast requantization's condition
    (|(x - zp) * 2^20| < 2^28, so the accumulators stay below 2^30)."""
    a = node.attrs
    return (ins[0].shape == ins[1].shape == outs[0].shape
            and max(a["a_shift"], a["b_shift"], a["out_shift"]) <= 0 and a["left_shift"] <= ADD_LEFT_SHIFT)


# Below this many elements "flat" runs instead of "table": building the tables (about 2,000 instructions on
# the M7) pays from 46 elements, but below 128 it saves under 3,000 instructions for 1-2 KiB of arena.
TABLE_MIN_ELEMENTS = 128
LINEAR_MULT = 1 << 30  # with shift 0: the real multiplier 1/2 of the operand with the larger scale


def _add_table_applies(node, ins, outs) -> bool:
    """"flat"'s conditions, enough elements, and an output requantization with a rounding shift of 1 to
    23 and a non-negative multiplier (mb_q_add_table_output folds the rounding and zero point into it)."""
    a = node.attrs
    return (_add_flat_applies(node, ins, outs) and numel(outs[0].shape) >= TABLE_MIN_ELEMENTS
            and -23 <= a["out_shift"] <= -1 and a["out_mult"] >= 0)


def _add_table_scratch(node, ins, outs) -> int:
    """One int32 table of 256 entries per operand, but none for an operand rescaled by exactly +-1/2 (the
    kernel multiplies it instead: mb_q_add_is_linear)."""
    a = node.attrs
    linear = any(abs(a[f"{k}_mult"]) == LINEAR_MULT and a[f"{k}_shift"] == 0 for k in "ab") and a["left_shift"] >= 1
    return 4 * 256 * (1 if linear else 2)


_ADD_OPT_KERNELS = ("mb_q_elementwise_opt", "mb_q_gemm", "mb_arm")

register(OpDef(
    name="q_add",
    infer=_binary_infer("q_add", ("a_zp", "b_zp", "out_zp"), ("a_shift", "b_shift", "out_shift"),
                        ("a_mult", "b_mult", "out_mult")),
    reference=_add_reference,
    emit=_add_emit,
    kernels=("mb_q_elementwise", "mb_quant"),
    variants=(Variant("table", applies=_add_table_applies, kernels=_ADD_OPT_KERNELS,
                      scratch_bytes=_add_table_scratch,
                      doc="same-shape operands, at least TABLE_MIN_ELEMENTS: an operand's rescaling from a "
                          "256-entry table built in scratch (or a multiply for the one rescaled by 1/2), "
                          "one SMMLAR requantization per element"),
              Variant("flat", applies=_add_flat_applies, kernels=_ADD_OPT_KERNELS,
                      doc="same-shape operands: one pass, three SMMULR requantizations per element"),),
    attrs={**{k: Attr("int") for k in _ADD_KEYS if k not in _CLAMP}, **_CLAMP},
    num_inputs=(2, 2), props=frozenset({Prop.ELEMENTWISE}),
    macs=lambda node, ins, outs: numel(outs[0].shape),
    doc="int8 broadcasting add (sub with a negative b_mult), TFLite's scheme with left_shift 20",
))

register(OpDef(
    name="q_mul",
    infer=_binary_infer("q_mul", ("a_zp", "b_zp", "out_zp"), ("shift",), ("mult",)),
    reference=_mul_reference,
    emit=lambda ctx, node: f"mb_q_mul_s8({_walk(ctx, node)}, {_args(ctx, node, _MUL_KEYS)});",
    kernels=("mb_q_elementwise", "mb_quant"),
    attrs={**{k: Attr("int") for k in _MUL_KEYS if k not in _CLAMP}, **_CLAMP},
    num_inputs=(2, 2), props=frozenset({Prop.ELEMENTWISE}),
    macs=lambda node, ins, outs: numel(outs[0].shape),
    doc="int8 broadcasting multiply: requantize((a - a_zp)(b - b_zp)) + out_zp",
))


# -- q_requantize ------------------------------------------------------------------------------------

_REQ_KEYS = ("in_zp", "left_shift", "mult", "shift", "out_zp", "act_min", "act_max")


def _requantize_infer(node, ins):
    if ins[0].dtype != DType.int8:
        raise ValueError(f"q_requantize takes int8, got {ins[0].dtype.value}")
    check_int8_attrs(node, ("in_zp", "out_zp"), ("shift",), ("mult",))
    if not 0 <= node.attrs["left_shift"] <= 23:
        raise ValueError(f"left_shift {node.attrs['left_shift']} must be in [0, 23]")
    return [(ins[0].shape, DType.int8)]


def _requantize_reference(node, args):
    a = node.attrs
    acc = (args[0].astype(np.int64) - a["in_zp"]) * (np.int64(1) << a["left_shift"])
    return [_out(arith.requantize(acc, a["mult"], a["shift"]), node)]


def _requantize_emit(ctx, node):
    x, y = node.inputs[0], node.outputs[0]
    return f"mb_q_requantize_s8({ctx.ptr(x)}, {ctx.ptr(y)}, {numel(ctx.shape(x))}, {_args(ctx, node, _REQ_KEYS)});"


register(OpDef(
    name="q_requantize", infer=_requantize_infer, reference=_requantize_reference, emit=_requantize_emit,
    kernels=("mb_q_elementwise", "mb_quant"),
    attrs={**{k: Attr("int") for k in _REQ_KEYS if k not in _CLAMP}, **_CLAMP},
    props=frozenset({Prop.ELEMENTWISE}),
    doc="int8 -> int8 with other (scale, zero point): requantize((x - in_zp) * 2^left_shift) + out_zp",
))


# -- helpers for lowering rules ------------------------------------------------------------------------

def input_params(q: QuantContext, name: str) -> tuple[float, int]:
    """(scale, zp) the int8 version of float tensor `name` has or will have, without building anything:
    an already lowered tensor keeps its own parameters (e.g. sigmoid's 1/256), others are calibrated."""
    if name in q.int8_of:
        return q.qparams(q.int8_of[name])
    p = q.params(name)
    return p.scale[0], p.zero_point[0]


def requantize_attrs(real: float, in_zp: int, out_zp: int, left_shift: int = REQUANT_LEFT_SHIFT) -> dict:
    """Attributes of q_requantize for real multiplier s_in / s_out (raises ValueError if too large)."""
    mult, shift = arith.quantize_multiplier(real / float(1 << left_shift))
    return {"in_zp": int(in_zp), "left_shift": left_shift, "mult": mult, "shift": shift, "out_zp": int(out_zp),
            "act_min": arith.QMIN, "act_max": arith.QMAX}


def requantize_to(q: QuantContext, x_q: str, params: QuantParams, base: str) -> str:
    """A q_requantize node taking int8 tensor `x_q` to `params`; returns the new int8 tensor (or x_q
    when the parameters already agree)."""
    s_in, zp_in = q.qparams(x_q)
    s_out, zp_out = params.scale[0], params.zero_point[0]
    if (s_in, zp_in) == (s_out, zp_out):
        return x_q
    attrs = requantize_attrs(float(s_in) / float(s_out), zp_in, zp_out)
    name = q.fresh(f"{base}_rq")
    q.graph.add_tensor(Tensor(name, q.graph.tensors[x_q].shape, DType.int8, params))
    q.emit("q_requantize", [x_q], [name], attrs, name=f"{base}_requantize")
    return name


def _check_per_tensor(q: QuantContext, names) -> None:
    """Raise ValueError (the node stays float) unless every tensor is float32 with per-tensor parameters."""
    for n in names:
        if q.float_tensor(n).dtype != DType.float32:
            raise ValueError(f"{n} is {q.float_tensor(n).dtype.value}, not float32")
        p = q.graph.tensors[q.int8_of[n]].quant if n in q.int8_of else q.params(n)
        if p is None or len(p.scale) != 1:
            raise ValueError(f"{n} does not have per-tensor int8 parameters")


def _multiplier(real: float, what: str) -> tuple[int, int]:
    try:
        return arith.quantize_multiplier(real)
    except ValueError:
        raise ValueError(f"the {what} multiplier {real:.3g} is out of the int8 scheme's range") from None


def _check_rank(q: QuantContext, y: str) -> None:
    if len(q.float_tensor(y).shape) > MAX_RANK:
        raise ValueError(f"rank {len(q.float_tensor(y).shape)} exceeds {MAX_RANK}")


# -- lowering rules ----------------------------------------------------------------------------------
# A rule raises ValueError with the reason when the node must stay float (the pass reports it).

# From this many elements a scalar operand makes the op a table (q_lut): its 256 bytes of flash are then no
# more than the tensor's own bytes, and a look-up costs about 6 instructions an element against q_mul's 50.
LUT_MIN_ELEMENTS = 256


def _scalar_operand(q: QuantContext, node) -> int | None:
    """Which input (0 or 1) is a one-element constant while the other, an activation of at least
    LUT_MIN_ELEMENTS elements, has the output's shape; None if the node is not such an op."""
    y = q.float_tensor(node.outputs[0])
    for k in (0, 1):
        c, x = node.inputs[k], node.inputs[1 - k]
        if (q.is_constant(c) and not q.is_constant(x) and numel(q.float_tensor(c).shape) == 1
                and q.float_tensor(x).shape == y.shape and numel(y.shape) >= LUT_MIN_ELEMENTS):
            return k
    return None


def _lower_scalar_as_table(q: QuantContext, node, k: int) -> bool:
    """x (op) c for a constant scalar c is a function of x alone: a q_lut whose table is the float op's own
    reference (with its fused clamp) on the 256 dequantized values, rounded once to the output grid. Exact
    to the output's step, and a table look-up per element."""
    c, x, y = node.inputs[k], node.inputs[1 - k], node.outputs[0]
    _check_per_tensor(q, (x, y))
    s_in, zp_in = input_params(q, x)
    s_out, zp_out = q.params(y).scale[0], q.params(y).zero_point[0]
    grid = arith.dequantize_values(np.arange(arith.QMIN, arith.QMAX + 1), s_in, zp_in)
    scalar = q.constant_data(c).astype(np.float32).reshape(())
    args = [grid, scalar] if k == 1 else [scalar, grid]
    values = np.asarray(get_op(node.op).reference(node, args)[0], dtype=np.float32).reshape(-1)
    table = arith.quantize_values(values, s_out, zp_out)
    xq = q.int8(x)
    q.emit("q_lut", [xq, q.constant(f"{node.name}_lut", table, DType.int8)], [q.output(y)])
    return True


@lowers("add", "sub")
def _lower_add(q: QuantContext, node) -> bool:
    """TFLite's add; with a scalar constant operand, a table. The fused clamp (a residual ReLU) becomes
    the int8 act_min / act_max under the output's parameters, which calibration took after the clamp."""
    k = _scalar_operand(q, node)
    if k is not None:
        return _lower_scalar_as_table(q, node, k)
    a, b = node.inputs
    y = node.outputs[0]
    _check_rank(q, y)
    _check_per_tensor(q, (a, b, y))
    (sa, za), (sb, zb) = input_params(q, a), input_params(q, b)
    so = q.params(y).scale[0]
    twice = 2.0 * max(float(sa), float(sb))
    a_mult, a_shift = _multiplier(float(sa) / twice, "input")
    b_mult, b_shift = _multiplier(float(sb) / twice, "input")
    out_mult, out_shift = _multiplier(twice / (float(1 << ADD_LEFT_SHIFT) * float(so)), "output")
    if node.op == "sub":
        b_mult = -b_mult
    qa, qb = q.int8(a), q.int8(b)
    yq = q.output(y)
    act_min, act_max = q.clamp_range(node, yq)
    q.emit("q_add", [qa, qb], [yq], {
        "a_zp": int(za), "a_mult": a_mult, "a_shift": a_shift, "b_zp": int(zb), "b_mult": b_mult,
        "b_shift": b_shift, "left_shift": ADD_LEFT_SHIFT, "out_zp": int(q.qparams(yq)[1]),
        "out_mult": out_mult, "out_shift": out_shift, "act_min": act_min, "act_max": act_max})
    return True


def _emit_mul(q: QuantContext, qa: str, qb: str, y: str, mult: int, shift: int) -> None:
    yq = q.output(y)
    q.emit("q_mul", [qa, qb], [yq], {
        "a_zp": int(q.qparams(qa)[1]), "b_zp": int(q.qparams(qb)[1]), "out_zp": int(q.qparams(yq)[1]),
        "mult": mult, "shift": shift, "act_min": arith.QMIN, "act_max": arith.QMAX})


@lowers("mul")
def _lower_mul(q: QuantContext, node) -> bool:
    """(a - a_zp)(b - b_zp) requantized; by a scalar constant (an attention scale), a table."""
    k = _scalar_operand(q, node)
    if k is not None:
        return _lower_scalar_as_table(q, node, k)
    a, b = node.inputs
    y = node.outputs[0]
    _check_rank(q, y)
    _check_per_tensor(q, (a, b, y))
    (sa, _), (sb, _) = input_params(q, a), input_params(q, b)
    mult, shift = _multiplier(float(sa) * float(sb) / float(q.params(y).scale[0]), "output")
    _emit_mul(q, q.int8(a), q.int8(b), y, mult, shift)
    return True


@lowers("div")
def _lower_div(q: QuantContext, node) -> bool:
    """x / c for a constant c without zeros: x * (1 / c), the reciprocal quantized per tensor; a scalar c
    gives a table."""
    a, b = node.inputs
    y = node.outputs[0]
    if not q.is_constant(b) or q.is_constant(a):
        raise ValueError("int8 div needs an activation divided by a constant")
    _check_rank(q, y)
    _check_per_tensor(q, (a, y))
    c = q.constant_data(b).astype(np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        recip = (1.0 / c).astype(np.float32)
    if c.size == 0 or np.any(c == 0) or not np.all(np.isfinite(recip)) or not np.all(np.isfinite(c)):
        raise ValueError("the divisor holds zeros or values whose reciprocal is not a finite float32")
    if _scalar_operand(q, node) == 1:
        return _lower_scalar_as_table(q, node, 1)
    pr = arith.params_from_range(float(recip.min()), float(recip.max()))
    sa, _ = input_params(q, a)
    mult, shift = _multiplier(float(sa) * pr.scale[0] / float(q.params(y).scale[0]), "output")
    rq = q.constant(f"{b}_recip_q", arith.quantize_values(recip, pr.scale[0], pr.zero_point[0]), DType.int8, pr)
    _emit_mul(q, q.int8(a), rq, y, mult, shift)
    return True
