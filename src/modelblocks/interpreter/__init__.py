"""The golden reference: executes an IR graph node by node with each op's NumPy reference.

It is deliberately simple (no planning, no aliasing) so that it can be trusted: the generated C
is checked against it, and it is checked against PyTorch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError, where
from ..ir.graph import Graph
from ..ops.registry import get_op


def bind_inputs(graph: Graph, inputs) -> dict[str, np.ndarray]:
    """Accepts a list (graph input order) or a dict by input name; checks shapes; casts dtypes."""
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "numpy"):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        items = [(k, inputs[k]) for k in graph.inputs if k in inputs]
        missing = [k for k in graph.inputs if k not in inputs]
        if missing:
            raise InputError(f"missing input(s) {missing}; the model takes {graph.inputs}")
    else:
        inputs = list(inputs)
        if len(inputs) != len(graph.inputs):
            raise InputError(f"the model takes {len(graph.inputs)} input(s) {graph.inputs}, got {len(inputs)}")
        items = list(zip(graph.inputs, inputs))
    bound = {}
    for name, value in items:
        t = graph.tensors[name]
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if tuple(arr.shape) != t.shape:
            raise InputError(f"input {name} must have shape {list(t.shape)}, got {list(arr.shape)}")
        bound[name] = np.array(arr.astype(t.dtype.numpy, copy=False), order="C")
    return bound


def run(graph: Graph, inputs: Sequence | Mapping, *, keep_all: bool = False):
    """Outputs in graph output order; with keep_all, the dict of every tensor's value."""
    values: dict[str, np.ndarray] = {t.name: t.data for t in graph.constants()}
    values.update(bind_inputs(graph, inputs))
    for node in graph.nodes:
        op = get_op(node.op)
        args = [values[i] if i else None for i in node.inputs]
        results = op.reference(node, args)
        if len(results) != len(node.outputs):
            raise AssertionError(f"reference of {node.op} returned {len(results)} values for {len(node.outputs)} outputs")
        for name, value in zip(node.outputs, results):
            t = graph.tensors[name]
            value = np.asarray(value)
            if tuple(value.shape) != t.shape:
                raise AssertionError(f"reference of {node.name}{where(node.scope, node.source, node.op)} "
                                     f"gave shape {value.shape}, IR says {t.shape}")
            values[name] = np.array(value.astype(t.dtype.numpy, copy=False), order="C")
    if keep_all:
        return values
    return [values[o] for o in graph.outputs]
