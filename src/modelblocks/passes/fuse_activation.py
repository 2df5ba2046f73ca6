"""Fuse a clamp activation (ReLU, ReLU6, Hardtanh, clamp) into the op that produces its input when
that op's kernel applies a clamp to its output (Prop.FUSED_CLAMP: linear, conv, ...), its output
feeds only the clamp, and it is not a graph output. Saves one pass over the tensor and its buffer."""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ops.registry import Prop, get_op
from .fusion import fold_into_producers


def _tighter(lo_a, lo_b, hi_a, hi_b):
    lo = lo_b if lo_a is None else (lo_a if lo_b is None else max(lo_a, lo_b))
    hi = hi_b if hi_a is None else (hi_a if hi_b is None else min(hi_a, hi_b))
    return lo, hi


def run(graph: Graph) -> Graph:
    return fold_into_producers(
        graph, lambda g, node: node.inputs[:1] if get_op(node.op).has(Prop.CLAMP_ACTIVATION) else (), _absorb)


def _absorb(out: Graph, node: Node, x: str, prod: Node) -> Node | None:
    if not get_op(prod.op).has(Prop.FUSED_CLAMP):
        return None
    lo, hi = _tighter(prod.attrs.get("act_min"), node.attrs["min"], prod.attrs.get("act_max"), node.attrs["max"])
    if lo is not None and hi is not None and lo > hi:  # disjoint ranges: not one clamp
        return None
    return prod.replace(attrs={**prod.attrs, "act_min": lo, "act_max": hi})
