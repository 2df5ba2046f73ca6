"""Dead-code elimination: drop nodes none of whose outputs reach a graph output, then drop
tensors (including constants) that nothing reads or writes."""

from __future__ import annotations

from ..ir.graph import Graph


def run(graph: Graph) -> Graph:
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    out = graph.copy()
    out.nodes = kept[::-1]
    out.remove_unused_tensors()
    return out
