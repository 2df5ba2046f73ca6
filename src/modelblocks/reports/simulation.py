"""Simulate a compiled model on Cortex-M cores in QEMU, check its outputs, and report instructions,
flash, RAM and the latency/energy estimates, per core and across cores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metrics import rel_l2
from ..targets.boards import Board, get_board
from ..targets.cpus import CPUS, get_cpu
from ..targets.estimates import Assumptions, Estimate, estimate
from ..targets.qemu import Simulation
from .analyze import FitVerdict, analyze_fit, measured_estimates
from .report import build_report


@dataclass
class OutputCheck:
    name: str
    rel_l2_torch: float | None  # QEMU vs PyTorch (None without the torch model)
    rel_l2_ref: float  # QEMU vs the NumPy interpreter
    max_abs_ref: float
    exact_ref: bool  # bit-identical to the interpreter (required for integer outputs)
    exact_host: bool | None  # bit-identical to the same C built for the host (None: not compared)
    ok: bool


@dataclass
class TargetResult:
    cpu: str
    machine: str
    fpu: str
    simulation: Simulation
    checks: list[OutputCheck]
    estimate: Estimate
    fit: FitVerdict | None
    layers: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def instructions(self) -> int:
        return max(self.simulation.instructions)

    def to_dict(self) -> dict:
        sim = self.simulation
        return {
            "cpu": self.cpu, "machine": self.machine, "fpu": self.fpu, "ok": self.ok, "opt": sim.build.opt,
            "instructions_per_run": sim.instructions, "instructions": self.instructions,
            "mark_cost": sim.mark_cost, "epilogue_instructions": sim.epilogue,
            "stack_bytes": sim.stack_bytes, "sizes": sim.build.sizes.to_dict(),
            "checks": [c.__dict__ for c in self.checks], "estimate": self.estimate.to_dict(),
            "fit": self.fit.to_dict() if self.fit else None, "layers": self.layers,
        }


@dataclass
class SimulationReport:
    model: str
    macs: int
    runs: int
    tolerance: float
    assumptions: Assumptions
    board: str
    targets: list[TargetResult]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    def to_dict(self) -> dict:
        return {"model": self.model, "macs": self.macs, "runs": self.runs, "tolerance": self.tolerance,
                "board": self.board, "assumptions": self.assumptions.to_dict(),
                "estimates_note": self.assumptions.describe(), "ok": self.ok,
                "targets": [t.to_dict() for t in self.targets]}


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check_outputs(graph, got: list[list[np.ndarray]], refs: list[list[np.ndarray]], torch_refs,
                  host_outputs, tol: float, quantized: str | None = None) -> list[OutputCheck]:
    """Worst case over runs, per output: floats within `tol` relative L2 of PyTorch (and of the
    interpreter), integers bit-exact with the interpreter. Whether the bits equal the host build's
    is reported too (they do when libm agrees: both builds use -ffp-contract=off).

    A quantized model differs from PyTorch by its quantization error, so it is held to its own
    reference instead: int8 graphs bit-exact with the interpreter (float outputs included: they are
    dequantized int8), int8-weights graphs within `tol` of the interpreter; the PyTorch distance is
    reported only."""
    from ..quant.exactness import output_checks, passes  # noqa: PLC0415

    int8_checks = output_checks(graph) if quantized == "int8" else []
    checks = []
    for k, name in enumerate(graph.outputs):
        is_float = graph.tensors[name].dtype.value.startswith("float")
        worst_t, worst_r, worst_abs, exact = None, 0.0, 0.0, True
        exact_host = None if host_outputs is None else True
        for run, outs in enumerate(got):
            y, r = outs[k], refs[run][k]
            worst_r = max(worst_r, rel_l2(y, r))
            worst_abs = max(worst_abs, float(np.max(np.abs(y.astype(np.float64) - r.astype(np.float64)), initial=0.0)))
            exact &= _same_bits(y, r)
            if host_outputs is not None:
                exact_host &= _same_bits(y, host_outputs[run][k])
            if torch_refs is not None:
                worst_t = max(worst_t or 0.0, rel_l2(y, torch_refs[run][k]))
        if quantized == "int8":
            ok = passes(int8_checks[k], exact, worst_r, tol)
        elif quantized:
            ok = worst_r < tol if is_float else exact
        else:
            ok = (worst_r < tol and (worst_t is None or worst_t < tol)) if is_float else exact
        checks.append(OutputCheck(name, worst_t, worst_r, worst_abs, exact, exact_host, ok))
    return checks


def layer_rows(report: dict, sim: Simulation) -> list[dict]:
    by_index = {row["index"]: row for row in report["layers"]}
    total = sum(layer.instructions for layer in sim.layers) + sim.epilogue
    rows = []
    for layer in sim.layers:
        row = by_index[layer.index]
        rows.append({"index": layer.index, "op": row["op"], "scope": row["scope"], "macs": row["macs"],
                     "instructions": layer.instructions, "share": layer.instructions / total if total else 0.0,
                     "instructions_per_mac": layer.instructions / row["macs"] if row["macs"] else None})
    return rows


def simulate_targets(compiled, input_sets: list[list[np.ndarray]], torch_outputs, *, targets: list[str],
                     opt: str = "-O2", tol: float = 1e-5, assumptions: Assumptions = Assumptions(),
                     board: Board | None = None, workdir=None, progress=None,
                     compare_host: bool = True) -> SimulationReport:
    """Build and run `compiled` on each core in `targets` with the same inputs and check the outputs
    against the interpreter and, when given, PyTorch. The fit verdict uses the first core's measured
    code and stack against `board` (default: the STM32H723ZG, a Cortex-M7). `progress(step, done,
    total)` hears about each core's build and QEMU run."""
    from pathlib import Path  # noqa: PLC0415

    board = board or get_board("stm32h723zg")
    refs = [compiled.run_reference(s) for s in input_sets]
    host = [compiled.run_c(s) for s in input_sets] if compare_host else None
    results = []
    for k, name in enumerate(targets):
        cpu = get_cpu(name)
        where = Path(workdir) / cpu.name if workdir else None
        if progress:
            progress(f"cross-compiling for {cpu.name} (arm-none-eabi-gcc {opt})", 2 * k, 2 * len(targets))
        compiled.build_for(cpu.name, opt, where)
        if progress:
            progress(f"running {len(input_sets)} input set(s) in QEMU ({cpu.machine})", 2 * k + 1, 2 * len(targets))
        sim = compiled.simulate(input_sets, target=cpu.name, opt=opt, workdir=where)
        report = build_report(compiled.graph, compiled.source, measured_estimates(sim))
        checks = check_outputs(compiled.graph, sim.outputs, refs, torch_outputs, host, tol, compiled.quantize_mode)
        results.append(TargetResult(cpu.name, cpu.machine, cpu.fpu, sim, checks,
                                    estimate(max(sim.instructions), assumptions), analyze_fit(report, board),
                                    layer_rows(report, sim)))
    return SimulationReport(compiled.graph.name, compiled.report["macs"], len(input_sets), tol, assumptions,
                            board.name, results)


