"""The graph verifier, run after capture and after every pass.

Checks: unique names, every input defined before use (topological order), no dangling tensor,
registered ops with well-typed attributes, input counts, kernel variants that apply, and that each node's output shapes and
dtypes are the ones its op's rule infers. Messages name the node, its op, scope and source line,
and say what to change.
"""

from __future__ import annotations

from ..errors import GraphError, where
from .graph import Graph, Node


def _fail(node: Node | None, msg: str, after: str) -> GraphError:
    ctx = f" after pass '{after}'" if after else ""
    if node is None:
        return GraphError(f"invalid graph{ctx}: {msg}")
    return GraphError(f"invalid graph{ctx}: node {node.name}{where(node.scope, node.source, node.op)}: {msg}")


def verify(graph: Graph, after: str = "") -> None:
    from ..ops.registry import get_op, has_op  # noqa: PLC0415

    for name, t in graph.tensors.items():
        if t.name != name:
            raise _fail(None, f"tensor stored under {name!r} is named {t.name!r}", after)
        if any((not isinstance(d, int)) or d < 0 for d in t.shape):
            raise _fail(None, f"tensor {name} has a non-static or negative shape {t.shape}", after)
        if t.data is not None and (tuple(t.data.shape) != t.shape or t.data.dtype != t.dtype.numpy):
            raise _fail(None, f"constant {name} holds data {t.data.dtype}{list(t.data.shape)} "
                              f"but is declared {t.dtype.value}{list(t.shape)}", after)

    defined = set()
    for name in graph.inputs:
        if name not in graph.tensors:
            raise _fail(None, f"graph input {name} has no tensor", after)
        if graph.tensors[name].is_constant:
            raise _fail(None, f"graph input {name} is a constant", after)
        defined.add(name)
    defined.update(t.name for t in graph.constants())

    node_names = set()
    for node in graph.nodes:
        if node.name in node_names:
            raise _fail(node, "node name is used twice", after)
        node_names.add(node.name)
        if not has_op(node.op):
            raise _fail(node, f"op {node.op!r} is not registered", after)
        op = get_op(node.op)
        lo, hi = op.num_inputs
        if not lo <= len(node.inputs) <= hi:
            raise _fail(node, f"takes {lo}..{hi} inputs, got {len(node.inputs)}", after)
        for key, value in node.attrs.items():
            spec = op.attrs.get(key)
            if spec is None:
                raise _fail(node, f"unknown attribute {key!r} (the op takes {sorted(op.attrs)})", after)
            if not spec.check(value):
                raise _fail(node, f"attribute {key}={value!r} is not of kind {spec.kind}", after)
        try:
            op.full_attrs(node.attrs)
        except KeyError as exc:
            raise _fail(node, str(exc.args[0]), after) from None
        for i in node.inputs:
            if not i:
                continue
            if i not in graph.tensors:
                raise _fail(node, f"reads tensor {i!r} which does not exist (dangling reference)", after)
            if i not in defined:
                raise _fail(node, f"reads {i} before it is produced: nodes are not in topological order", after)
        for o in node.outputs:
            if o not in graph.tensors:
                raise _fail(node, f"writes tensor {o!r} which is not declared", after)
            if o in defined:
                raise _fail(node, f"writes {o}, which is already a graph input, constant or another node's output", after)
            defined.add(o)
        try:
            inferred = op.infer(node, [graph.tensors[i] if i else None for i in node.inputs])
        except Exception as exc:  # an op rule rejecting its inputs is a graph error, not a crash
            raise _fail(node, f"shape rule failed: {exc}", after) from exc
        if node.kernel:
            try:
                variant = op.variant(node.kernel)
            except KeyError as exc:
                raise _fail(node, str(exc.args[0]), after) from None
            if not variant.applies(node, [graph.tensors[i] if i else None for i in node.inputs],
                                   [graph.tensors[o] for o in node.outputs]):
                raise _fail(node, f"kernel variant {node.kernel!r} does not apply to this node's shapes or "
                                  "attributes: clear node.kernel (the reference kernel) or run select_kernels", after)
        if len(inferred) != len(node.outputs):
            raise _fail(node, f"op produces {len(inferred)} outputs, node declares {len(node.outputs)}", after)
        for o, (shape, dtype) in zip(node.outputs, inferred):
            t = graph.tensors[o]
            if tuple(shape) != t.shape or dtype != t.dtype:
                raise _fail(node, f"output {o} is declared {t.dtype.value}{list(t.shape)} "
                                  f"but the op gives {dtype.value}{list(shape)}", after)

    for name in graph.outputs:
        if name not in graph.tensors:
            raise _fail(None, f"graph output {name} has no tensor", after)
        if name not in defined:
            raise _fail(None, f"graph output {name} is never produced", after)
    used = set(graph.inputs) | set(graph.outputs)
    for node in graph.nodes:
        used.update(i for i in node.inputs if i)
        used.update(node.outputs)
    dangling = sorted(set(graph.tensors) - used)
    if dangling:
        raise _fail(None, f"tensors nobody reads or writes: {dangling[:10]} (run dead-code elimination)", after)
