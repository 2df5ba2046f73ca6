"""Reference vs optimised C kernels on the Cortex-M7 in QEMU: exact instructions of one layer and
instructions per MAC, per op and shape (conv 3x3, depthwise 3x3, pointwise, linear, attention matmul),
float32 and int8, in one run.

    .venv/bin/python bench/kernels.py [--precision float32,int8] [--only conv3x3,linear] [--opt -O2]
                                      [--json out.json]

Each case is a one-layer PyTorch model compiled twice, with kernels="reference" and "optimized"; one
QEMU run of each gives the layer's exact count (the TCG plugin's per-layer marks, targets/qemu.py).
Every optimised result is checked in the same run: int8 bit-exact with the NumPy interpreter, float32
within 1e-6 (relative L2) of the reference kernel's output on the M7. The shapes are the layers of
the MLPerf-Tiny-like models of bench/models.py and of the test bank's transformer.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

import modelblocks
from modelblocks.metrics import rel_l2

# name, kind, module factory, input shape(s)
CASES = [
    ("conv3x3 16->16 32x32", "conv3x3", lambda: nn.Conv2d(16, 16, 3, 1, 1), [(1, 16, 32, 32)]),
    ("conv3x3 32->32 16x16", "conv3x3", lambda: nn.Conv2d(32, 32, 3, 1, 1), [(1, 32, 16, 16)]),
    ("conv3x3 64->64 8x8", "conv3x3", lambda: nn.Conv2d(64, 64, 3, 1, 1), [(1, 64, 8, 8)]),
    ("conv3x3 s2 16->32 32x32", "conv3x3", lambda: nn.Conv2d(16, 32, 3, 2, 1), [(1, 16, 32, 32)]),
    ("conv3x3 s2 3->8 96x96", "conv3x3", lambda: nn.Conv2d(3, 8, 3, 2, 1), [(1, 3, 96, 96)]),
    ("conv10x4 s2 1->64 49x10", "conv", lambda: nn.Conv2d(1, 64, (10, 4), 2, (4, 1)), [(1, 1, 49, 10)]),
    ("depthwise3x3 64 25x5", "depthwise", lambda: nn.Conv2d(64, 64, 3, 1, 1, groups=64), [(1, 64, 25, 5)]),
    ("depthwise3x3 32 24x24", "depthwise", lambda: nn.Conv2d(32, 32, 3, 1, 1, groups=32), [(1, 32, 24, 24)]),
    ("depthwise3x3 s2 64 24x24", "depthwise", lambda: nn.Conv2d(64, 64, 3, 2, 1, groups=64), [(1, 64, 24, 24)]),
    ("pointwise 64->64 25x5", "pointwise", lambda: nn.Conv2d(64, 64, 1), [(1, 64, 25, 5)]),
    ("pointwise 32->64 12x12", "pointwise", lambda: nn.Conv2d(32, 64, 1), [(1, 32, 12, 12)]),
    ("pointwise 128->128 6x6", "pointwise", lambda: nn.Conv2d(128, 128, 1), [(1, 128, 6, 6)]),
    ("linear 640->128", "linear", lambda: nn.Linear(640, 128), [(1, 640)]),
    ("linear 256->256", "linear", lambda: nn.Linear(256, 256), [(1, 256)]),
    ("linear 128->128", "linear", lambda: nn.Linear(128, 128), [(1, 128)]),
    ("linear 17x64->128 (tokens)", "linear", lambda: nn.Linear(64, 128), [(17, 64)]),
    ("linear 17x128->64 (tokens)", "linear", lambda: nn.Linear(128, 64), [(17, 128)]),
    ("matmul q@k^T 4x17x16", "matmul", lambda: QK(), [(4, 17, 16), (4, 17, 16)]),
    ("matmul attn@v 4x17x17", "matmul", lambda: AV(), [(4, 17, 17), (4, 17, 16)]),
]
MAIN_OPS = {"conv", "q_conv", "linear", "q_linear", "matmul", "q_matmul"}


class QK(nn.Module):
    def forward(self, q, k):
        return q @ k.transpose(-2, -1)


class AV(nn.Module):
    def forward(self, a, v):
        return a @ v


@dataclass
class Row:
    case: str
    kind: str
    precision: str
    macs: int
    kernel: str  # the optimised variant the layer got ("" = the reference kernel)
    ref_instructions: int
    opt_instructions: int
    ref_per_mac: float
    opt_per_mac: float
    speedup: float
    check: str


def _layer(compiled, sim) -> tuple[int, int, str]:
    """(instructions, MACs, kernel) of the layer doing the work (the one with the most MACs)."""
    report = {r["index"]: r for r in compiled.report["layers"]}
    counts = {c.index: c.instructions for c in sim.layers}
    index = max((i for i, n in enumerate(compiled.graph.nodes) if n.op in MAIN_OPS), key=lambda i: report[i]["macs"])
    return counts[index], report[index]["macs"], compiled.graph.nodes[index].kernel


def measure(case, precision: str, opt: str, seed: int = 0) -> Row:
    name, kind, make, shapes = case
    torch.manual_seed(seed)
    model = make().eval()
    inputs = [torch.randn(*s) for s in shapes]
    kw = {}
    if precision == "int8":
        batches = [tuple(torch.randn(*s).numpy() for s in shapes) for _ in range(8)]
        kw = {"quantize": "int8", "calibration": lambda: batches}
    arrays = [x.numpy() for x in inputs]
    results = {}
    for kernels in ("reference", "optimized"):
        compiled = modelblocks.compile(model, tuple(inputs), kernels=kernels, **kw)
        sim = compiled.simulate([arrays], target="cortex-m7", opt=opt)
        results[kernels] = (compiled, sim, *_layer(compiled, sim))
    (ref_c, ref_sim, ref_n, macs, _), (opt_c, opt_sim, opt_n, _, kernel) = results["reference"], results["optimized"]
    if precision == "int8":
        want = opt_c.run_reference(arrays)
        exact = all(np.array_equal(a, b) for a, b in zip(opt_sim.outputs[0], want))
        check = "bit-exact" if exact else "MISMATCH"
    else:
        err = max(rel_l2(a, b) for a, b in zip(opt_sim.outputs[0], ref_sim.outputs[0]))
        check = f"rel {err:.1e}" if err < 1e-6 else f"MISMATCH rel {err:.1e}"
    return Row(name, kind, precision, macs, kernel, ref_n, opt_n, ref_n / macs, opt_n / macs, ref_n / opt_n, check)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="float32,int8", help="float32, int8 or both (comma-separated)")
    ap.add_argument("--only", default="", help="comma-separated kinds: conv3x3, conv, depthwise, pointwise, linear, matmul")
    ap.add_argument("--opt", default="-O2", help="optimisation flag of the Cortex-M7 build (default -O2)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    kinds = set(filter(None, args.only.split(",")))
    rows = []
    print(f"{'case':<28} {'prec':<7} {'MACs':>9} {'variant':<10} {'ref insn':>11} {'opt insn':>11} "
          f"{'ref/MAC':>8} {'opt/MAC':>8} {'speedup':>8}  check", flush=True)
    for case in CASES:
        if kinds and case[1] not in kinds:
            continue
        for precision in args.precision.split(","):
            r = measure(case, precision, args.opt)
            rows.append(r)
            print(f"{r.case:<28} {r.precision:<7} {r.macs:>9,} {r.kernel or '-':<10} {r.ref_instructions:>11,} "
                  f"{r.opt_instructions:>11,} {r.ref_per_mac:>8.2f} {r.opt_per_mac:>8.2f} {r.speedup:>7.2f}x  {r.check}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    return 1 if any("MISMATCH" in r.check for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
