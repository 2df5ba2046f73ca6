"""Remove identity ops (dropout in eval mode, clone, contiguous, detach): every reader of the
output reads the input instead."""

from __future__ import annotations

from ..ir.graph import Graph
from ..ops.registry import Prop, get_op


def run(graph: Graph) -> Graph:
    rename: dict[str, str] = {}
    kept = []
    for node in graph.nodes:
        node = node.replace(inputs=tuple(rename.get(i, i) for i in node.inputs))
        if get_op(node.op).has(Prop.IDENTITY):
            rename[node.outputs[0]] = node.inputs[0]
            continue
        kept.append(node)
    out = graph.copy()
    out.nodes = kept
    out.outputs = [rename.get(o, o) for o in graph.outputs]
    out.remove_unused_tensors()
    return out
