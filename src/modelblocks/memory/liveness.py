"""Where each tensor lives, and for how long.

Storage classes (`StoragePlan.kind` of a root tensor):

- "input": a graph input is read in place from the caller's pointer. It is never written (the
  run function takes it as `const T *`), never placed in the arena and never reused in place.
- "constant": constants live in flash (`const` arrays in `<prefix>_weights.c`).
- "output": a group of tensors whose storage is the caller's output buffer of one graph output
  (`output_slot`). The node producing the graph output writes straight into the caller's buffer,
  and so do the producers of every tensor merged into that group (see below). Graph outputs
  therefore take no arena space, and they are alive from their first write to the end of the run.
  A graph output that is an input, a constant, or a second output sharing a root is memcpy'd into
  its buffer after the last node (`copies_out`); its source stays alive until then.
- "arena": everything else, plus each node's scratch space (`OpDef.scratch_bytes`), is a `Buffer`
  in the arena with a lifetime `[first_use, last_use]` in node indices (inclusive).

Tensors share storage in groups; `root[t]` is the group's root tensor and `offset[t]` the byte
offset of `t` inside it (0 unless stated). Groups form, in execution order, from three rules:

1. ALIAS ops (reshape, flatten, squeeze, ...) get no storage: the output is the input's memory.
2. In place: an ELEMENTWISE op (output element i depends on input element i only; its kernel reads
   element i of every operand before it writes element i: `mb_unary.c`, `mb_binary.c`,
   `mb_prelu.c`, `mb_logical_not_u8`) writes into the buffer of an input whose group dies at this
   node, when that input has the output's shape and dtype and covers its whole group (broadcast
   operands do not qualify). The input's group must be an arena group: graph inputs, constants and
   graph outputs are never overwritten. If the output is itself a graph output, the input's group
   moves into the caller's output buffer instead (its producers write there directly).
3. Concat in place: when a concat's outer size is 1 (every dim before the axis is 1), each input is
   one contiguous slice of the output. Each input whose group is an arena group that dies at the
   concat, and that it covers whole, becomes part of the output's group at its slice's byte offset,
   so its producer writes directly into the output (or the caller's output buffer). The concat then
   copies only the other inputs (constants, graph inputs, tensors still used later, repeated
   inputs): `concat_copies[node] = [input positions to copy]`, empty when it emits no code.

A group's lifetime is the union of its members' lifetimes; every merge joins a group that dies at
node k with one that is born at node k, so no two tensors of a group are ever alive at the same
place at the same time, except the disjoint slices of a concat.
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
    offset: dict[str, int] = field(default_factory=dict)  # tensor -> byte offset inside its root (if not 0)
    inplace: dict[str, str] = field(default_factory=dict)  # node name -> input it overwrites (rule 2)
    concat_copies: dict[str, list[int]] = field(default_factory=dict)  # in-place concat -> inputs it copies

    def offset_of(self, tensor: str) -> int:
        return self.offset.get(tensor, 0)


class _Groups:
    """Union-find over tensors with a byte offset of each tensor inside its root."""

    def __init__(self, names):
        self.parent = {n: n for n in names}
        self.off = {n: 0 for n in names}

    def find(self, t: str) -> tuple[str, int]:
        path = []
        while self.parent[t] != t:
            path.append(t)
            t = self.parent[t]
        root, acc = t, 0
        for n in reversed(path):  # nearest the root first: make every offset relative to the root
            acc += self.off[n]
            self.off[n], self.parent[n] = acc, root
        return root, (self.off[path[0]] if path else 0)

    def attach(self, child_root: str, parent: str, offset: int) -> None:
        """Make root `child_root` a member of `parent`'s group at byte `offset` of parent's root."""
        proot, poff = self.find(parent)
        self.parent[child_root] = proot
        self.off[child_root] = poff + offset


def analyze_storage(graph: Graph, inplace: bool = True, alignment: int = 16) -> StoragePlan:
    """The storage plan of `graph` in its node order. `inplace=False` applies only rule 1 (views)."""
    tensors = graph.tensors
    end = len(graph.nodes)
    # raw lifetime of each tensor: written at first, read last at last (copies_out: after the end)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for idx, node in enumerate(graph.nodes):
        for o in node.outputs:
            first.setdefault(o, idx)
            last[o] = max(last.get(o, idx), idx)
        for i in node.inputs:
            if i:
                last[i] = max(last.get(i, idx), idx)

    groups = _Groups(tensors)
    kind: dict[str, str] = {}
    for name, t in tensors.items():
        kind[name] = "constant" if t.is_constant else ("input" if name in graph.inputs else "arena")

    # graph outputs: the first output of each arena root is written into the caller's buffer. Outputs
    # are marked up front (through the views that reach them) so in-place rules never overwrite them.
    alias_root = {name: name for name in tensors}
    for node in graph.nodes:
        if get_op(node.op).has(Prop.ALIAS):
            alias_root[node.outputs[0]] = alias_root[node.inputs[0]]
    output_slot: dict[str, int] = {}
    copies_out: list[tuple[int, str]] = []
    for k, out in enumerate(graph.outputs):
        r = alias_root[out]
        if kind[r] == "arena" and r not in output_slot:
            output_slot[r] = k
            kind[r] = "output"
        else:
            copies_out.append((k, out))
            last[out] = end
    for r in output_slot:
        last[r] = end

    # group lifetimes, kept on the group's root
    g_first = {n: first.get(n, 0) for n in tensors}
    g_last = {n: last.get(n, first.get(n, 0)) for n in tensors}

    def join(child_root: str, parent: str, offset: int) -> None:
        proot, _ = groups.find(parent)
        groups.attach(child_root, parent, offset)
        g_first[proot] = min(g_first[proot], g_first[child_root])
        g_last[proot] = max(g_last[proot], g_last[child_root])

    def covers_group(t: str) -> str | None:
        """The root of t's group if t is at offset 0 and as large as the root, else None."""
        r, off = groups.find(t)
        return r if off == 0 and tensors[t].nbytes == tensors[r].nbytes else None

    inplace_nodes: dict[str, str] = {}
    concat_copies: dict[str, list[int]] = {}
    for idx, node in enumerate(graph.nodes):
        op = get_op(node.op)
        if op.has(Prop.ALIAS):
            o = node.outputs[0]
            r, off = groups.find(node.inputs[0])
            join(o, r, off)
            continue
        if not inplace:
            continue
        if op.has(Prop.ELEMENTWISE) and len(node.outputs) == 1:
            _try_inplace(graph, node, idx, groups, kind, g_last, covers_group, join, inplace_nodes)
        elif node.op == "concat":
            _try_concat(graph, node, idx, groups, kind, g_last, covers_group, join, concat_copies)

    root = {name: groups.find(name)[0] for name in tensors}
    offset = {}
    for name in tensors:
        off = groups.find(name)[1]
        if off:
            offset[name] = off
    kind = {name: kind[name] for name in tensors if root[name] == name}

    buffers: list[Buffer] = []
    scratch: dict[str, str] = {}
    for idx, node in enumerate(graph.nodes):
        op = get_op(node.op)
        ins = [tensors[i] if i else None for i in node.inputs]
        outs = [tensors[o] for o in node.outputs]
        size = op.node_scratch_bytes(node, ins, outs)
        if size:
            name = f"{node.name}__scratch"
            scratch[node.name] = name
            buffers.append(Buffer(name, int(size), idx, idx, alignment))
    for name, k in kind.items():
        if k == "arena":
            buffers.append(Buffer(name, tensors[name].nbytes, g_first[name], max(g_last[name], g_first[name]), alignment))
    buffers.sort(key=lambda b: (b.first_use, b.name))
    return StoragePlan(root, kind, output_slot, buffers, scratch, copies_out, offset, inplace_nodes, concat_copies)


