"""Fold a constant per-channel add into the conv or linear that produces its input:
conv(x, w, b) + c -> conv(x, w, b + c) when c varies along the output channels only.

Exporters that translate TensorFlow write the bias as a separate add (tf2onnx's BiasAdd: Conv without
bias, then Add of a [C, 1, 1] constant, once the NHWC Transpose pairs around it are gone). Folding it
saves a pass over the tensor and lets a following BatchNorm fold and a ReLU fuse into the conv.

Applies when the producer is a `conv` (channel dim 1) or `linear` (last dim) with no fused clamp,
its output is read by the add only and is not a graph output, and the constant, padded to the
output's rank, has size 1 on every other dim. The add's own fused clamp moves to the producer.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Graph, Node
from .fusion import fold_into_producers

CHANNEL_DIM = {"conv": 1, "linear": -1}


def run(graph: Graph) -> Graph:
    return fold_into_producers(graph, lambda g, node: node.inputs if node.op == "add" else (), _absorb)


def _absorb(out: Graph, node: Node, x: str, prod: Node) -> Node | None:
    const = out.tensors[node.inputs[1] if node.inputs[0] == x else node.inputs[0]]
    if (not const.is_constant or prod.op not in CHANNEL_DIM or prod.attrs.get("act_min") is not None
            or prod.attrs.get("act_max") is not None or const.dtype != DType.float32):
        return None
    bias = _per_channel(const.data, out.tensors[x].shape, CHANNEL_DIM[prod.op])
    if bias is None or out.tensors[node.outputs[0]].shape != out.tensors[x].shape:
        return None
    w, b = prod.inputs[1], prod.inputs[2]
    if b and not out.tensors[b].is_constant:
        return None
    old = out.tensors[b].data.astype(np.float64) if b else 0.0
    new_b = out.add_constant(f"{b or w + '_bias'}_biasadd", (old + bias).astype(np.float32)).name
    return prod.replace(inputs=(prod.inputs[0], w, new_b) + prod.inputs[3:],
                        attrs={**prod.attrs, "act_min": node.attrs.get("act_min"), "act_max": node.attrs.get("act_max")})


def _per_channel(data: np.ndarray, shape: tuple[int, ...], dim: int) -> np.ndarray | None:
    """The constant as one value per channel of an output of `shape`, or None if it varies elsewhere."""
    if data.ndim > len(shape):
        return None
    full = data.reshape((1,) * (len(shape) - data.ndim) + data.shape).astype(np.float64)
    dim = dim % len(shape)
    if any(n != 1 for d, n in enumerate(full.shape) if d != dim) or full.shape[dim] not in (1, shape[dim]):
        return None
    return np.broadcast_to(full.reshape(-1), (shape[dim],)).copy()
