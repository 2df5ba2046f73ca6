"""Scaled dot-product attention spelled out in the float ops that hand-written attention uses, so that
int8 quantization lowers it like hand-written attention: an `attention` node without mask and
without causal masking becomes

    key_t  = permute(k)                 (..., E, S)     k^T
    scores = matmul(q, key_t)           (..., L, S)
    scaled = mul(scores, scale)         (left out when scale is 1)
    probs  = softmax(scaled, dim=-1)
    out    = matmul(probs, v)           (..., L, Ev)    named after the attention node

each node named after the attention node with a suffix, in its scope and source line (so reports and
--keep-float patterns still find it). With `enable_gqa` and fewer key/value heads Hkv than query
heads Hq, q is viewed as (..., Hkv, Hq / Hkv, L, E) and k, v as (..., Hkv, 1, S, E): the matmuls'
broadcasting hands every key/value head to its group of query heads, and a last reshape gives back
(..., Hq, L, Ev).

Not in PIPELINE: `api.compile(quantize="int8")` runs it on the float graph before calibration, so the
scores and probabilities get calibrated ranges; float compiles keep the fused attention kernel (S
floats of scratch instead of the L x S scores). An attention node this pass leaves alone stays float32,
with the reason `run` returns: a mask, causal masking (the int8 softmax cannot leave keys out, and an
additive mask of -inf or a huge negative has no int8 form that keeps the scores' precision), empty
dimensions, rows too long for the int8 softmax, or, with GQA, one batch dimension too many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, Tensor
from ..ops.q_linear import acc_bound_ok
from ..ops.q_matmul import AB_MAX
from ..ops.q_softmax import MAX_ROW
from ..ops.registry import MAX_RANK, get_op
from .quantize import scope_matches


@dataclass
class DecomposedGraph:
    graph: Graph
    kept: dict[str, str] = field(default_factory=dict)  # attention node left whole -> why it stays float32


def run(graph: Graph, keep_float: Sequence[str] = ()) -> DecomposedGraph:
    """Decompose every attention node that int8 can take; those under a `keep_float` pattern stay whole
    (the fused float kernel is faster and smaller than the float ops)."""
    out = graph.copy()
    out.nodes = []
    builder = _Builder(out, {*graph.tensors, *(n.name for n in graph.nodes)})
    kept = {}
    for node in graph.nodes:
        if node.op != "attention" or any(scope_matches(node.scope, p) for p in keep_float):
            out.nodes.append(node)
            continue
        why = why_not_decomposed(graph, node)
        if why:
            kept[node.name] = why
            out.nodes.append(node)
        else:
            builder.decompose(node)
    return DecomposedGraph(out, kept)


def why_not_decomposed(graph: Graph, node: Node) -> str:
    """'' when `node` (an attention) decomposes into ops int8 lowers, else why it stays float32."""
    q, k, v = (graph.tensors[i].shape for i in node.inputs[:3])
    if len(node.inputs) > 3 and node.inputs[3]:
        return "attention with a mask has no int8 form: the int8 softmax cannot leave keys out"
    if node.attrs["causal"]:
        return ("causal attention has no int8 form: the int8 softmax cannot leave keys out, and an additive mask "
                "of -inf or a huge negative would cost the scores their int8 precision")
    L, E, S, Ev = q[-2], q[-1], k[-2], v[-1]
    if min(L, E, S, Ev) == 0:
        return "attention over an empty dimension stays float32"
    if S > MAX_ROW:
        return f"attention over {S} keys stays float32: the int8 softmax takes rows of at most {MAX_ROW}"
    if not acc_bound_ok(E, AB_MAX) or not acc_bound_ok(S, AB_MAX):
        return "attention's int8 products q @ k^T or probs @ v could overflow the int32 accumulator"
    batch_dims = len(graph.tensors[node.outputs[0]].shape) - 2
    if _grouped(node, q, k) and batch_dims + 1 > MAX_RANK:
        return (f"grouped-query attention with {batch_dims} batch dimensions stays float32: the query groups' "
                f"dimension would make {batch_dims + 1}, more than the {MAX_RANK} the int8 kernels walk")
    return ""


def _grouped(node: Node, q_shape, k_shape) -> bool:
    """Grouped-query attention with fewer key/value heads than query heads."""
    return bool(node.attrs["enable_gqa"]) and k_shape[-3] != q_shape[-3]


class _Builder:
    """Appends the float ops of decomposed attention nodes to `graph`, naming them after the node."""

    def __init__(self, graph: Graph, taken: set[str]):
        self.graph = graph
        self.taken = taken  # tensor and node names of the original graph and those added since

    def decompose(self, node: Node) -> None:
        q, k, v = node.inputs[:3]
        out = node.outputs[0]
        q_shape, k_shape, v_shape = (self.graph.tensors[i].shape for i in (q, k, v))
        grouped = _grouped(node, q_shape, k_shape)
        if grouped:
            groups = q_shape[-3] // k_shape[-3]
            q = self._add(node, "reshape", [q], {"shape": _split_heads(q_shape, k_shape[-3], groups)}, "query_groups")
            k = self._add(node, "reshape", [k], {"shape": _split_heads(k_shape, k_shape[-3], 1)}, "key_groups")
            v = self._add(node, "reshape", [v], {"shape": _split_heads(v_shape, v_shape[-3], 1)}, "value_groups")
        rank = len(self.graph.tensors[k].shape)
        swap_last = tuple(range(rank - 2)) + (rank - 1, rank - 2)
        key_t = self._add(node, "permute", [k], {"perm": swap_last}, "key_t")
        scores = self._add(node, "matmul", [q, key_t, ""], {}, "scores")
        scaled = scores
        if node.attrs["scale"] != 1.0:
            scale = self._constant(f"{node.name}_scale", node.attrs["scale"])
            scaled = self._add(node, "mul", [scores, scale], {}, "scaled")
        probs = self._add(node, "softmax", [scaled], {"dim": len(self.graph.tensors[scaled].shape) - 1}, "probs")
        if grouped:
            context = self._add(node, "matmul", [probs, v, ""], {}, "context")
            self._add(node, "reshape", [context], {"shape": self.graph.tensors[out].shape}, "", out)
        else:
            self._add(node, "matmul", [probs, v, ""], {}, "", out)

    def _add(self, origin: Node, op: str, inputs: list[str], attrs: dict, suffix: str, output: str = "") -> str:
        """A node of `op` in `origin`'s scope, named `origin.name`_`suffix` (its own name without a suffix),
        writing `output` (a new tensor of the inferred shape if not given); returns the output's name."""
        opdef = get_op(op)
        name = origin.name if not suffix else self._fresh(f"{origin.name}_{suffix}")
        output = output or name
        node = Node(name, op, tuple(inputs), (output,), opdef.full_attrs(attrs), origin.scope, origin.source)
        if output not in self.graph.tensors:
            [(shape, dtype)] = opdef.infer(node, [self.graph.tensors[i] if i else None for i in inputs])
            self.graph.add_tensor(Tensor(output, tuple(shape), dtype))
        self.graph.nodes.append(node)
        return output

    def _constant(self, base: str, value: float) -> str:
        name = self._fresh(base)
        self.graph.add_tensor(Tensor(name, (), DType.float32, data=np.array(value, dtype=np.float32)))
        return name

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name


def _split_heads(shape: tuple[int, ...], kv_heads: int, groups: int) -> tuple[int, ...]:
    """(..., H, rows, cols) viewed as (..., kv_heads, groups, rows, cols), H = kv_heads * groups."""
    return tuple(shape[:-3]) + (kv_heads, groups) + tuple(shape[-2:])
