"""Memory plan quality on the test bank: for each model, the arena without reuse (naive), the planned
arena, the liveness lower bound (max over steps of the live arena bytes), and the ratios.

    .venv/bin/python bench/memory.py [--rows 04,12] [--peers [--peers-python /work/peers-venv/bin/python]]

The arena holds activations and kernel scratch only: graph inputs are read from the caller's buffer
and outputs written into the caller's buffer. `--peers` adds ExecuTorch's planned activation memory
(bench/peers_executorch.py, run in a separate venv with executorch==1.5.1); ExecuTorch plans the
graph inputs and outputs in its memory too, so the table also shows ours + input/output bytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
warnings.simplefilter("ignore")

import modelblocks  # noqa: E402
from bank_models import BANK  # noqa: E402
from modelblocks.memory import plan_naive  # noqa: E402


def measure(name: str) -> dict:
    model, inputs, _shapes = BANK[name]()
    compiled = modelblocks.compile(model, inputs)
    buffers = compiled.source.plan.buffers
    steps = max([len(compiled.graph.nodes)] + [b.last_use + 1 for b in buffers])
    live = [sum(b.size for b in buffers if b.first_use <= t <= b.last_use) for t in range(steps)]
    graph = compiled.graph
    io = sum(graph.tensors[n].nbytes for n in [*graph.inputs, *graph.outputs])
    return {"naive": plan_naive(buffers)[1], "planned": compiled.source.arena_bytes, "bound": max(live, default=0),
            "io": io, "buffers": len(buffers), "nodes": len(graph.nodes)}


def peers(python: str, rows: list[str]) -> dict:
    try:
        out = subprocess.run([python, str(HERE / "peers_executorch.py"), *rows], capture_output=True, text=True,
                             timeout=1800, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"peers: ExecuTorch run failed ({type(exc).__name__}); table without it", file=sys.stderr)
        return {}


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="", help="comma-separated row prefixes (default: all)")
    parser.add_argument("--peers", action="store_true", help="also run ExecuTorch's memory planner (separate venv)")
    parser.add_argument("--peers-python", default="/work/peers-venv/bin/python",
                        help="python of the venv with executorch==1.5.1 (default /work/peers-venv/bin/python)")
    args = parser.parse_args()
    wanted = [r for r in args.rows.split(",") if r]
    names = [n for n in sorted(BANK) if not wanted or any(n.startswith(w) for w in wanted)]
    et = peers(args.peers_python, wanted) if args.peers else {}
    head = f"{'row':<24} {'bufs':>4} {'naive B':>9} {'planned B':>10} {'bound B':>9} {'plan/bound':>10} {'naive/plan':>10}"
    if args.peers:
        head += f" {'ours+io B':>10} {'ExecuTorch B':>12} {'ET/(ours+io)':>12}"
    print(head)
    worst = 0.0
    for name in names:
        m = measure(name)
        worst = max(worst, m["planned"] / m["bound"] if m["bound"] else 1.0)
        line = (f"{name:<24} {m['buffers']:>4} {m['naive']:>9,} {m['planned']:>10,} {m['bound']:>9,} "
                f"{ratio(m['planned'], m['bound']):>10} {ratio(m['naive'], m['planned']):>10}")
        if args.peers:
            e = et.get(name, "n/a")
            ours = m["planned"] + m["io"]
            line += f" {ours:>10,} " + (f"{e:>12,} {ratio(e, ours):>12}" if isinstance(e, int) else f"{str(e)[:60]}")
        print(line)
    print(f"worst plan/bound: {worst:.3f}")


if __name__ == "__main__":
    main()
