"""Kernel selection: give each node the C kernel it runs (`node.kernel`).

`run(graph, mode="optimized")` sets, on every node whose op has optimised variants
(`OpDef.variants`, best first), the first variant that applies to the node's shapes and
attributes; "reference" clears them all, so that every node runs its op's portable reference
kernel (the oracle the optimised kernels are tested against).

The optimised kernels are written for Armv7E-M (Cortex-M4/M7/M33/M55: the DSP instructions of
ACLE, `<arm_acle.h>`); elsewhere (the host, for tests) `mb_arm.h` gives the same instructions in
portable C, so the same generated C runs everywhere and computes the same numbers. The choice
changes the arena (an im2col buffer is scratch), which is why it is made on the graph, before
memory planning, and not in the C emitter. Not part of PIPELINE: api.compile(kernels=...) runs it
last.
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ops.registry import get_op

MODES = ("optimized", "reference")


def run(graph: Graph, mode: str = "optimized") -> Graph:
    if mode not in MODES:
        raise ValueError(f"kernel mode must be one of {MODES}, got {mode!r}")
    out = Graph(graph.name, dict(graph.tensors), [], list(graph.inputs), list(graph.outputs))
    for node in graph.nodes:
        kernel = ""
        if mode == "optimized":
            op = get_op(node.op)
            ins = [graph.tensors[i] if i else None for i in node.inputs]
            outs = [graph.tensors[o] for o in node.outputs]
            kernel = next((v.name for v in op.variants if v.applies(node, ins, outs)), "")
        out.nodes.append(node if node.kernel == kernel else node.replace(kernel=kernel))
    return out


def kernel_counts(graph: Graph) -> dict[str, int]:
    """How many nodes run each kernel variant, as `op/variant` (for reports and tests)."""
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.kernel:
            key = f"{node.op}/{node.kernel}"
            counts[key] = counts.get(key, 0) + 1
    return counts
