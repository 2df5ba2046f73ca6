"""Merging a node into the node that writes its input: the walk that fold_batchnorm, fold_bias_add and
fuse_activation share. Each pass only says which inputs to try and how the producer absorbs the node.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..ir.graph import Graph, Node


def fold_into_producers(graph: Graph, inputs_to_try: Callable[[Graph, Node], Iterable[str]],
                        absorb: Callable[[Graph, Node, str, Node], Node | None]) -> Graph:
    """For each node, for each input `x` from `inputs_to_try(graph, node)` that only this node reads
    and that is not a graph output, `absorb(graph, node, x, producer)` may return the producer changed
    to do the node's work too (new inputs or attributes; it may add constants to `graph`). The merged
    producer then writes the node's output, and the node is dropped."""
    out = graph.copy()
    producers = {o: k for k, n in enumerate(out.nodes) for o in n.outputs}
    consumers = out.consumers()
    dropped = set()
    for k, node in enumerate(out.nodes):
        for x in inputs_to_try(out, node):
            if x not in producers or x in out.outputs or len(consumers.get(x, [])) != 1:
                continue
            p = producers[x]
            merged = absorb(out, node, x, out.nodes[p])
            if merged is None:
                continue
            out.nodes[p] = merged.replace(outputs=(node.outputs[0],) + merged.outputs[1:])
            producers[node.outputs[0]] = p
            dropped.add(k)
            break
    out.nodes = [n for k, n in enumerate(out.nodes) if k not in dropped]
    out.remove_unused_tensors()
    return out
