"""Fuse a clamp activation (ReLU, ReLU6, Hardtanh, clamp) into the op that produces its input when
that op's kernel applies a clamp to its output (Prop.FUSED_CLAMP: linear, conv, ...), its output
feeds only the clamp, and it is not a graph output. Saves one pass over the tensor and its buffer."""

from __future__ import annotations

from ..ir.graph import Graph
from ..ops.registry import Prop, get_op


def _tighter(lo_a, lo_b, hi_a, hi_b):
    lo = lo_b if lo_a is None else (lo_a if lo_b is None else max(lo_a, lo_b))
    hi = hi_b if hi_a is None else (hi_a if hi_b is None else min(hi_a, hi_b))
    return lo, hi


def run(graph: Graph) -> Graph:
    out = graph.copy()
    producers = {o: k for k, n in enumerate(out.nodes) for o in n.outputs}
    consumers = out.consumers()
    dropped = set()
    for k, node in enumerate(out.nodes):
        if not get_op(node.op).has(Prop.CLAMP_ACTIVATION):
            continue
        src = node.inputs[0]
        if src not in producers or src in out.outputs or len(consumers.get(src, [])) != 1:
            continue
        p = producers[src]
        prod = out.nodes[p]
        if not get_op(prod.op).has(Prop.FUSED_CLAMP):
            continue
        lo, hi = _tighter(prod.attrs.get("act_min"), node.attrs["min"], prod.attrs.get("act_max"), node.attrs["max"])
        if lo is not None and hi is not None and lo > hi:  # disjoint ranges: not one clamp
            continue
        out.nodes[p] = prod.replace(outputs=(node.outputs[0],) + prod.outputs[1:],
                                    attrs={**prod.attrs, "act_min": lo, "act_max": hi})
        producers[node.outputs[0]] = p
        dropped.add(k)
    out.nodes = [n for k, n in enumerate(out.nodes) if k not in dropped]
    out.remove_unused_tensors()
    return out
