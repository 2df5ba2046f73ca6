"""Fold batch_norm into the conv or linear that produces its input:
W'[o] = W[o] * scale[o], b'[o] = b[o] * scale[o] + shift[o].

Applies when the producer is a `conv` or `linear` with constant weights, no fused clamp yet,
its output read by the batch_norm only and not a graph output, and (for linear) a 2-D output,
so that BatchNorm's channel dimension 1 is the output-feature dimension. BatchNorm elsewhere
(after a ReLU, say) stays a cheap per-channel multiply-add.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from .fusion import fold_into_producers

FOLDABLE = ("conv", "linear")


def run(graph: Graph) -> Graph:
    return fold_into_producers(graph, lambda g, node: node.inputs[:1] if node.op == "batch_norm" else (), _absorb)


def _absorb(out: Graph, node: Node, x: str, prod: Node) -> Node | None:
    scale_t, shift_t = out.tensors[node.inputs[1]], out.tensors[node.inputs[2]]
    if prod.op not in FOLDABLE or prod.attrs.get("act_min") is not None or prod.attrs.get("act_max") is not None:
        return None
    w_name, b_name = prod.inputs[1], prod.inputs[2]
    w = out.tensors[w_name]
    if not w.is_constant or (b_name and not out.tensors[b_name].is_constant):
        return None
    if not (scale_t.is_constant and shift_t.is_constant):
        return None
    if prod.op == "linear" and len(out.tensors[x].shape) != 2:
        return None
    scale = scale_t.data.astype(np.float64)
    shift = shift_t.data.astype(np.float64)
    new_w = (w.data.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.data.ndim - 1))).astype(np.float32)
    bias = out.tensors[b_name].data.astype(np.float64) if b_name else np.zeros(w.shape[0])
    new_b = (bias * scale + shift).astype(np.float32)
    w_new = out.add_constant(f"{w_name}_bnfold", new_w).name
    b_new = out.add_constant(f"{b_name or w_name + '_bias'}_bnfold", new_b).name
    return prod.replace(inputs=(prod.inputs[0], w_new, b_new) + prod.inputs[3:])
