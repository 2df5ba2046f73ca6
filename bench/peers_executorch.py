"""Run by `bench/memory.py --peers` inside a separate virtual environment that has executorch
(never the project's .venv): ExecuTorch's planned activation memory for each test-bank model,
`sum(execution_plan[0].non_const_buffer_sizes)` after `constant_prop_pass` (without it, transposed
Linear weights are planned as activations). Prints one JSON object {row: bytes or "error: ..."}.

    /work/peers-venv/bin/python bench/peers_executorch.py [row-prefix ...]
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]
warnings.simplefilter("ignore")

import torch  # noqa: E402
from bank_models import BANK  # noqa: E402
from executorch.exir import to_edge  # noqa: E402
from executorch.exir.passes.constant_prop_pass import constant_prop_pass  # noqa: E402


def planned_bytes(model, inputs) -> int:
    ep = torch.export.export(model.eval(), tuple(inputs))
    edge = to_edge(ep)
    edge._edge_programs["forward"] = constant_prop_pass(edge.exported_program())
    program = edge.to_executorch().executorch_program
    return int(sum(program.execution_plan[0].non_const_buffer_sizes))


def main() -> None:
    wanted = sys.argv[1:]
    out = {}
    for name in sorted(BANK):
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        model, inputs, _ = BANK[name]()
        try:
            out[name] = planned_bytes(model, inputs)
        except Exception as exc:  # a model ExecuTorch refuses is a result too
            out[name] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
