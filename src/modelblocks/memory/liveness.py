"""Where each tensor lives, and for how long.

Storage classes: graph inputs are read in place from the caller's pointer; constants live in
flash; a node output that is (a view of) a graph output is written straight into the caller's
output buffer; everything else, plus each node's scratch space, is a `Buffer` in the arena with
a lifetime `[first_use, last_use]` in node indices. ALIAS ops (reshape, flatten, squeeze) get no
storage of their own: they share their input's, whose lifetime grows to cover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph
from ..ops.registry import Prop, get_op


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int  # bytes
    first_use: int
    last_use: int
    alignment: int = 16


@dataclass
class StoragePlan:
    root: dict[str, str]  # tensor -> the tensor whose storage it shares (itself if none)
    kind: dict[str, str]  # root tensor -> "input" | "constant" | "output" | "arena"
    output_slot: dict[str, int]  # root tensor placed in the caller's output buffer -> output index
    buffers: list[Buffer] = field(default_factory=list)  # arena buffers (tensors and scratch)
    scratch: dict[str, str] = field(default_factory=dict)  # node name -> scratch buffer name
    copies_out: list[tuple[int, str]] = field(default_factory=list)  # (output index, tensor) to memcpy


def analyze_storage(graph: Graph) -> StoragePlan:
    root: dict[str, str] = {name: name for name in graph.tensors}
    for node in graph.nodes:
        if get_op(node.op).has(Prop.ALIAS):
            root[node.outputs[0]] = root[node.inputs[0]]

    kind: dict[str, str] = {}
    for name, t in graph.tensors.items():
        if root[name] != name:
            continue
        kind[name] = "constant" if t.is_constant else ("input" if name in graph.inputs else "arena")

    output_slot: dict[str, int] = {}
    copies_out: list[tuple[int, str]] = []
    for k, out in enumerate(graph.outputs):
        r = root[out]
        if kind[r] == "arena" and r not in output_slot:
            output_slot[r] = k
            kind[r] = "output"
        else:
            copies_out.append((k, out))

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    buffers: list[Buffer] = []
    scratch: dict[str, str] = {}
    end = len(graph.nodes)
    for idx, node in enumerate(graph.nodes):
        for o in node.outputs:
            first.setdefault(root[o], idx)
            last[root[o]] = max(last.get(root[o], idx), idx)
        for i in node.inputs:
            if i:
                last[root[i]] = max(last.get(root[i], idx), idx)
        op = get_op(node.op)
        ins = [graph.tensors[i] if i else None for i in node.inputs]
        outs = [graph.tensors[o] for o in node.outputs]
        size = op.scratch_bytes(node, ins, outs)
        if size:
            name = f"{node.name}__scratch"
            scratch[node.name] = name
            buffers.append(Buffer(name, int(size), idx, idx))
    for _k, out in copies_out:  # copied out after the last node
        last[root[out]] = end
    for name, k in kind.items():
        if k == "arena":
            buffers.append(Buffer(name, graph.tensors[name].nbytes, first.get(name, 0), last.get(name, first.get(name, 0))))
    buffers.sort(key=lambda b: (b.first_use, b.name))
    return StoragePlan(root, kind, output_slot, buffers, scratch, copies_out)
