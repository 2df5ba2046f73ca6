"""Int8 weights, float activations: replace every linear / conv / embedding node whose weight is a
float32 constant by its int8-weights op (ops/w8.py: linear_w8, conv_w8, embedding_w8).

The weight becomes an int8 constant, symmetric per output channel (per row for an embedding table,
which is the same axis 0), plus a float32 constant of scales; the float weight is removed unless
something else still reads it. Activation tensors, node names, scopes and source lines are kept, so
the rest of the graph is untouched. No calibration is needed.

`run(graph, keep_float=())`: `keep_float` holds fnmatch patterns on `node.scope`; a pattern also
matches every scope below it ('blocks.0' matches 'blocks.0.attn.qkv'), and matching nodes stay
float. Not part of PIPELINE: api.compile(quantize="int8-weights") runs it after the float passes
(it must come after fold_batchnorm, which folds into float `conv` / `linear` weights).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Sequence

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, QuantParams, Tensor
from ..quant import arith

# float op -> (int8-weights op, index of the weight among the inputs)
W8_OPS: dict[str, tuple[str, int]] = {
    "linear": ("linear_w8", 1),
    "conv": ("conv_w8", 1),
    "embedding": ("embedding_w8", 0),
}


def scope_matches(scope: str, patterns: Sequence[str]) -> bool:
    """Whether `scope` matches one of the fnmatch `patterns`, or lies below a scope that does."""
    return any(fnmatchcase(scope, p) or fnmatchcase(scope, p + ".*") for p in patterns)


def _quantizable(t: Tensor) -> bool:
    return (t.is_constant and t.dtype == DType.float32 and len(t.shape) >= 2 and t.shape[0] > 0
            and bool(np.all(np.isfinite(t.data))))


def run(graph: Graph, keep_float: Sequence[str] = ()) -> Graph:
    if isinstance(keep_float, str):
        keep_float = (keep_float,)
    keep_float = tuple(keep_float)
    out = graph.copy()
    quantized: dict[str, tuple[str, str]] = {}  # float weight -> (int8 weight, scales); shared weights once
    replaced: set[str] = set()
    nodes: list[Node] = []
    for node in graph.nodes:
        entry = W8_OPS.get(node.op)
        if entry is None or scope_matches(node.scope, keep_float):
            nodes.append(node)
            continue
        op, k = entry
        wname = node.inputs[k]
        if not _quantizable(graph.tensors[wname]):
            nodes.append(node)
            continue
        if wname not in quantized:
            quantized[wname] = _quantize_weight(out, graph.tensors[wname])
        wq, scales = quantized[wname]
        replaced.add(wname)
        if op == "embedding_w8":
            inputs = (wq, scales, node.inputs[1])
        else:
            inputs = (node.inputs[0], wq, scales, node.inputs[2])
        nodes.append(node.replace(op=op, inputs=inputs))
    out.nodes = nodes
    still_read = {i for n in nodes for i in n.inputs} | set(out.outputs)
    for name in replaced - still_read:
        del out.tensors[name]
    return out


def _quantize_weight(out: Graph, w: Tensor) -> tuple[str, str]:
    scales = arith.symmetric_scales(w.data, axis=0)
    q = arith.quantize_symmetric(w.data, scales, axis=0)
    params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis=0)
    wq = out.add_tensor(Tensor(out.unique_name(f"{w.name}_q"), w.shape, DType.int8, params, q))
    sc = out.add_constant(f"{w.name}_scale", scales, DType.float32)
    return wq.name, sc.name
