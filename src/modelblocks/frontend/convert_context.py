"""What an op file's aten converter sees: the fx node's arguments, and a way to add IR nodes.

A converter is `fn(ctx, fx_node) -> value`, where value is an IR tensor name, or a tuple of
them for ops with several outputs. It reads arguments with `ctx.args(fx_node)` (bound to the
aten schema, defaults filled), turns fx values into IR tensor names with `ctx.tensor(...)`, and
adds IR nodes with `ctx.emit(op, inputs, attrs)`, which infers output types through the registry.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import GraphError, InputError, UnsupportedOpError, where
from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, Tensor
from ..ops.registry import get_op, normalize_dim


class ConvertContext:
    def __init__(self, graph: Graph, resolve_tensor, materialize_constant):
        self.graph = graph
        self._resolve = resolve_tensor  # fx value -> IR tensor name (materialising constants)
        self._materialize = materialize_constant  # fx value -> torch constant or None
        self.scope = ""
        self.source = ""
        self.target = ""
        self._node_base = "n"

    def at(self, target: str, scope: str, source: str, node_base: str) -> None:
        self.target, self.scope, self.source, self._node_base = target, scope, source, node_base

    # -- reading arguments ------------------------------------------------------------------------
    @staticmethod
    def args(fx_node) -> dict[str, Any]:
        """Arguments of an aten call by schema name, with schema defaults filled in."""
        schema = fx_node.target._schema
        bound: dict[str, Any] = {}
        for i, arg in enumerate(schema.arguments):
            if i < len(fx_node.args) and not arg.kwarg_only:
                bound[arg.name] = fx_node.args[i]
            elif arg.name in fx_node.kwargs:
                bound[arg.name] = fx_node.kwargs[arg.name]
            elif arg.has_default_value():
                bound[arg.name] = arg.default_value
            else:
                bound[arg.name] = None
        return bound

    def tensor(self, value, dtype: DType = DType.float32) -> str:
        """IR tensor name for an fx value; Python numbers become scalar constants of `dtype`."""
        if isinstance(value, (bool, int, float)):
            return self.constant(np.array(value, dtype=dtype.numpy), "scalar")
        return self._resolve(value)

    def optional_tensor(self, value) -> str:
        return "" if value is None else self.tensor(value)

    def constant_value(self, value) -> np.ndarray | None:
        """The data of an fx value if it is a compile-time constant (weights, folded values)."""
        if isinstance(value, (bool, int, float)):
            return np.array(value)
        const = self._materialize(value)
        return None if const is None else const

    def constant(self, data: np.ndarray, name: str = "const", dtype: DType | None = None) -> str:
        return self.graph.add_constant(name, np.asarray(data), dtype).name

    def dim(self, dim, rank: int) -> int:
        """A dimension argument normalised to 0..rank-1 (negative dims count from the end)."""
        try:
            return normalize_dim(int(dim), rank)
        except ValueError as exc:
            raise self.unsupported(str(exc)) from None

    def per_dim(self, value, count: int, what: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """An int argument given once or once per spatial dimension (stride, padding, kernel_size),
        as `count` ints; `default` when it is absent (None or [])."""
        if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
            if default is None:
                raise self.unsupported(f"{what} is missing")
            return default
        vals = tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        if len(vals) == 1 and count > 1:
            vals = vals * count
        if len(vals) != count:
            raise self.unsupported(f"{what} {list(vals)} does not have {count} values")
        return vals

    def info(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.tensors[name].shape

    # -- adding nodes -------------------------------------------------------------------------------
    def emit(self, op_name: str, inputs: Sequence[str], attrs: dict | None = None, *, hint: str = "") -> list[str]:
        """Append one IR node; returns its output tensor names (types from the op's shape rule)."""
        op = get_op(op_name)
        try:
            full = op.full_attrs(attrs or {})
        except KeyError as exc:
            raise UnsupportedOpError(f"{self.target}: {exc.args[0]}{where(self.scope, self.source)}") from None
        name = self.graph.unique_name(hint or self._node_base)
        node = Node(name, op_name, tuple(inputs), (), full, self.scope, self.source)
        ins = [self.graph.tensors[i] if i else None for i in inputs]
        try:
            types = op.infer(node, ins)
        except Exception as exc:
            raise UnsupportedOpError(
                f"{self.target} cannot be expressed as {op_name}: {exc}{where(self.scope, self.source)}") from None
        outs = []
        for k, (shape, dtype) in enumerate(types):
            out_name = self.graph.unique_name(name if len(types) == 1 else f"{name}_{k}")
            self.graph.add_tensor(Tensor(out_name, tuple(int(d) for d in shape), dtype))
            outs.append(out_name)
        self.graph.nodes.append(node.replace(outputs=tuple(outs)))
        return outs

    def emit1(self, op_name: str, inputs: Sequence[str], attrs: dict | None = None, *, hint: str = "") -> str:
        return self.emit(op_name, inputs, attrs, hint=hint)[0]

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.target}: {why}{where(self.scope, self.source)}")


def call_converter(converter, ctx, node, name: str, scope: str, source: str = ""):
    """converter(ctx, node), for both frontends: our own errors pass through, and a converter bug still
    says which op it was converting and where, instead of a traceback from deep inside."""
    try:
        return converter(ctx, node)
    except (UnsupportedOpError, GraphError, InputError):
        raise
    except Exception as exc:  # noqa: BLE001 (re-raised with the place)
        raise UnsupportedOpError(f"cannot convert {name}{where(scope, source)}: {type(exc).__name__}: {exc}") from exc
