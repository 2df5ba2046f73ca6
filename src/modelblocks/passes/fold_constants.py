"""Constant folding: a node whose inputs are all constants is evaluated once, at compile time,
with its NumPy reference, and its outputs become constants (flash) instead of computation."""

from __future__ import annotations

import dataclasses

from ..ir.graph import Graph
from ..ops.registry import get_op


def run(graph: Graph) -> Graph:
    out = graph.copy()
    kept = []
    for node in graph.nodes:
        present = [i for i in node.inputs if i]
        if present and all(out.tensors[i].is_constant for i in present):
            values = get_op(node.op).reference(node, [out.tensors[i].data if i else None for i in node.inputs])
            for name, value in zip(node.outputs, values):
                t = out.tensors[name]
                out.set_tensor(dataclasses.replace(t, data=value.astype(t.dtype.numpy).reshape(t.shape).copy()))
            continue
        kept.append(node)
    out.nodes = kept
    out.remove_unused_tensors()
    return out
