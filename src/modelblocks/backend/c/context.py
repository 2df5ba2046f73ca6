"""What an op's C emitter sees: pointers to its tensors, shapes, and helpers for literals.

`emit(ctx, node) -> str` returns one C statement (a kernel call). Pointers are local variables
declared at the top of the run function; shape/stride tables go into `static const` arrays.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ...ir.dtypes import DType
from ...ir.graph import Graph, Node, Tensor
from ...memory.liveness import StoragePlan
from .cformat import c_identifier, float_literal, int_literal

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "arena", "in", "out", "main",
}


class EmitContext:
    def __init__(self, graph: Graph, plan: StoragePlan, offsets: dict[str, int], prefix: str):
        self.graph = graph
        self.plan = plan
        self.offsets = offsets
        self.prefix = prefix
        self.tables: list[str] = []  # static const arrays for model.c
        self._table_cache: dict[tuple, str] = {}
        self._var: dict[str, str] = {}  # root tensor -> C name
        self.referenced: dict[str, str] = {}  # roots the emitted code uses, in first-use order
        # names the generated code defines itself: the run function, the arena, output parameters
        self._taken: set[str] = {f"{prefix}_run", f"{prefix}_arena"} | {f"out{k}" for k in range(len(graph.outputs))}
        self.node: Node | None = None
        self.derived: list[dict] = []  # constants re-laid-out for a kernel (`relayout`), emitted with the weights
        self._derived_cache: dict[tuple[str, str], str] = {}

    # -- names ------------------------------------------------------------------------------
    def _fresh(self, base: str, symbol: bool = False) -> str:
        """A C identifier from `base` that nothing else in the generated code uses. Local names
        (symbol=False) must not look like kernel (`mb_`) or model (`<prefix>_`) symbols."""
        ident = c_identifier(base)
        if not symbol and (ident in C_KEYWORDS or ident.startswith("mb_") or ident.startswith(self.prefix + "_")
                           or re.fullmatch(r"out\d+", ident)):
            ident = f"t_{ident}"
        name, i = ident, 1
        while name in self._taken:
            name, i = f"{ident}_{i}", i + 1
        self._taken.add(name)
        return name

    def input_param(self, name: str) -> str:
        """The parameter name of a graph input (naming it does not count as a use)."""
        return self._name(name)

    def output_param(self, index: int) -> str:
        return f"out{index}"

    def var(self, tensor_name: str) -> str:
        """The C name through which kernels reach a tensor (aliases share their root's name)."""
        root = self.plan.root[tensor_name]
        self.referenced[root] = self._name(root)
        return self.referenced[root]

    def _name(self, tensor_name: str) -> str:
        root = self.plan.root[tensor_name]
        if root not in self._var:
            kind = self.plan.kind[root]
            if kind == "output":
                self._var[root] = self.output_param(self.plan.output_slot[root])
            elif kind == "constant":
                self._var[root] = self._fresh(f"{self.prefix}_{root}", symbol=True)
            else:
                self._var[root] = self._fresh(root)
        return self._var[root]

    def ptr(self, tensor_name: str) -> str:
        """A pointer to the tensor's first element: its root's name, plus the element offset when the
        tensor is a slice of its root's storage (a concat input written in place: `out0 + 64`)."""
        return self.ptr_at(tensor_name, 0)

    def ptr_at(self, tensor_name: str, element: int) -> str:
        """A pointer to element `element` of the tensor (counted in the tensor's own dtype)."""
        base = self.var(tensor_name)
        itemsize = self.graph.tensors[tensor_name].dtype.itemsize
        offset = self.plan.offset_of(tensor_name)
        if offset % itemsize:
            raise ValueError(f"tensor {tensor_name} sits at byte {offset} of its storage, not a multiple of "
                             f"its element size {itemsize}")
        k = offset // itemsize + element
        return f"({base} + {k})" if k else base

    def relayout(self, tensor_name: str, layout: str, make, with_tensors: Sequence[str] = ()) -> str:
        """The C symbol of constant `tensor_name` re-laid-out offline into the order an optimised kernel
        streams it: `make(data, *others) -> array` builds it (possibly padded, or packed into int32 words,
        or interleaved with the constants `with_tensors`, whose data come as `others`), once per
        (tensor, layout name, with_tensors). It goes into `<prefix>_weights.c` in place of the originals,
        which no kernel then reads (when another node still reads one, both are emitted)."""
        key = (tensor_name, layout, tuple(with_tensors))
        if key not in self._derived_cache:
            sources = [self.graph.tensors[n] for n in (tensor_name, *with_tensors)]
            for t in sources:
                if t.data is None:
                    raise ValueError(f"{t.name} is not a constant: it cannot be re-laid-out offline")
            data = np.ascontiguousarray(make(*(t.data for t in sources)))
            symbol = self._fresh(f"{self.prefix}_{self.plan.root[tensor_name]}_{layout}", symbol=True)
            self.derived.append({"name": f"{tensor_name} ({layout} layout)", "dtype": DType.from_numpy(data.dtype),
                                 "data": data, "symbol": symbol})
            self._derived_cache[key] = symbol
        return self._derived_cache[key]

    def tensor(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.tensors[name].shape

    def scratch(self, node: Node, ctype: str = "float") -> str:
        buf = self.plan.scratch[node.name]
        return f"({ctype} *)&{self.prefix}_arena.bytes[{self.offsets[buf]}]"

    # -- literals and tables ------------------------------------------------------------------
    @staticmethod
    def f(value: float) -> str:
        return float_literal(value)

    @staticmethod
    def i(value: int) -> str:
        return int_literal(value)

    def clamp(self, node: Node) -> str:
        lo, hi = node.attrs.get("act_min"), node.attrs.get("act_max")
        return f"{'-INFINITY' if lo is None else float_literal(lo)}, {'INFINITY' if hi is None else float_literal(hi)}"

    def ints(self, values: Sequence[int], hint: str = "dims") -> str:
        """Name of a `static const int32_t` table holding `values` (deduplicated)."""
        values = tuple(int(v) for v in values)
        key = ("int32_t", values)
        if key not in self._table_cache:
            name = self._fresh(f"{hint}_{len(self._table_cache)}")
            body = ", ".join(int_literal(v) for v in values) or "0"
            self.tables.append(f"static const int32_t {name}[{max(len(values), 1)}] = {{{body}}};")
            self._table_cache[key] = name
        return self._table_cache[key]

    def floats(self, values: np.ndarray, hint: str = "table") -> str:
        values = tuple(float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1))
        key = ("float", values)
        if key not in self._table_cache:
            name = self._fresh(f"{hint}_{len(self._table_cache)}")
            body = ", ".join(float_literal(v) for v in values) or "0.0f"
            self.tables.append(f"static const float {name}[{max(len(values), 1)}] = {{{body}}};")
            self._table_cache[key] = name
        return self._table_cache[key]