def expand_targets(spec: str | list[str]) -> list[str]:
    if isinstance(spec, str):
        spec = [p.strip() for p in spec.split(",") if p.strip()]
    names = []
    for s in spec:
        names += list(CPUS) if s.lower() == "all" else [get_cpu(s).name]
    return list(dict.fromkeys(names))


# -- text ------------------------------------------------------------------------------------------

def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def format_target(result: TargetResult, macs: int, assumptions: Assumptions, max_rows: int = 60) -> str:
    sim, s = result.simulation, result.simulation.build.sizes
    lines = [f"{result.cpu} on QEMU {result.machine} ({result.fpu}), arm-none-eabi-gcc {sim.build.opt}:"]
    lines.append(f"  {'output':<16} {'vs PyTorch rel L2':>18} {'vs reference rel L2':>20} {'= reference bits':>17} "
                 f"{'= host C bits':>14}")
    yes_no = {True: "yes", False: "no", None: "-"}
    for c in result.checks:
        torch_text = f"{c.rel_l2_torch:.3e}" if c.rel_l2_torch is not None else "-"
        lines.append(f"  {c.name:<16} {torch_text:>18} {c.rel_l2_ref:>20.3e} {yes_no[c.exact_ref]:>17} "
                     f"{yes_no[c.exact_host]:>14}  {'ok' if c.ok else 'FAIL'}")
    lines.append(f"  {'#':>4}  {'op':<18} {'module':<28} {'MACs':>11} {'instructions':>13} {'share':>6} {'insn/MAC':>9}")
    for row in result.layers[:max_rows]:
        ipm = f"{row['instructions_per_mac']:.2f}" if row["instructions_per_mac"] is not None else "-"
        lines.append(f"  {row['index']:>4}  {row['op']:<18} {(row['scope'] or '-')[:28]:<28} {row['macs']:>11,} "
                     f"{row['instructions']:>13,} {row['share']:>6.1%} {ipm:>9}")
    if len(result.layers) > max_rows:
        lines.append(f"  ... {len(result.layers) - max_rows} more layers")
    lines.append(f"  {'':>4}  {'(return, output copies)':<47} {'':>11} {sim.epilogue:>13,}")
    runs = sim.instructions
    spread = f" (runs: {min(runs):,} to {max(runs):,})" if min(runs) != max(runs) else ""
    ipm = f", {result.instructions / macs:.2f} per MAC" if macs else ""
    lines.append(f"  instructions per inference: {result.instructions:,}{ipm}{spread} [exact, QEMU TCG plugin]")
    lines.append(f"  flash {_kb(s.flash)}: model code {s.model_code:,} B, weights {s.weights:,} B, "
                 f"C library {s.library_code:,} B, harness {s.harness_flash:,} B")
    lines.append(f"  RAM   {_kb(s.ram_static + sim.stack_bytes)}: arena {s.arena:,} B, model data {s.model_ram_other:,} B, "
                 f"I/O buffers {s.io_buffers:,} B, harness + C library {s.harness_ram:,} B, "
                 f"stack {sim.stack_bytes:,} B (measured)")
    e = result.estimate
    lines.append(f"  estimated at {assumptions.clock_mhz:g} MHz: {e.cycles:,.0f} cycles, {e.latency_ms:.3f} ms, {e.energy_uj:.2f} uJ "
                 "per inference")
    lines.append(f"  {assumptions.describe()}")
    if result.fit is not None:
        lines.append(f"  {result.fit.text}")
    return "\n".join(lines)