def _try_inplace(graph, node, idx, groups, kind, g_last, covers_group, join, inplace_nodes) -> None:
    out = node.outputs[0]
    t_out = graph.tensors[out]
    o_root, o_off = groups.find(out)
    if o_root != out or o_off or kind[out] not in ("arena", "output"):
        return
    for i in node.inputs:
        if not i:
            continue
        t_in = graph.tensors[i]
        if t_in.shape != t_out.shape or t_in.dtype != t_out.dtype:
            continue  # broadcast operand, or another element size
        r = covers_group(i)
        if r is None or kind[r] != "arena" or g_last[r] != idx:
            continue  # graph input/constant/output, a slice of something, or still needed later
        # another operand in the same storage must read the same element i (same shape)
        if any(j and j != i and groups.find(j)[0] == r and graph.tensors[j].shape != t_out.shape
               for j in node.inputs):
            continue
        if kind[out] == "output":  # the input's producers write into the caller's output buffer
            join(r, out, 0)
        else:
            join(out, r, 0)
        inplace_nodes[node.name] = i
        return


def _try_concat(graph, node, idx, groups, kind, g_last, covers_group, join, concat_copies) -> None:
    out = node.outputs[0]
    shape = graph.tensors[out].shape
    d = node.attrs["dim"]
    if any(s != 1 for s in shape[:d]):
        return  # the inputs are interleaved rows of the output, not contiguous slices
    o_root, o_off = groups.find(out)
    if o_root != out or o_off or kind[out] not in ("arena", "output"):
        return
    counts: dict[str, int] = {}
    for i in node.inputs:
        counts[i] = counts.get(i, 0) + 1
    placed, copied, offset = [], [], 0
    roots_seen: set[str] = set()
    for pos, i in enumerate(node.inputs):
        t = graph.tensors[i]
        r = covers_group(i)
        ok = (r is not None and counts[i] == 1 and kind[r] == "arena" and g_last[r] == idx
              and r not in roots_seen and t.dtype == graph.tensors[out].dtype)
        if ok:
            roots_seen.add(r)
            placed.append((r, offset))
        else:
            copied.append(pos)
        offset += t.nbytes
    # a copied input must not live in a group that is being moved into the output
    placed_roots = {r for r, _ in placed}
    if any(groups.find(node.inputs[pos])[0] in placed_roots for pos in copied):
        return
    if not placed:
        return
    for r, off in placed:
        join(r, out, off)
    concat_copies[node.name] = copied
