"""The MLPerf Tiny reference models and the bundled TinyViT on the Cortex-M7 in QEMU, as float32 and int8,
each with the reference and the optimised kernels: MACs, exact instructions per inference, instructions
per MAC, flash and arena from the ELF, and whether the M7's outputs are right (float32: relative L2 to
the host C below 1e-5; int8: bit-exact with the NumPy interpreter, or within quant/exactness.py's
tolerance where a float island makes bit-exactness impossible). One row per model and precision,
with the optimised/reference ratios.

    .venv/bin/python bench/models.py [--models ds_cnn,resnet8] [--precision float32,int8] [--json out.json]
                                     [--kernels reference,optimized] [--target cortex-m7] [--opt -O2]

MACs are the float32 graph's, as the compile report counts them (convolutions, linear layers, matmuls,
plus one per pooled or softmaxed element), for both precisions, so instructions per MAC compare across
them. "optimized" picks, per layer, the fastest kernel variant that applies (passes/select_kernels.py);
where none applies yet it runs the reference kernel, and the ratio is 1.000. `--json` saves every build,
with its instructions per op (and kernel variant) and the ops that stayed float32 in int8. Exit code 1
if any build's M7 outputs are wrong.

The transformer is the bundled TinyViT (`models/tiny_vit.py`, `make demo`'s model; the test bank's
row 12_vit_6_outputs wraps the same network with six outputs at batch 2): here batch 1, logits only.
Its odd blocks call F.scaled_dot_product_attention, which the int8 build spells out as matmul /
softmax before calibration (passes/decompose_attention.py); the notes under the table list every op
that stays float32 in int8, and why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

warnings.simplefilter("ignore")

import modelblocks  # noqa: E402
from modelblocks.metrics import rel_l2  # noqa: E402
from modelblocks.models import mlperf_tiny, tiny_vit  # noqa: E402
from modelblocks.quant.exactness import EXACT, MIXED_TOL, output_checks  # noqa: E402
from modelblocks.targets.qemu import have_toolchain  # noqa: E402

FLOAT_TOL = 1e-5
PRECISIONS = ("float32", "int8")
KERNELS = ("reference", "optimized")
RUNS = 2  # inferences per build in QEMU (instructions are those of the first; outputs of all are checked)


@dataclass
class Spec:
    name: str
    model: torch.nn.Module
    example: torch.Tensor
    calibration: torch.Tensor
    evals: torch.Tensor  # [RUNS, ...]
    macs: int = 0  # of the float32 graph: the work both precisions do (the int8 report also counts q_add's elements)


def spec(name: str) -> Spec:
    if name == "tiny_vit":
        model, (x,) = tiny_vit.build()
        gen = torch.Generator().manual_seed(1000)
        calib = torch.randn(32, *x.shape[1:], generator=gen)
        evals = torch.cat([x, torch.randn(RUNS - 1, *x.shape[1:], generator=gen)])
        s = Spec(name, model.eval(), x, calib, evals)
    else:
        model, (x,) = mlperf_tiny.build(name)
        s = Spec(name, model, x, mlperf_tiny.calibration_inputs(name), mlperf_tiny.eval_inputs(name, RUNS))
    s.macs = modelblocks.compile(s.model, (s.example,), name=name, kernels="reference").report["macs"]
    return s


MODELS = (*mlperf_tiny.NAMES, "tiny_vit")


@dataclass
class Build:
    model: str
    precision: str
    kernels: str
    macs: int  # the float32 graph's (Spec.macs), so that instructions per MAC compare across precisions
    macs_report: int = 0  # this build's compile report
    params: int = 0
    instructions: int = 0
    flash: int = 0
    weights: int = 0
    arena: int = 0  # from the ELF
    arena_report: int = 0
    arena_lower_bound: int = 0
    stack: int = 0
    check: str = ""  # what the M7's outputs were held to, and the result
    ok: bool = False
    rel_l2_torch: float = 0.0  # worst over runs: QEMU vs PyTorch (float32), or the quantization error (int8)
    kernel_variants: dict = field(default_factory=dict)
    instructions_by_op: dict = field(default_factory=dict)  # "op" or "op/variant" -> instructions (first run)
    float_nodes: dict = field(default_factory=dict)  # int8: node -> why it stayed float32
    error: str = ""  # the build or the simulation failed: why
    seconds: float = 0.0

    @property
    def per_mac(self) -> float:
        return self.instructions / self.macs if self.macs and not self.error else float("nan")

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR " + self.error.splitlines()[0][:70]
        return self.check + ("" if self.ok else " FAIL")


def _worst(a: float, b: float) -> float:
    """max() that keeps a NaN (a NaN output must show, not vanish)."""
    return float("nan") if np.isnan(a) or np.isnan(b) else max(a, b)


def measure(s: Spec, precision: str, kernels: str, target: str, opt: str = "-O2") -> Build:
    from modelblocks.passes.select_kernels import kernel_counts  # noqa: PLC0415

    t0 = time.perf_counter()
    kw = {"quantize": "int8", "calibration": s.calibration} if precision == "int8" else {}
    compiled = modelblocks.compile(s.model, (s.example,), name=s.name, kernels=kernels, **kw)
    inputs = [[s.evals[i:i + 1].numpy()] for i in range(len(s.evals))]
    sim = compiled.simulate(inputs, target=target, opt=opt)
    with torch.no_grad():
        expected = [s.model(s.evals[i:i + 1]).numpy() for i in range(len(s.evals))]
    ok, worst, worst_torch, exact_all = True, 0.0, 0.0, True
    how = output_checks(compiled.graph)[0] if precision == "int8" else "float"
    for out, x, e in zip(sim.outputs, inputs, expected):
        dt = rel_l2(out[0], e)
        worst_torch = _worst(worst_torch, dt)
        if precision == "float32":  # against the same C built for the host
            d = rel_l2(out[0], compiled.run_c(x)[0])
            ok &= d < FLOAT_TOL
        else:  # against the interpreter
            ref = compiled.run_reference(x)[0]
            same = np.array_equal(out[0], ref)
            exact_all &= same
            d = rel_l2(out[0], ref)
            ok &= same if how == EXACT else d < (FLOAT_TOL if how == "float" else MIXED_TOL)
        worst = _worst(worst, d)
    if precision == "float32":
        check = "= host C" if worst == 0.0 else f"host C rel L2 {worst:.1e}"
    elif exact_all:
        check = "bit-exact" + ("" if how == EXACT else f" ({how})")
    else:
        check = f"{how}: rel L2 {worst:.1e}"
    by_op: dict[str, int] = {}
    for layer in sim.layers:
        node = compiled.graph.nodes[layer.index]
        key = node.op + (f"/{node.kernel}" if node.kernel else "")
        by_op[key] = by_op.get(key, 0) + layer.instructions
    float_nodes = {}
    if compiled.quantization is not None:
        float_nodes = {str(k): str(v) for k, v in compiled.quantization.float_nodes.items()}
    sizes, report = sim.build.sizes, compiled.report
    return Build(s.name, precision, kernels, s.macs, report["macs"], report["params"], sim.instructions[0],
                 sizes.flash, sizes.weights, sizes.arena, report["arena_bytes"], report["arena_lower_bound"],
                 sim.stack_bytes, check, bool(ok), worst_torch, kernel_counts(compiled.graph),
                 dict(sorted(by_op.items(), key=lambda kv: -kv[1])), float_nodes, "", time.perf_counter() - t0)


def measure_or_error(s: Spec, precision: str, kernels: str, target: str, opt: str = "-O2") -> Build:
    """`measure`, or a Build carrying the error: one broken build does not stop the table."""
    t0 = time.perf_counter()
    try:
        return measure(s, precision, kernels, target, opt)
    except Exception as exc:  # noqa: BLE001 (reported in the table and the JSON)
        return Build(s.name, precision, kernels, s.macs, error=f"{type(exc).__name__}: {exc}",
                     seconds=time.perf_counter() - t0)


def _pairs(builds: list[Build]) -> dict[tuple[str, str], dict[str, Build]]:
    """{(model, precision): {kernels: build}}, in measuring order."""
    rows: dict = {}
    for b in builds:
        rows.setdefault((b.model, b.precision), {})[b.kernels] = b
    return rows


def _ratio(o: Build | None, r: Build | None, attr: str) -> float | None:
    if not (o and r) or o.error or r.error or not getattr(r, attr):
        return None
    return getattr(o, attr) / getattr(r, attr)


def table(builds: list[Build]) -> str:
    head = (f"{'model':<15} {'prec':<7} {'MACs':>11} | {'ref instr':>12} {'opt instr':>12} {'opt/ref':>7} | "
            f"{'ref i/MAC':>9} {'opt i/MAC':>9} | {'ref flash':>9} {'opt flash':>9} | {'ref arena':>9} {'opt arena':>9} | "
            f"M7 outputs (ref; opt)")
    lines = [head, "-" * len(head)]

    def cell(b: Build | None, attr: str, fmt: str) -> str:
        return format(getattr(b, attr), fmt) if b and not b.error else "-"

    for (model, precision), by in _pairs(builds).items():
        r, o = by.get("reference"), by.get("optimized")
        q = _ratio(o, r, "instructions")
        lines.append(
            f"{model:<15} {precision:<7} {(r or o).macs:>11,} | {cell(r, 'instructions', ','):>12} "
            f"{cell(o, 'instructions', ','):>12} {f'{q:.3f}' if q is not None else '-':>7} | "
            f"{cell(r, 'per_mac', '.2f'):>9} {cell(o, 'per_mac', '.2f'):>9} | {cell(r, 'flash', ','):>9} "
            f"{cell(o, 'flash', ','):>9} | {cell(r, 'arena', ','):>9} {cell(o, 'arena', ','):>9} | "
            f"{r.verdict if r else '-'}; {o.verdict if o else '-'}")
    return "\n".join(lines)


def notes(builds: list[Build]) -> list[str]:
    out = []
    seen = set()
    for b in builds:
        if b.float_nodes and (b.model, b.precision) not in seen:
            seen.add((b.model, b.precision))
            reasons: dict[str, list[str]] = {}
            for node, why in b.float_nodes.items():
                reasons.setdefault(why, []).append(node)
            for why, nodes in reasons.items():
                out.append(f"{b.model} int8: {len(nodes)} node(s) stayed float32 ({', '.join(nodes[:6])}"
                           f"{', ...' if len(nodes) > 6 else ''}): {why}")
    variants = {(b.model, b.precision): b.kernel_variants for b in builds if b.kernels == "optimized" and not b.error}
    if variants and not any(variants.values()):
        out.append("no optimised kernel variant applied to any layer: 'optimized' ran the reference kernels")
    for (model, precision), v in variants.items():
        if v:
            out.append(f"{model} {precision} optimised variants: " + ", ".join(f"{k} x{n}" for k, n in sorted(v.items())))
    for b in builds:
        if b.error:
            out.append(f"{b.model} {b.precision} {b.kernels} failed: {b.error[:400]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {','.join(MODELS)}")
    parser.add_argument("--precision", default=",".join(PRECISIONS), help="comma-separated: float32,int8")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated: reference,optimized")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--opt", default="-O2", help="optimisation flag of the target build (-O2, -O3, -Os)")
    parser.add_argument("--json", metavar="PATH", help="also save every build (with instructions per op) as JSON")
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    precisions = [p for p in args.precision.split(",") if p]
    kernels = [k for k in args.kernels.split(",") if k]
    for value, allowed, what in ((names, MODELS, "model"), (precisions, PRECISIONS, "precision"),
                                 (kernels, KERNELS, "kernels")):
        bad = [v for v in value if v not in allowed]
        if bad or not value:
            parser.error(f"unknown {what} {', '.join(bad) or '(none given)'}; choose from {', '.join(allowed)}")
    if not have_toolchain():
        print("bench/models.py needs arm-none-eabi-gcc and qemu-system-arm (`make install` installs them)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    builds: list[Build] = []
    print(f"{args.target} in QEMU, arm-none-eabi-gcc {args.opt}, {RUNS} inferences per build (instructions of the first)",
          flush=True)
    for name in names:
        s = spec(name)
        for precision in precisions:
            for k in kernels:
                b = measure_or_error(s, precision, k, args.target, args.opt)
                builds.append(b)
                print(f"  {name} {precision} {k}: {b.instructions:,} instructions, {b.verdict} ({b.seconds:.1f} s)",
                      flush=True, file=sys.stderr)
    print(table(builds))
    for line in notes(builds):
        print("note: " + line)
    wall = time.perf_counter() - t0
    bad = [b for b in builds if b.error or not b.ok]
    print(f"{len(builds)} builds in {wall:.0f} s; {len(bad)} failed or with wrong outputs")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        ratios = {}
        for (m, p), by in _pairs(builds).items():
            r, o = by.get("reference"), by.get("optimized")
            ratios[f"{m}/{p}"] = {a: _ratio(o, r, a) for a in ("instructions", "flash", "arena")}
        Path(args.json).write_text(json.dumps({
            "target": args.target, "opt": args.opt, "runs": RUNS, "float_tol": FLOAT_TOL, "seconds": round(wall, 1),
            "builds": [dict(asdict(b), per_mac=None if b.error else b.per_mac) for b in builds],
            "ratios_optimized_over_reference": ratios,
        }, indent=1) + "\n")
        print(f"saved {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
