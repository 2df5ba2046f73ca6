"""The IR: tensors with static shapes, nodes in execution order, and the graph that holds them.

`Tensor` and `Node` are frozen: passes build new ones (`dataclasses.replace`) and put them into
the `Graph`, which is a plain container with lookup helpers. Passes live in `passes/`, never
here, and the verifier (`ir/verify.py`) checks a graph after every pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from .dtypes import DType

AttrValue = Any  # int | float | bool | str | None | tuple of those


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per `axis`."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: QuantParams | None = None
    data: np.ndarray | None = None  # set for constants (weights), None for activations

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def same_as(self, other: "Tensor") -> bool:
        if (self.name, self.shape, self.dtype, self.quant) != (other.name, other.shape, other.dtype, other.quant):
            return False
        if (self.data is None) != (other.data is None):
            return False
        return self.data is None or (self.data.dtype == other.data.dtype and np.array_equal(self.data, other.data))

    def describe(self) -> str:
        return f"{self.name}: {self.dtype.value}{list(self.shape)}"


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    scope: str = ""  # module path the node came from, e.g. "blocks.0.attn"
    source: str = ""  # user's source line, e.g. "model.py:42"
    kernel: str = ""  # the op's C kernel variant (passes/select_kernels.py); "" is the reference kernel

    def attr(self, key: str) -> AttrValue:
        return self.attrs[key]

    def replace(self, **changes) -> "Node":
        return dataclasses.replace(self, **changes)


@dataclass
class Graph:
    name: str = "model"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    # -- building ---------------------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise ValueError(f"tensor name {tensor.name!r} is already used")
        self.tensors[tensor.name] = tensor
        return tensor

    def set_tensor(self, tensor: Tensor) -> None:
        self.tensors[tensor.name] = tensor

    def unique_name(self, base: str) -> str:
        base = base or "t"
        if base not in self.tensors and all(n.name != base for n in self.nodes):
            return base
        i = 1
        taken = self.tensors.keys() | {n.name for n in self.nodes}
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def add_constant(self, name: str, data: np.ndarray, dtype: DType | None = None) -> Tensor:
        data = np.asarray(data)
        dtype = dtype or DType.from_numpy(data.dtype)
        if data.dtype.kind in "iu" and dtype.numpy.kind in "iu" and data.size:
            info = np.iinfo(dtype.numpy)
            if data.min() < info.min or data.max() > info.max:
                raise ValueError(f"constant {name} holds values in [{data.min()}, {data.max()}], which do not fit "
                                 f"{dtype.value}")
        data = np.array(data, dtype=dtype.numpy, order="C", copy=True)
        return self.add_tensor(Tensor(self.unique_name(name), tuple(int(d) for d in data.shape), dtype, data=data))

    def rename_tensor(self, old: str, new: str) -> None:
        """Give a tensor a new (unused) name everywhere it appears."""
        if new in self.tensors:
            raise ValueError(f"tensor name {new!r} is already used")
        self.tensors = {(new if k == old else k): (dataclasses.replace(t, name=new) if k == old else t)
                        for k, t in self.tensors.items()}
        swap = lambda names: tuple(new if n == old else n for n in names)  # noqa: E731
        self.nodes = [n.replace(inputs=swap(n.inputs), outputs=swap(n.outputs)) for n in self.nodes]
        self.inputs = list(swap(self.inputs))
        self.outputs = list(swap(self.outputs))

    # -- queries ----------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producers(self) -> dict[str, Node]:
        return {out: n for n in self.nodes for out in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {name: [] for name in self.tensors}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        return users

    def constants(self) -> Iterator[Tensor]:
        return (t for t in self.tensors.values() if t.is_constant)

    def ops_count(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def remove_unused_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(i for i in n.inputs if i)
            used.update(n.outputs)
        for name in [t for t in self.tensors if t not in used]:
            del self.tensors[name]

    def copy(self) -> "Graph":
        return Graph(self.name, dict(self.tensors), list(self.nodes), list(self.inputs), list(self.outputs))

    def same_as(self, other: "Graph") -> bool:
        """Structural equality including constant data (used by the round-trip tests)."""
        if (self.name, self.inputs, self.outputs, self.nodes) != (other.name, other.inputs, other.outputs, other.nodes):
            return False
        if self.tensors.keys() != other.tensors.keys():
            return False
        return all(t.same_as(other.tensors[k]) for k, t in self.tensors.items())

    def summary(self) -> str:
        lines = [f"graph {self.name}: inputs {self.inputs} outputs {self.outputs}"]
        for n in self.nodes:
            ins = ", ".join(self.tensors[i].describe() if i else "-" for i in n.inputs)
            outs = ", ".join(self.tensors[o].describe() for o in n.outputs)
            lines.append(f"  {n.name} = {n.op}({ins}) -> {outs} {n.attrs} [{n.scope}]")
        return "\n".join(lines)


def iter_nonempty(names: Iterable[str]) -> Iterator[str]:
    """Input slots may be '' for an absent optional input (e.g. a Linear without bias)."""
    return (n for n in names if n)
