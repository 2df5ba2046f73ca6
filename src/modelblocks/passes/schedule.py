"""Memory-aware execution order: reorder the nodes of a graph with branches (residual blocks,
inception-like blocks, attention's q/k/v) so that fewer activation bytes are alive at once.

The measure is the arena's lower bound for an order: the most bytes of arena buffers (tensors and
scratch, after views, in-place ops and in-place concats of `memory.liveness`) alive at one step.
Candidate orders:

- the original order (what torch.export traced: the order of the user's `forward`);
- greedy list scheduling: at each step run the ready node that adds the fewest bytes (bytes it
  allocates minus bytes it frees), ties to the node that reads the most recently produced tensor
  (finish the current branch), then to the original position;
- depth-first orders from the outputs that evaluate the inputs of each node one subgraph at a time,
  the subgraph with the most activation bytes first (Sethi-Ullman style), or the least first.

Every candidate is a topological order (checked); the pass keeps the one with the lowest bound,
the original order on ties. All ops are pure, so any topological order computes the same values.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..ir.graph import Graph, Node
from ..memory.liveness import analyze_storage
from ..ops.registry import Prop, get_op


def peak_live_bytes(graph: Graph) -> int:
    """The arena lower bound of the graph in its current order (max over steps of live bytes)."""
    buffers = analyze_storage(graph).buffers
    events: dict[int, int] = {}
    for b in buffers:
        events[b.first_use] = events.get(b.first_use, 0) + b.size
        events[b.last_use + 1] = events.get(b.last_use + 1, 0) - b.size
    peak = live = 0
    for t in sorted(events):
        live += events[t]
        peak = max(peak, live)
    return peak


def _is_topological(graph: Graph, order: Sequence[Node]) -> bool:
    if len(order) != len(graph.nodes) or {n.name for n in order} != {n.name for n in graph.nodes}:
        return False
    ready = set(graph.inputs) | {t.name for t in graph.constants()}
    for n in order:
        if any(i and i not in ready for i in n.inputs):
            return False
        ready.update(n.outputs)
    return True


def _with_order(graph: Graph, order: Sequence[Node]) -> Graph:
    out = graph.copy()
    out.nodes = list(order)
    return out


def _deps(graph: Graph) -> tuple[dict[str, list[int]], dict[int, list[int]]]:
    """preds[node index] = indices of the nodes producing its inputs; succs likewise."""
    producer = {o: k for k, n in enumerate(graph.nodes) for o in n.outputs}
    preds, succs = {}, {k: [] for k in range(len(graph.nodes))}
    for k, n in enumerate(graph.nodes):
        ps = sorted({producer[i] for i in n.inputs if i and i in producer})
        preds[k] = ps
        for p in ps:
            succs[p].append(k)
    return preds, succs


def _greedy(graph: Graph) -> list[Node]:
    nodes = graph.nodes
    preds, succs = _deps(graph)
    alias_root = {name: name for name in graph.tensors}
    for n in nodes:
        if get_op(n.op).has(Prop.ALIAS):
            alias_root[n.outputs[0]] = alias_root[n.inputs[0]]
    outputs = {alias_root[o] for o in graph.outputs}
    arena = {r for r in set(alias_root.values())
             if r not in outputs and r not in graph.inputs and not graph.tensors[r].is_constant}
    pending: dict[str, int] = {}  # alias group root -> reads not yet run
    for n in nodes:
        for i in {alias_root[i] for i in n.inputs if i}:
            pending[i] = pending.get(i, 0) + 1
    missing = {k: len(preds[k]) for k in range(len(nodes))}
    ready = [k for k in range(len(nodes)) if missing[k] == 0]
    last_made: dict[str, int] = {}
    order: list[Node] = []
    step = 0
    while ready:
        def cost(k: int):
            n = nodes[k]
            alloc = 0 if get_op(n.op).has(Prop.ALIAS) else sum(
                graph.tensors[o].nbytes for o in n.outputs if alias_root[o] in arena)
            freed = sum(graph.tensors[r].nbytes for r in {alias_root[i] for i in n.inputs if i}
                        if r in arena and pending.get(r, 0) == 1)
            recent = max((last_made.get(alias_root[i], -1) for i in n.inputs if i), default=-1)
            return (alloc - freed, -recent, k)

        k = min(ready, key=cost)
        ready.remove(k)
        n = nodes[k]
        order.append(n)
        for r in {alias_root[i] for i in n.inputs if i}:
            pending[r] -= 1
        for o in n.outputs:
            last_made[alias_root[o]] = step
        step += 1
        for s in succs[k]:
            missing[s] -= 1
            if missing[s] == 0:
                ready.append(s)
    return order


def _dfs(graph: Graph, largest_first: bool) -> list[Node]:
    nodes = graph.nodes
    preds, _ = _deps(graph)
    # activation bytes of each node's ancestor cone (itself included), as a bit set of node indices
    cone: list[int] = []
    for k, n in enumerate(nodes):
        bits = 1 << k
        for p in preds[k]:
            bits |= cone[p]
        cone.append(bits)
    size = [sum(graph.tensors[o].nbytes for o in n.outputs) for n in nodes]

    def cone_bytes(k: int) -> int:
        bits, total, j = cone[k], 0, 0
        while bits:
            if bits & 1:
                total += size[j]
            bits >>= 1
            j += 1
        return total

    weight = [cone_bytes(k) for k in range(len(nodes))]
    producer = {o: k for k, n in enumerate(nodes) for o in n.outputs}
    roots = []
    for o in graph.outputs:
        if o in producer and producer[o] not in roots:
            roots.append(producer[o])
    roots += [k for k in range(len(nodes)) if k not in roots]  # nothing is dead after DCE; be safe
    done: set[int] = set()
    order: list[Node] = []
    for r in roots:
        stack: list[tuple[int, bool]] = [(r, False)]
        while stack:
            k, expanded = stack.pop()
            if k in done:
                continue
            if expanded:
                done.add(k)
                order.append(nodes[k])
                continue
            stack.append((k, True))
            ps = [p for p in preds[k] if p not in done]
            # the first to run goes last on the stack
            ps.sort(key=lambda p: (-weight[p] if largest_first else weight[p], p), reverse=True)
            stack.extend((p, False) for p in ps)
    return order


CANDIDATES: dict[str, Callable[[Graph], list[Node]]] = {
    "greedy": _greedy,
    "dfs_largest_first": lambda g: _dfs(g, True),
    "dfs_smallest_first": lambda g: _dfs(g, False),
}


def best_order(graph: Graph) -> tuple[str, list[Node], dict[str, int]]:
    """(name of the winning order, its nodes, lower bound of every candidate by name)."""
    bounds = {"original": peak_live_bytes(graph)}
    best_name, best_nodes = "original", list(graph.nodes)
    for name, make in CANDIDATES.items():
        order = make(graph)
        if not _is_topological(graph, order):
            continue  # a bug in a heuristic must never break a model: skip it
        bounds[name] = peak_live_bytes(_with_order(graph, order))
        if bounds[name] < bounds[best_name]:
            best_name, best_nodes = name, order
    return best_name, best_nodes, bounds


def run(graph: Graph) -> Graph:
    if len(graph.nodes) < 3:
        return graph
    _name, order, _bounds = best_order(graph)
    return _with_order(graph, order)
