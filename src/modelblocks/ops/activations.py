"""Elementwise unary ops (activations and math functions), all defined from one table.

Each row gives the IR op name, its typed attributes, the aten overloads it comes from, the NumPy
reference (computed in float64, rounded to float32) and how its attributes become the C kernel's
two float parameters `a` and `b`. `mb_unary.c` holds the matching C expression of one element in
one line per op (`MB_UNARY(name, expr)`); the per-op tests compare the two.

Clamp-like activations (ReLU, ReLU6, Hardtanh, clamp) are all the IR op `clamp`, so that
`passes/fuse_activation.py` can fold them into a producing kernel that supports FUSED_CLAMP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, Prop, converts, converts_onnx, numel, register

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    return _erf(np.asarray(x, dtype=np.float64)).astype(np.float64)


def _softplus(v, beta, threshold):
    bv = beta * v
    with np.errstate(over="ignore"):
        return np.where(bv > threshold, v, np.log1p(np.exp(np.minimum(bv, threshold))) / beta)


def _opt(value, default):
    return default if value is None else float(value)


@dataclass(frozen=True)
class Unary:
    name: str
    ref: Callable[[np.ndarray, dict], np.ndarray]  # float64 in, float64 out
    aten: dict[str, Callable[[dict], dict]]  # aten overload -> (bound aten args -> IR attrs)
    attrs: dict[str, Attr] = field(default_factory=dict)
    params: Callable[[dict], tuple[float, float]] = lambda a: (0.0, 0.0)
    props: frozenset = frozenset()


def _none(args):
    return {}


def _elu_attrs(a):
    if float(a["input_scale"]) != 1.0:
        raise ValueError("elu with input_scale != 1 is not supported")
    return {"alpha": float(a["alpha"]), "scale": float(a["scale"])}


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

UNARY = [
    Unary("clamp", lambda v, a: np.clip(v, _opt(a["min"], -np.inf), _opt(a["max"], np.inf)),
          {"aten.relu.default": lambda a: {"min": 0.0, "max": None},
           "aten.relu6.default": lambda a: {"min": 0.0, "max": 6.0},
           "aten.hardtanh.default": lambda a: {"min": float(a["min_val"]), "max": float(a["max_val"])},
           "aten.clamp.default": lambda a: {"min": None if a["min"] is None else float(a["min"]),
                                            "max": None if a["max"] is None else float(a["max"])},
           "aten.clamp_min.default": lambda a: {"min": float(a["min"]), "max": None},
           "aten.clamp_max.default": lambda a: {"min": None, "max": float(a["max"])}},
          {"min": Attr("opt_float", None), "max": Attr("opt_float", None)},
          lambda a: (_opt(a["min"], -math.inf), _opt(a["max"], math.inf)),
          frozenset({Prop.CLAMP_ACTIVATION})),
    Unary("leaky_relu", lambda v, a: np.where(v > 0, v, v * a["negative_slope"]),
          {"aten.leaky_relu.default": lambda a: {"negative_slope": float(a["negative_slope"])}},
          {"negative_slope": Attr("float", 0.01)}, lambda a: (a["negative_slope"], 0.0)),
    Unary("sigmoid", lambda v, a: 1.0 / (1.0 + np.exp(-v)), {"aten.sigmoid.default": _none}),
    Unary("tanh", lambda v, a: np.tanh(v), {"aten.tanh.default": _none}),
    Unary("gelu", lambda v, a: (0.5 * v * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))))
          if a["approximate"] == "tanh" else 0.5 * v * (1.0 + erf(v / math.sqrt(2.0))),
          {"aten.gelu.default": lambda a: {"approximate": a["approximate"]}},
          {"approximate": Attr("str", "none")}, lambda a: (1.0 if a["approximate"] == "tanh" else 0.0, 0.0)),
    Unary("silu", lambda v, a: v / (1.0 + np.exp(-v)), {"aten.silu.default": _none}),
    Unary("hardswish", lambda v, a: v * np.clip(v + 3.0, 0.0, 6.0) / 6.0, {"aten.hardswish.default": _none}),
    Unary("hardsigmoid", lambda v, a: np.clip(v + 3.0, 0.0, 6.0) / 6.0, {"aten.hardsigmoid.default": _none}),
    Unary("elu", lambda v, a: np.where(v > 0, a["scale"] * v, a["scale"] * a["alpha"] * np.expm1(v)),
          {"aten.elu.default": _elu_attrs,
           "aten.selu.default": lambda a: {"alpha": SELU_ALPHA, "scale": SELU_SCALE}},
          {"alpha": Attr("float", 1.0), "scale": Attr("float", 1.0)},
          lambda a: (a["alpha"] * a["scale"], a["scale"])),
    Unary("softplus", lambda v, a: _softplus(v, a["beta"], a["threshold"]),
          {"aten.softplus.default": lambda a: {"beta": float(a["beta"]), "threshold": float(a["threshold"])}},
          {"beta": Attr("float", 1.0), "threshold": Attr("float", 20.0)}, lambda a: (a["beta"], a["threshold"])),
    Unary("mish", lambda v, a: v * np.tanh(_softplus(v, 1.0, 20.0)), {"aten.mish.default": _none}),
    Unary("exp", lambda v, a: np.exp(v), {"aten.exp.default": _none}),
    Unary("log", lambda v, a: np.log(v), {"aten.log.default": _none}),
    Unary("sqrt", lambda v, a: np.sqrt(v), {"aten.sqrt.default": _none}),
    Unary("rsqrt", lambda v, a: 1.0 / np.sqrt(v), {"aten.rsqrt.default": _none}),
    Unary("reciprocal", lambda v, a: 1.0 / v, {"aten.reciprocal.default": _none}),
    Unary("abs", lambda v, a: np.abs(v), {"aten.abs.default": _none}),
    Unary("neg", lambda v, a: -v, {"aten.neg.default": _none}),
    Unary("erf", lambda v, a: erf(v), {"aten.erf.default": _none}),
    Unary("sin", lambda v, a: np.sin(v), {"aten.sin.default": _none}),
    Unary("cos", lambda v, a: np.cos(v), {"aten.cos.default": _none}),
    Unary("pow_scalar", lambda v, a: np.power(v, a["exponent"]),
          {"aten.pow.Tensor_Scalar": lambda a: {"exponent": float(a["exponent"])}},
          {"exponent": Attr("float")}, lambda a: (a["exponent"], 0.0)),
]


def _make(u: Unary) -> OpDef:
    def infer(node, ins):
        if ins[0].dtype != DType.float32:
            raise ValueError(f"{u.name} takes float32, got {ins[0].dtype.value}")
        return [(ins[0].shape, DType.float32)]

    def reference(node, args):
        with np.errstate(all="ignore"):
            return [np.asarray(u.ref(args[0].astype(np.float64), node.attrs)).astype(np.float32)]

    def emit(ctx, node):
        a, b = u.params(node.attrs)
        n = numel(ctx.shape(node.inputs[0]))
        return f"mb_{u.name}_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {n}, {ctx.f(a)}, {ctx.f(b)});"

    return OpDef(name=u.name, infer=infer, reference=reference, emit=emit, kernels=("mb_unary",),
                 attrs=u.attrs, num_inputs=(1, 1), props=frozenset({Prop.ELEMENTWISE}) | u.props,
                 doc=f"elementwise {u.name}")


def _converter(u: Unary, to_attrs: Callable[[dict], dict]):
    def convert(ctx, fx):
        args = ctx.args(fx)
        first = next(iter(args))
        return ctx.emit1(u.name, [ctx.tensor(args[first])], to_attrs(args))

    return convert


for _u in UNARY:
    register(_make(_u))
    for _target, _to_attrs in _u.aten.items():
        converts(_target)(_converter(_u, _to_attrs))


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("HardSigmoid")
def _from_onnx_hardsigmoid(ctx, node):
    """max(0, min(1, alpha * x + beta)): the hardsigmoid op for PyTorch's alpha 1/6, beta 0.5 (what
    torch.onnx writes), else a multiply-add and a clamp (ONNX's default alpha is 0.2)."""
    x = ctx.input(0)
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    if abs(alpha - 1.0 / 6.0) <= 1e-7 and beta == 0.5:
        return ctx.emit1("hardsigmoid", [x])
    y = ctx.emit1("mul", [x, ctx.constant(np.array(alpha, dtype=np.float32), "alpha")])
    y = ctx.emit1("add", [y, ctx.constant(np.array(beta, dtype=np.float32), "beta")])
    return ctx.emit1("clamp", [y], {"min": 0.0, "max": 1.0})


def _onnx_selu(ctx):
    return {"alpha": float(ctx.attr("alpha", SELU_ALPHA)) , "scale": float(ctx.attr("gamma", SELU_SCALE))}


# ONNX op type -> (IR op, ctx -> IR attrs)
ONNX_UNARY: dict[str, tuple[str, Callable]] = {
    "Relu": ("clamp", lambda ctx: {"min": 0.0, "max": None}),
    "Sigmoid": ("sigmoid", lambda ctx: {}),
    "Tanh": ("tanh", lambda ctx: {}),
    "LeakyRelu": ("leaky_relu", lambda ctx: {"negative_slope": float(ctx.attr("alpha", 0.01))}),
    "Gelu": ("gelu", lambda ctx: {"approximate": str(ctx.attr("approximate", "none"))}),
    "Erf": ("erf", lambda ctx: {}),
    "Sqrt": ("sqrt", lambda ctx: {}),
    "Exp": ("exp", lambda ctx: {}),
    "Log": ("log", lambda ctx: {}),
    "Abs": ("abs", lambda ctx: {}),
    "Neg": ("neg", lambda ctx: {}),
    "Reciprocal": ("reciprocal", lambda ctx: {}),
    "Sin": ("sin", lambda ctx: {}),
    "Cos": ("cos", lambda ctx: {}),
    "Elu": ("elu", lambda ctx: {"alpha": float(ctx.attr("alpha", 1.0)), "scale": 1.0}),
    "Selu": ("elu", _onnx_selu),
    "Softplus": ("softplus", lambda ctx: {}),
    "HardSwish": ("hardswish", lambda ctx: {}),
    "Mish": ("mish", lambda ctx: {}),
}


@converts_onnx(*ONNX_UNARY)
def _from_onnx_unary(ctx, node):
    op, to_attrs = ONNX_UNARY[node.op_type]
    try:
        attrs = to_attrs(ctx)
    except ValueError as exc:
        raise ctx.unsupported(str(exc)) from None
    if op == "gelu" and attrs["approximate"] not in ("none", "tanh"):
        raise ctx.unsupported(f"Gelu approximate={attrs['approximate']!r} is not supported")
    return ctx.emit1(op, [ctx.input(0)], attrs)


@converts_onnx("Clip")
def _from_onnx_clip(ctx, node):
    """Opset 11+: min and max are optional (constant) inputs; before: attributes."""
    if ctx.opset >= 11:
        bounds = []
        for i, what in ((1, "min"), (2, "max")):
            value = ctx.required_const(i, what) if ctx.has_input(i) else None
            bounds.append(None if value is None else float(np.asarray(value).reshape(-1)[0]))
        lo, hi = bounds
    else:
        lo, hi = ctx.attr("min", None), ctx.attr("max", None)
        lo, hi = (None if lo is None or lo <= -3.4e38 else float(lo)), (None if hi is None or hi >= 3.4e38 else float(hi))
    return ctx.emit1("clamp", [ctx.input(0)], {"min": lo, "max": hi})
