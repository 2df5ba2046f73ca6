"""Cancel permutes: move `permute` nodes down the graph until they meet their inverse, and fold the
ones that feed a flatten + linear into the linear's weight.

Channels-last exporters (tf2onnx for Keras, hand-written NHWC torch code) wrap every conv, pool and
BatchNorm in a Transpose pair, NHWC -> NCHW -> op -> NCHW -> NHWC, with layout-free ops (ReLU, bias
add, residual add, concat) between the pairs. Each permute is a full copy of its tensor. Rewrites,
applied until none applies:

- compose: permute(permute(x, p), q) -> permute(x, p[q]); dropped when that is the identity;
- merge: two permutes of the same tensor with the same perm -> one;
- sink: op(permute(x, p)) -> permute(op(x), p) when the op does not care about the layout:
  single-input elementwise ops (activations, clamp); broadcasting binary ops whose other operand
  is a permute with the same perm, a constant (permuted at compile time) or a broadcast scalar;
  concat of same-perm permutes (the concat dim moves to p[dim]); reduce (the axes move to p[axes],
  a smaller permute of the kept dims follows unless it is the identity);
- fold: linear(reshape(permute(x, p), [N, K]), W) with p keeping the batch dim first ->
  linear(reshape(x, [N, K]), W') with W's columns reordered, so the flatten after an NHWC conv
  stack costs nothing.

A permute is sunk only when every reader of it is a permute or an op it can sink through, so it
disappears rather than being copied; and the pass returns the graph unchanged unless the result
moves fewer bytes through permutes (a permute that meets no inverse stays where the user put it).
What remains are the permutes that change a graph input's or output's layout, and genuine
reorders (attention heads).

Runs before fold_batchnorm and fuse_activation, which need conv -> BatchNorm / ReLU adjacent.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.graph import Graph, Node, Tensor
from ..ops.registry import Prop, get_op

BROADCASTING = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")  # ops/binary.py


def run(graph: Graph) -> Graph:
    out = graph.copy()
    budget = 20 * len(graph.nodes) + 100  # every rewrite moves a permute downstream or removes one
    while budget and _rewrite_once(out):
        budget -= 1
    _drop_unused_permutes(out)
    if permute_bytes(out) >= permute_bytes(graph):
        return graph  # nothing cancelled: leave the graph as the user wrote it
    out.remove_unused_tensors()
    return out


def permute_bytes(graph: Graph) -> int:
    """Bytes that the graph's permutes copy (what this pass reduces)."""
    return sum(graph.tensors[n.outputs[0]].nbytes for n in graph.nodes if n.op == "permute")


# -- the rewrites -----------------------------------------------------------------------------------

def _rewrite_once(g: Graph) -> bool:
    producers, consumers = g.producers(), g.consumers()
    for node in g.nodes:
        if node.op != "permute":
            continue
        src = producers.get(node.inputs[0])
        if src is not None and src.op == "permute" and _compose(g, src, node):
            return True
        if _merge_twin(g, node, consumers):
            return True
        if _sink(g, node, producers, consumers):
            return True
    return False


def _compose(g: Graph, first: Node, second: Node) -> bool:
    p, q = first.attrs["perm"], second.attrs["perm"]
    perm = tuple(p[i] for i in q)
    x, z = first.inputs[0], second.outputs[0]
    if perm != tuple(range(len(perm))):
        _replace_node(g, second, [second.replace(inputs=(x,), attrs={"perm": perm})])
        return True
    if z in g.outputs and (x in g.inputs or x in g.outputs or g.tensors[x].is_constant):
        return False  # an output must stay a tensor of its own
    g.nodes.remove(second)
    _replace_uses(g, z, x)
    return True


def _merge_twin(g: Graph, node: Node, consumers) -> bool:
    for other in consumers.get(node.inputs[0], []):
        if other is not node and other.op == "permute" and other.attrs["perm"] == node.attrs["perm"]:
            first, later = sorted((node, other), key=g.nodes.index)
            if later.outputs[0] in g.outputs:
                continue
            g.nodes.remove(later)
            _replace_uses(g, later.outputs[0], first.outputs[0])
            return True
    return False


def _sink(g: Graph, perm_node: Node, producers, consumers) -> bool:
    """Move `perm_node` below one of its readers, if all of its readers allow it."""
    y = perm_node.outputs[0]
    readers = consumers.get(y, [])
    if y in g.outputs or not readers:
        return False
    plans = []
    for reader in readers:
        if reader.op == "permute":
            continue
        plan = _sink_plan(g, perm_node, reader, producers)
        if plan is None:
            return False
        plans.append(plan)
    if not plans:
        return False
    reader, rebuild = plans[0]
    _replace_node(g, reader, rebuild())
    return True


