"""One registry entry per op: shape/dtype rule, NumPy reference, C emitter, cost, aten sources.

An op file (e.g. `ops/linear.py`) calls `register(OpDef(...))` for each IR op it defines and
decorates its converters with `@converts("aten.linear.default", ...)`. Nothing else in the
code base names ops by string: the frontend, interpreter, verifier and backend all look ops up
here. `ops/__init__.py` imports every op module, so adding an op is one new file plus its test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Node, Tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..backend.c.context import EmitContext
    from ..frontend.convert_context import ConvertContext
    from ..frontend.onnx_import import OnnxContext

REQUIRED = object()
MAX_RANK = 8  # MB_MAX_RANK in mb_common.h: most dimensions a broadcasting kernel walks


class Prop(str, Enum):
    """Op properties that passes query instead of naming ops."""

    ELEMENTWISE = "elementwise"  # output[i] depends on input[i] only (same shape)
    ALIAS = "alias"  # output is a view of input 0 with another shape: no code, no copy
    IDENTITY = "identity"  # output equals input 0 (dropout, clone): removed by a pass
    FUSED_CLAMP = "fused_clamp"  # kernel applies `act_min`/`act_max` to its output
    CLAMP_ACTIVATION = "clamp_activation"  # op is a clamp that FUSED_CLAMP producers can absorb


@dataclass(frozen=True)
class Attr:
    """A typed attribute. `kind` is one of: int, float, bool, str, ints, floats, and the same
    prefixed with `opt_` when None is allowed."""

    kind: str
    default: Any = REQUIRED

    def check(self, value: Any) -> bool:
        kind = self.kind
        if kind.startswith("opt_"):
            if value is None:
                return True
            kind = kind[4:]
        if kind == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if kind == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "str":
            return isinstance(value, str)
        if kind == "ints":
            return isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if kind == "floats":
            return isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)
        raise ValueError(f"unknown attribute kind {self.kind!r}")


TensorType = tuple[tuple[int, ...], DType]


def _no_macs(node: Node, ins: Sequence[Tensor | None], outs: Sequence[Tensor]) -> int:
    return 0


@dataclass(frozen=True)
class Variant:
    """An optimised C kernel of an op, chosen per node by `passes/select_kernels.py` where `applies`
    holds. It computes what the op's reference kernel computes (int8: bit for bit; float32: the same
    sum in another order, within 1e-6 relative), needs the kernel files `kernels` on top of the op's
    own, and `scratch_bytes` of arena scratch (e.g. an im2col buffer; it replaces the op's own). The op's `emit` reads
    `node.kernel` to call it."""

    name: str
    applies: Callable[[Node, Sequence[Tensor | None], Sequence[Tensor]], bool]
    kernels: tuple[str, ...] = ()
    scratch_bytes: Callable[[Node, Sequence[Tensor | None], Sequence[Tensor]], int] = _no_macs
    doc: str = ""


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: Callable[[Node, Sequence[Tensor | None]], list[TensorType]]
    reference: Callable[[Node, list[np.ndarray | None]], list[np.ndarray]]
    emit: Callable[["EmitContext", Node], str] | None  # None only for ALIAS ops
    kernels: tuple[str, ...] = ()  # kernel library files (without extension) the C needs
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    num_inputs: tuple[int, int] = (1, 1)  # (min, max) input slots
    macs: Callable[[Node, Sequence[Tensor | None], Sequence[Tensor]], int] = _no_macs
    scratch_bytes: Callable[[Node, Sequence[Tensor | None], Sequence[Tensor]], int] = _no_macs
    props: frozenset[Prop] = frozenset()
    doc: str = ""
    variants: tuple[Variant, ...] = ()  # optimised kernels, best first

    def has(self, prop: Prop) -> bool:
        return prop in self.props

    def variant(self, name: str) -> Variant | None:
        """The variant called `name`; None for "" (the reference kernel). KeyError when unknown."""
        if not name:
            return None
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"op {self.name} has no kernel variant {name!r}; it has "
                       f"{[v.name for v in self.variants] or 'only its reference kernel'}")

    def kernel_files(self, node: Node) -> tuple[str, ...]:
        v = self.variant(node.kernel)
        return self.kernels + (v.kernels if v else ())

    def node_scratch_bytes(self, node: Node, ins: Sequence[Tensor | None], outs: Sequence[Tensor]) -> int:
        """Arena scratch of the node with the kernel it runs."""
        v = self.variant(node.kernel)
        return int(v.scratch_bytes(node, ins, outs) if v else self.scratch_bytes(node, ins, outs))

    def full_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes with defaults filled in; raises KeyError naming what is missing or unknown."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise KeyError(f"op {self.name} has no attribute(s) {sorted(unknown)}; it takes {sorted(self.attrs)}")
        out = {}
        for key, spec in self.attrs.items():
            if key in attrs:
                out[key] = attrs[key]
            elif spec.default is REQUIRED:
                raise KeyError(f"op {self.name} needs attribute {key!r}")
            else:
                out[key] = spec.default
        return out


_OPS: dict[str, OpDef] = {}
_ATEN: dict[str, Callable[["ConvertContext", Any], Any]] = {}
_ONNX: dict[str, Callable[["OnnxContext", Any], Any]] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _OPS:
        raise ValueError(f"op {op.name!r} is registered twice")
    _OPS[op.name] = op
    return op


def converts(*aten_targets: str):
    """Decorate `fn(ctx, fx_node) -> value` as the converter for the named aten overloads."""

    return _registering(_ATEN, aten_targets, "aten target")


def _registering(table: dict, keys: Sequence[str], what: str):
    """The decorator that enters `fn` in `table` under each key, refusing a key entered twice."""

    def wrap(fn):
        for key in keys:
            if key in table:
                raise ValueError(f"{what} {key!r} has two converters")
            table[key] = fn
        return fn

    return wrap


def converts_onnx(*op_types: str):
    """Decorate `fn(ctx, onnx_node) -> value` as the converter for the named ONNX op types (default
    domain). The converter reads inputs and attributes through `ctx` (frontend/onnx_import.py's
    OnnxContext: ONNX defaults and opset differences handled there) and returns an IR tensor name, or
    a tuple of them (one per ONNX output; "" for an output it does not produce)."""

    return _registering(_ONNX, op_types, "ONNX op")


def get_op(name: str) -> OpDef:
    _load_all()
    try:
        return _OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; registered ops: {', '.join(sorted(_OPS))}") from None


def has_op(name: str) -> bool:
    _load_all()
    return name in _OPS


def all_ops() -> dict[str, OpDef]:
    _load_all()
    return dict(_OPS)


def aten_converter(target: str):
    _load_all()
    return _ATEN.get(target)


def supported_aten() -> list[str]:
    _load_all()
    return sorted(_ATEN)


def onnx_converter(op_type: str):
    _load_all()
    return _ONNX.get(op_type)


def supported_onnx() -> list[str]:
    _load_all()
    return sorted(_ONNX)


def _load_all() -> None:
    from . import _load_op_modules  # noqa: PLC0415  (import cycle: op modules import this one)

    _load_op_modules()


# -- helpers shared by op files ------------------------------------------------------------------

CLAMP_ATTRS = {"act_min": Attr("opt_float", None), "act_max": Attr("opt_float", None)}


def apply_clamp(y: np.ndarray, node: Node) -> np.ndarray:
    lo, hi = node.attrs.get("act_min"), node.attrs.get("act_max")
    if lo is not None:
        y = np.maximum(y, np.float32(lo))
    if hi is not None:
        y = np.minimum(y, np.float32(hi))
    return y


def same_as_input(node: Node, ins: Sequence[Tensor | None]) -> list[TensorType]:
    return [(ins[0].shape, ins[0].dtype)]


def numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def normalize_dim(dim: int, rank: int, node_name: str = "") -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise ValueError(f"dim {dim} out of range for rank {rank} in {node_name}")
    return dim % max(rank, 1)
