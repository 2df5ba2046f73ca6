"""What the C of a quantized graph can be held to, output by output.

Integer kernels, quantize/dequantize and data movement compute the same bits in C and NumPy. Float
kernels do not: C accumulates in float32, the reference in float64, so they agree to ~1e-7. Hence:
- "exact": the output depends on exact nodes only: C equals the interpreter bit for bit;
- "float": float nodes lie between the last int8 node and the output (a float tail): C is within the
  float tolerance of the interpreter;
- "mixed": a float node feeds, through a quantize, an int8 node (a float island inside the int8
  graph): a value the float island computes a hair apart in C can round to the neighbouring int8
  step, so C and the interpreter may differ by one quantization step on a few elements.
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ops.registry import Prop, get_op

EXACT, FLOAT, MIXED = "exact", "float", "mixed"
MIXED_TOL = 2e-2  # rel L2 allowed for "mixed" outputs: a few one-step flips after a float island


def _exact_op(op_name: str) -> bool:
    if op_name.startswith("q_") or op_name in ("quantize", "dequantize"):
        return True
    op = get_op(op_name)
    return op.has(Prop.ALIAS) or op.kernels == ("mb_layout",)


def output_checks(graph: Graph) -> list[str]:
    state: dict[str, str] = {name: EXACT for name in graph.inputs}
    state.update({t.name: EXACT for t in graph.constants()})
    rank = {EXACT: 0, FLOAT: 1, MIXED: 2}
    for node in graph.nodes:
        worst = max((state.get(i, EXACT) for i in node.inputs if i), key=rank.get, default=EXACT)
        if _exact_op(node.op):
            # an int8 node reading a float-tainted value: the taint becomes an island
            out = MIXED if worst == FLOAT and node.op != "dequantize" and node.op.startswith(("q_", "quantize")) else worst
        else:
            out = MIXED if worst == MIXED else FLOAT
        for o in node.outputs:
            state[o] = out
    return [state[o] for o in graph.outputs]


def passes(check: str, exact: bool, rel_l2_c_ref: float, tol: float) -> bool:
    if check == EXACT:
        return exact
    if check == FLOAT:
        return rel_l2_c_ref < tol
    return rel_l2_c_ref < MIXED_TOL