def format_comparison(report: SimulationReport) -> str:
    lines = [f"{report.model}: {report.macs:,} MACs, same C on each core (arm-none-eabi-gcc "
             f"{report.targets[0].simulation.build.opt if report.targets else ''}):",
             f"  {'core':<11} {'QEMU board':<11} {'instructions':>13} {'insn/MAC':>9} {'flash B':>9} "
             f"{'code B':>8} {'RAM B':>9} {'stack B':>8} {'est. ms':>8} {'check':>6}"]
    for t in report.targets:
        s, sim = t.simulation.build.sizes, t.simulation
        ipm = f"{t.instructions / report.macs:.2f}" if report.macs else "-"
        lines.append(f"  {t.cpu:<11} {t.machine:<11} {t.instructions:>13,} {ipm:>9} {s.flash:>9,} "
                     f"{s.model_code + s.library_code:>8,} {s.ram_static + sim.stack_bytes:>9,} {sim.stack_bytes:>8,} "
                     f"{t.estimate.latency_ms:>8.3f} {'ok' if t.ok else 'FAIL':>6}")
    lines.append(f"  est. ms: {report.assumptions.describe()}")
    return "\n".join(lines)


def format_simulation(report: SimulationReport) -> str:
    parts = [f"simulated {report.model} on {report.runs} input set(s), tolerance {report.tolerance:g}"]
    parts += [format_target(t, report.macs, report.assumptions) for t in report.targets]
    if len(report.targets) > 1:
        parts.append(format_comparison(report))
    parts.append("simulation passed: outputs match" if report.ok
                 else "simulation FAILED: outputs differ (see the FAIL rows above)")
    return "\n\n".join(parts)
