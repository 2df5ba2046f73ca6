"""Sparse weights: rewrite a `linear` (float32 constant weight) or `q_linear` (int8) node into
`linear_sparse` / `q_linear_sparse` (ops/sparse_linear.py: the weight in CSR) when that pays.

`run(graph, mode="auto")`: "auto" rewrites a node only when BOTH hold (`sparse_pays`):
- flash: values + col_index + row_ptr take fewer bytes than the dense weight;
- time: the estimated instructions of the sparse kernel are fewer than those of the dense kernel the
  layer would run (`kernels`: optimised or reference), from per-MAC / per-nonzero / per-output costs
  measured on the Cortex-M7 (`DENSE_COSTS`);
and the layers sharing one kernel variant save more bytes together than its code takes.
"always" (for tests) rewrites every such node whose weight holds at least one zero.
A weight that another node or a graph output also reads is left dense (its dense copy would stay).
Not part of PIPELINE: api.compile(sparse=...) runs it last, after quantization. Biases, the int8
requantization tables, node names, scopes and outputs are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Graph, Node
from ..ops.registry import numel
from ..ops.sparse_linear import MAX_IN_FEATURES, col_dtype, csr_nbytes, ptr_dtype, to_csr

MODES = ("auto", "always")


@dataclass(frozen=True)
class Costs:
    """Retired instructions of one kernel call: dense = rows * out * (in * per_mac + per_output),
    sparse = rows * (nnz * per_nonzero + out * sparse_per_output)."""

    per_mac: float
    per_output: float
    per_nonzero: float
    sparse_per_output: float


# Measured on the Cortex-M7 (QEMU 7.2 mps2-an500, arm-none-eabi-gcc 12.2 -O2, exact per-layer counts of
# the TCG plugin) by `.venv/bin/python bench/sparse_linear.py --fit`: least-squares fit of the layers'
# instructions over Linear (in, out) in {64, 128, 256}^2 x sparsity {0, 30, 50, 70, 90} %, batch 1. The
# dense costs are those of the kernel the dense layer would run: the plain loops (`*_COSTS`, every layer
# within 0.01 % of the fit; kernels="reference") or the optimised kernels (`*_OPT_COSTS`, within 3 %;
# passes/select_kernels.py). Sparse: the CSR kernels of mb_sparse_linear.c (inner loop unrolled by 4; a
# row's remaining 0..3 nonzeros go into the per-output term; within 1.2 %). Re-measure when a kernel changes.
# With 1-byte column indices (in <= 256) the rule fires above ~20 % sparsity for float (bytes decide:
# 5 B per nonzero vs 4 B per weight) and ~50 % for int8 on the reference kernels; against the optimised
# kernels (1.2-1.3 instructions per MAC) only above ~80-85 % (instructions decide).
FLOAT_COSTS = Costs(per_mac=6.0, per_output=18.0, per_nonzero=7.0, sparse_per_output=38.0)
INT8_COSTS = Costs(per_mac=6.0, per_output=48.0, per_nonzero=6.0, sparse_per_output=72.0)
FLOAT_OPT_COSTS = Costs(per_mac=1.156, per_output=19.75, per_nonzero=7.0, sparse_per_output=38.0)
INT8_OPT_COSTS = Costs(per_mac=1.271, per_output=22.66, per_nonzero=6.0, sparse_per_output=72.0)
DENSE_COSTS = {("linear", "reference"): FLOAT_COSTS, ("linear", "optimized"): FLOAT_OPT_COSTS,
               ("q_linear", "reference"): INT8_COSTS, ("q_linear", "optimized"): INT8_OPT_COSTS}

# Flash bytes of one sparse kernel variant (one per op and index-type pair), which the weights it saves
# must pay for: `arm-none-eabi-nm --size-sort -S` of mb_sparse_linear.c built with the Cortex-M7 flags of
# targets/cpus.py (-O2 -mcpu=cortex-m7 -mfpu=fpv5-d16 -ffunction-sections; gcc 12.2): 396-412 B for the
# float variants, 524-530 B for the int8 ones. The linker's --gc-sections keeps only the variants used.
KERNEL_CODE_BYTES = {"linear": 412, "q_linear": 530}


def sparse_pays(rows: int, out_features: int, in_features: int, nnz: int, dense_bytes: int, sparse_bytes: int,
                costs: Costs) -> bool:
    """The rule: fewer weight bytes AND fewer estimated instructions than the dense layer."""
    dense = rows * out_features * (in_features * costs.per_mac + costs.per_output)
    sparse = rows * (nnz * costs.per_nonzero + out_features * costs.sparse_per_output)
    return sparse_bytes < dense_bytes and sparse < dense


@dataclass(frozen=True)
class Decision:
    node: str
    op: str
    out_features: int
    in_features: int
    nnz: int
    dense_bytes: int  # the dense weight
    sparse_bytes: int  # values + col_index + row_ptr
    sparse: bool  # rewritten?
    reason: str


_DENSE = {"linear": ("linear_sparse", DType.float32), "q_linear": ("q_linear_sparse", DType.int8)}


def decide(graph: Graph, node: Node, mode: str = "auto", readers: dict[str, int] | None = None,
           kernels: str = "optimized") -> Decision | None:
    """What `run` does with `node` (None: not a linear / q_linear node with a constant 2-D weight), when
    the dense layer would run on the `kernels` kernels ("optimized" or "reference")."""
    if mode not in MODES:
        raise ValueError(f"sparsify mode must be one of {list(MODES)}, got {mode!r}")
    if node.op not in _DENSE:
        return None
    _, dtype = _DENSE[node.op]
    costs = DENSE_COSTS[(node.op, kernels)]
    w = graph.tensors[node.inputs[1]]
    if not w.is_constant or w.dtype != dtype or len(w.shape) != 2:
        return None
    out_features, in_features = w.shape
    nnz = int(np.count_nonzero(w.data))
    dense_bytes = w.nbytes
    sparse_bytes = csr_nbytes(out_features, in_features, nnz, dtype.itemsize) if in_features <= MAX_IN_FEATURES else 0

    def result(sparse: bool, reason: str) -> Decision:
        return Decision(node.name, node.op, out_features, in_features, nnz, dense_bytes, sparse_bytes, sparse, reason)

    if not 0 < in_features <= MAX_IN_FEATURES:
        return result(False, f"{in_features} input features (a sparse weight takes 1..{MAX_IN_FEATURES})")
    if readers is None:
        readers = _readers(graph)
    if readers.get(w.name, 0) > 1 or w.name in graph.outputs:
        return result(False, "the weight is shared: its dense copy would stay")
    if nnz == w.numel:
        return result(False, "no zero weight")
    if mode == "always":
        return result(True, "sparse='always'")
    rows = numel(graph.tensors[node.inputs[0]].shape[:-1])
    if sparse_pays(rows, out_features, in_features, nnz, dense_bytes, sparse_bytes, costs):
        return result(True, "fewer bytes and instructions")
    return result(False, "saves no bytes or no instructions")


def _readers(graph: Graph) -> dict[str, int]:
    count: dict[str, int] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if i:
                count[i] = count.get(i, 0) + 1
    return count


def decisions(graph: Graph, mode: str = "auto", kernels: str = "optimized") -> dict[str, Decision]:
    """`decide` for every node, then per kernel variant: in "auto", the layers that would use a
    variant must save more weight bytes together than the variant's code adds (KERNEL_CODE_BYTES)."""
    readers = _readers(graph)
    found = {n.name: d for n in graph.nodes if (d := decide(graph, n, mode, readers, kernels)) is not None}
    if mode == "auto":
        variants: dict[tuple, list[Decision]] = {}
        for d in found.values():
            if d.sparse:
                variants.setdefault((d.op, col_dtype(d.in_features), ptr_dtype(d.nnz)), []).append(d)
        for (op, _, _), group in variants.items():
            saved = sum(d.dense_bytes - d.sparse_bytes for d in group)
            if saved <= KERNEL_CODE_BYTES[op]:
                for d in group:
                    found[d.node] = Decision(d.node, d.op, d.out_features, d.in_features, d.nnz, d.dense_bytes,
                                             d.sparse_bytes, False, f"saves {saved} B of weights, no more than the "
                                             f"sparse kernel's code ({KERNEL_CODE_BYTES[op]} B)")
    return found


def run(graph: Graph, mode: str = "auto", kernels: str = "optimized") -> Graph:
    out = graph.copy()
    chosen = decisions(graph, mode, kernels)
    nodes: list[Node] = []
    dropped: list[str] = []
    for node in graph.nodes:
        d = chosen.get(node.name)
        if d is None or not d.sparse:
            nodes.append(node)
            continue
        op, dtype = _DENSE[node.op]
        w = graph.tensors[node.inputs[1]]
        values, cols, ptr = to_csr(w.data)
        v = out.add_constant(f"{w.name}_values", values, dtype)
        c = out.add_constant(f"{w.name}_col_index", cols, col_dtype(d.in_features))
        p = out.add_constant(f"{w.name}_row_ptr", ptr, ptr_dtype(d.nnz))
        inputs = (node.inputs[0], v.name, c.name, p.name, *node.inputs[2:])
        # a new op: the dense kernel variant chosen earlier (if any) does not carry over
        nodes.append(node.replace(op=op, inputs=inputs, attrs={"in_features": d.in_features, **node.attrs}, kernel=""))
        dropped.append(w.name)
    out.nodes = nodes
    for name in dropped:  # read by the rewritten node only (decide checks it)
        del out.tensors[name]
    return out
