"""The test bank on Cortex-M cores in QEMU: per row, the worst relative L2 distance to PyTorch, exact
instructions per inference, flash and RAM from the ELF, the measured stack, and the latency/energy
estimates on the STM32H723ZG; then the same C compared across M4, M7, M33 and M55.

    .venv/bin/python bench/targets.py [--runs 3] [--rows 04,12] [--target cortex-m7] [--compare 12,15,demo]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import modelblocks  # noqa: E402
from bank_models import BANK  # noqa: E402
from modelblocks.models import tiny_vit  # noqa: E402
from modelblocks.reports.simulation import format_comparison  # noqa: E402
from modelblocks.targets.estimates import Assumptions  # noqa: E402


def rows(wanted: list[str]):
    bank = dict(BANK, demo_tiny_vit=tiny_vit.build)
    for name in sorted(bank):
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        built = bank[name]()
        yield name, built[0], built[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", default="", help="comma-separated row prefixes (default: all)")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--compare", default="12,15,demo", help="rows to compare across all cores ('' for none)")
    args = parser.parse_args()
    assumptions = Assumptions()
    print(f"{args.target}, arm-none-eabi-gcc -O2; {assumptions.describe()}")
    print(f"{'row':<24} {'rel L2':>9} {'MACs':>11} {'instructions':>13} {'insn/MAC':>8} {'flash B':>9} "
          f"{'code B':>7} {'weights B':>9} {'arena B':>8} {'stack B':>7} {'RAM B':>8} {'est. ms':>8} {'est. uJ':>9} "
          f"{'=host':>5}")
    for name, model, inputs in rows([r for r in args.rows.split(",") if r]):
        report = modelblocks.simulate(model, inputs, target=args.target, runs=args.runs, print_table=False)
        (t,) = report.targets
        s, sim = t.simulation.build.sizes, t.simulation
        ipm = f"{t.instructions / report.macs:.2f}" if report.macs else "-"
        print(f"{name:<24} {max(c.rel_l2_torch for c in t.checks):>9.2e} {report.macs:>11,} {t.instructions:>13,} "
              f"{ipm:>8} {s.flash:>9,} {s.model_code + s.library_code:>7,} {s.weights:>9,} {s.arena:>8,} "
              f"{sim.stack_bytes:>7,} {s.ram_static + sim.stack_bytes:>8,} {t.estimate.latency_ms:>8.3f} "
              f"{t.estimate.energy_uj:>9.1f} {'yes' if all(c.exact_host for c in t.checks) else 'no':>5}"
              + ("" if t.ok else "  FAIL"))
    for name, model, inputs in rows([r for r in args.compare.split(",") if r]):
        report = modelblocks.simulate(model, inputs, target="all", runs=1, print_table=False)
        print()
        print(f"[{name}] " + format_comparison(report))


if __name__ == "__main__":
    main()
