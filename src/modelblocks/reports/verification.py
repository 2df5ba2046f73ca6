"""The report's verification table: every pair of the stages that ran (the source model, the NumPy
interpreter, the host C, QEMU) compared on the same seeded inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ir.graph import Graph
from ..metrics import rel_l2

if TYPE_CHECKING:
    from ..api import CompiledModel


def _output_lsb(graph: Graph, name: str) -> float | None:
    """The quantization step of an output that a dequantize node writes (None for a float output)."""
    node = next((n for n in graph.nodes if name in n.outputs), None)
    if node is None or node.op != "dequantize":
        return None
    quant = graph.tensors[node.inputs[0]].quant
    return float(quant.scale[0]) if quant is not None else None


def compare_stages(compiled: "CompiledModel", model, example_inputs, runs: int, seed: int, tol: float,
                   target) -> dict:
    """Every pair of the stages that ran (PyTorch, interpreter, host C, QEMU) on the same seeded inputs,
    worst case per output: max |error|, relative L2, elements whose bits differ and, for outputs of
    int8 graphs, the largest difference in quantization steps (LSB). Verdicts as `verify` and
    `simulate` give them: floats within `tol` of PyTorch; int8 C against the int8 interpreter."""
    from ..api import _seeded_inputs, _torch_outputs  # noqa: PLC0415 (api imports this module lazily)
    from ..quant.exactness import output_checks, passes  # noqa: PLC0415

    mode = compiled.quantize_mode
    stages = {"torch": compiled.reference_name, "ref": "NumPy interpreter", "host": "host C (gcc)"}
    notes = []
    if model is None:
        del stages["torch"]
        notes.append("PyTorch: not run, there is no source model to run (a folder loaded from disk)")
    if target is not None:
        stages["qemu"] = f"QEMU {target.cpu} ({target.simulation.build.opt})"
    else:
        notes.append("QEMU: not simulated (pass --simulate / simulate=True; needs arm-none-eabi-gcc and "
                     "qemu-system-arm)")
    pairs = [(a, b) for a, b in (("ref", "torch"), ("host", "torch"), ("host", "ref"), ("qemu", "torch"),
                                 ("qemu", "ref")) if a in stages and b in stages]
    checks = output_checks(compiled.graph)
    sim_runs = len(target.simulation.outputs) if target is not None else 0
    worst: dict = {}
    for run, inputs in enumerate(_seeded_inputs(compiled, example_inputs, max(runs, sim_runs), seed)):
        arrays = [x.numpy() for x in inputs]
        values = {"ref": compiled.run_reference(arrays)}
        if run < runs:
            values["host"] = compiled.run_c(arrays)
        if "torch" in stages:
            values["torch"] = [o.detach().numpy() for o in _torch_outputs(model, inputs, compiled, "report")]
        if run < sim_runs:
            values["qemu"] = target.simulation.outputs[run]
        for k, name in enumerate(compiled.graph.outputs):
            lsb = _output_lsb(compiled.graph, name)
            for a, b in pairs:
                if a not in values or b not in values:
                    continue
                y, r = np.asarray(values[a][k]), np.asarray(values[b][k])
                diff = np.abs(y.astype(np.float64) - r.astype(np.float64))
                cell = worst.setdefault((k, a, b), {"max_abs": 0.0, "rel_l2": 0.0, "mismatches": 0, "elements": 0,
                                                    "max_lsb": None, "runs": 0})
                cell["max_abs"] = max(cell["max_abs"], float(diff.max(initial=0.0)))
                cell["rel_l2"] = max(cell["rel_l2"], rel_l2(y, r))
                same = y.shape == r.shape and y.dtype == r.dtype
                cell["mismatches"] += int(np.count_nonzero(y != r)) if same else int(y.size)
                cell["elements"] += int(y.size)
                cell["runs"] += 1
                if lsb and b == "ref":  # steps of the int8 grid both sides share (PyTorch is not on it)
                    cell["max_lsb"] = max(cell["max_lsb"] or 0, int(np.rint(diff.max(initial=0.0) / lsb)))
    rows = []
    for k, name in enumerate(compiled.graph.outputs):
        cells = {}
        for a, b in pairs:
            cell = dict(worst[(k, a, b)])
            if b == "torch" and mode:
                cell["verdict"] = "quantization error"  # what quantizing cost, judged in the quantization section
            elif mode == "int8" and b == "ref":
                cell["verdict"] = "ok" if passes(checks[k], cell["mismatches"] == 0, cell["rel_l2"], tol) else "FAIL"
            else:
                cell["verdict"] = "ok" if cell["rel_l2"] < tol else "FAIL"
            cells[f"{a}_vs_{b}"] = cell
        rows.append({"output": name, "check": checks[k] if mode == "int8" else "float", "cells": cells})
    columns = [{"key": f"{a}_vs_{b}", "title": f"{stages[a]} vs {stages[b]}"} for a, b in pairs]
    ok = all(c["verdict"] != "FAIL" for row in rows for c in row["cells"].values())
    return {"mode": mode or "float32", "runs": runs, "simulated_runs": sim_runs, "seed": seed, "tol": tol,
            "stages": list(stages.values()), "columns": columns, "outputs": rows, "notes": notes, "ok": ok}
