"""Measure the test bank: for every row, the worst relative L2 distance to PyTorch of the generated C
(host) and of the NumPy interpreter over several seeded random inputs, plus arena, weight bytes and MACs.

    .venv/bin/python bench/bank.py [--runs 5] [--rows 04,12]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import modelblocks  # noqa: E402
from bank_models import BANK  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", default="", help="comma-separated row prefixes (default: all)")
    args = parser.parse_args()
    wanted = [r for r in args.rows.split(",") if r]
    print(f"{'row':<24} {'C rel L2':>10} {'ref rel L2':>10} {'C max|err|':>11} {'arena B':>9} {'weights B':>10} {'MACs':>12}")
    for name in sorted(BANK):
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        model, inputs, _shapes = BANK[name]()
        compiled = modelblocks.compile(model, inputs)
        results = modelblocks.verify(model, inputs, runs=args.runs, compiled=compiled, print_table=False)
        rep = compiled.report
        print(f"{name:<24} {max(r.rel_l2_c for r in results):>10.2e} {max(r.rel_l2_ref for r in results):>10.2e} "
              f"{max(r.max_abs_c for r in results):>11.2e} {rep['arena_bytes']:>9,} {rep['weights_bytes']:>10,} "
              f"{rep['macs']:>12,}")


if __name__ == "__main__":
    main()