def _sink_plan(g: Graph, pn: Node, reader: Node, producers):
    """(reader, a function building its replacement nodes), or None when `pn` cannot pass `reader`."""
    p = pn.attrs["perm"]
    y = pn.outputs[0]
    x = pn.inputs[0]
    opdef = get_op(reader.op)
    if len(reader.outputs) != 1 or any(_per_axis(g, t) for t in (y, reader.outputs[0])):
        return None

    if opdef.has(Prop.ELEMENTWISE) and len(reader.inputs) == 1:
        return reader, lambda: _through(g, reader, (x,), reader.attrs, p)

    if reader.op in BROADCASTING and g.tensors[reader.outputs[0]].shape == g.tensors[y].shape:
        new_inputs = []
        for operand in reader.inputs:
            moved = _unpermuted_operand(g, operand, y, p, producers)
            if moved is None:
                return None
            new_inputs.append(moved)
        return reader, lambda: _through(g, reader, [_materialize(g, m, p) for m in new_inputs], reader.attrs, p)

    if reader.op == "concat":
        new_inputs = []
        for operand in reader.inputs:
            src = producers.get(operand)
            if src is not None and src.op == "permute" and src.attrs["perm"] == p:
                new_inputs.append(src.inputs[0])
            elif g.tensors[operand].is_constant:
                new_inputs.append(("constant", operand))
            else:
                return None
        attrs = {**reader.attrs, "dim": p[reader.attrs["dim"]]}
        return reader, lambda: _through(g, reader, [_materialize(g, m, p) for m in new_inputs], attrs, p)

    if reader.op == "reduce":
        axes = reader.attrs["axes"]
        new_axes = tuple(sorted(p[a] for a in axes))
        attrs = {**reader.attrs, "axes": new_axes}
        if reader.attrs["keepdim"]:
            after = p
        else:
            kept = [p[i] for i in range(len(p)) if i not in axes]
            after = tuple(int(r) for r in np.argsort(np.argsort(kept)))
        return reader, lambda: _through(g, reader, (x,), attrs, after)

    if reader.op == "reshape":
        return _fold_into_linear_plan(g, pn, reader)
    return None


def _per_axis(g: Graph, name: str) -> bool:
    quant = g.tensors[name].quant
    return quant is not None and quant.axis is not None


def _unpermuted_operand(g: Graph, operand: str, y: str, p: Sequence[int], producers):
    """What a broadcasting op's operand becomes once the permute p moves below the op: the permute's
    input, another same-perm permute's input, a constant to permute, or a scalar left as it is."""
    if operand == y:
        return producers[y].inputs[0]
    t = g.tensors[operand]
    src = producers.get(operand)
    if src is not None and src.op == "permute" and src.attrs["perm"] == tuple(p):
        return src.inputs[0]
    if t.is_constant and len(t.shape) <= len(p):
        return ("constant", operand)
    if all(d == 1 for d in t.shape) and len(t.shape) <= len(p):
        return operand
    return None


def _materialize(g: Graph, operand, p: Sequence[int]) -> str:
    """A constant operand permuted by the inverse of p, so that permuting the result by p restores it
    (broadcast to p's rank first); other operands are tensor names already."""
    if not isinstance(operand, tuple):
        return operand
    t = g.tensors[operand[1]]
    full = t.data.reshape((1,) * (len(p) - len(t.shape)) + t.shape)
    return g.add_constant(f"{t.name}_unpermuted", np.transpose(full, np.argsort(p)), t.dtype).name


def _through(g: Graph, reader: Node, inputs, attrs: dict, after: Sequence[int]) -> list[Node]:
    """reader applied to `inputs` (the unpermuted tensors), then the permute `after` to its old output."""
    after = tuple(int(a) for a in after)
    out_name = reader.outputs[0]
    old = g.tensors[out_name]
    node = reader.replace(inputs=tuple(inputs), attrs=attrs)
    if after == tuple(range(len(after))):
        return [node]
    mid = g.unique_name(f"{out_name}_unpermuted")
    shape, dtype = get_op(reader.op).infer(node, [g.tensors[i] if i else None for i in node.inputs])[0]
    g.add_tensor(Tensor(mid, tuple(shape), dtype, quant=old.quant))
    node = node.replace(outputs=(mid,))
    permute = Node(g.unique_name(f"{reader.name}_permute"), "permute", (mid,), (out_name,), {"perm": after},
                   scope=reader.scope, source=reader.source)
    return [node, permute]


def _fold_into_linear_plan(g: Graph, pn: Node, reshape: Node):
    """permute(x, p) -> reshape [N, K] -> linear(W) readers only: reorder W's columns instead."""
    p, x = pn.attrs["perm"], pn.inputs[0]
    x_shape = g.tensors[x].shape
    shape = tuple(reshape.attrs["shape"])
    if p[0] != 0 or len(shape) != 2 or shape[0] != x_shape[0] or reshape.outputs[0] in g.outputs:
        return None
    users = [n for n in g.nodes if reshape.outputs[0] in n.inputs]
    if not users or any(u.op != "linear" or u.inputs[0] != reshape.outputs[0] or not g.tensors[u.inputs[1]].is_constant
                        for u in users):
        return None
    # flat position j of the permuted tensor holds flat position idx[j] of x (batch dim aside)
    idx = np.arange(int(np.prod(x_shape[1:]))).reshape(x_shape[1:]).transpose([d - 1 for d in p[1:]]).reshape(-1)

    def rebuild() -> list[Node]:
        nodes = [reshape.replace(inputs=(x,))]
        for u in users:
            w = g.tensors[u.inputs[1]]
            reordered = np.empty_like(w.data)
            reordered[:, idx] = w.data
            w_new = g.add_constant(f"{w.name}_unpermuted", reordered, w.dtype).name
            _replace_node(g, u, [u.replace(inputs=(u.inputs[0], w_new) + u.inputs[2:])])
        return nodes

    return reshape, rebuild


# -- graph editing ----------------------------------------------------------------------------------

def _replace_node(g: Graph, old: Node, new: list[Node]) -> None:
    k = g.nodes.index(old)
    g.nodes[k:k + 1] = new


def _replace_uses(g: Graph, old: str, new: str) -> None:
    swap = lambda names: tuple(new if n == old else n for n in names)  # noqa: E731
    g.nodes = [n.replace(inputs=swap(n.inputs)) if old in n.inputs else n for n in g.nodes]
    g.outputs = list(swap(g.outputs))


def _drop_unused_permutes(g: Graph) -> None:
    while True:
        used = set(g.outputs) | {i for n in g.nodes for i in n.inputs}
        dead = [n for n in g.nodes if n.op == "permute" and n.outputs[0] not in used]
        if not dead:
            return
        for n in dead:
            g.nodes.remove(n)
