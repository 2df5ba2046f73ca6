"""Real data, real accuracy: float vs int8 vs int8-weights C on scikit-learn's 8x8 digits.

Trains three small models (an MLP, a CNN and a ViT with hand-written attention; a few seconds each
on one core), compiles each three ways with ModelBlocks, runs the generated C on every test image
(batch 1, the way a microcontroller would) and prints a table:

  model, float accuracy (PyTorch and C), int8 and int8-weights accuracy (C), weight and arena bytes
  (float / int8), on how many test images the int8 C matches the NumPy interpreter bit for bit, and
  the largest float difference between C and interpreter for the float and int8-weights builds
  (float arithmetic in another order is not expected to be bit-exact).

Run:  .venv/bin/python examples/digits_quantize.py [--models mlp cnn vit] [--limit N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import modelblocks
from modelblocks.models import digits

VARIANTS = (("float", None), ("int8", "int8"), ("int8-weights", "int8-weights"))


def compile_variant(model, x0, quantize, calib_x):
    if quantize is None:
        return modelblocks.compile(model, (x0,))
    if quantize == "int8":
        return modelblocks.compile(model, (x0,), quantize="int8", calibration=calib_x)
    return modelblocks.compile(model, (x0,), quantize=quantize)


def evaluate(compiled, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy of the compiled C (batch 1 per call), and C vs interpreter agreement per sample."""
    correct = exact = 0
    max_abs = 0.0
    for i in range(len(x)):
        xi = x[i:i + 1]
        c = np.asarray(compiled.run_c([xi])[0])
        ref = np.asarray(compiled.run_reference([xi])[0])
        correct += int(c.reshape(-1).argmax() == y[i])
        exact += int(c.dtype == ref.dtype and np.array_equal(c, ref))
        max_abs = max(max_abs, float(np.max(np.abs(c.astype(np.float64) - ref.astype(np.float64)), initial=0.0)))
    return {"acc": correct / len(x), "exact": exact, "n": len(x), "max_abs": max_abs,
            "weights": compiled.source.weights_bytes, "arena": compiled.source.arena_bytes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(digits.RECIPES), choices=list(digits.RECIPES))
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N test images (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    data = digits.load_data()
    x_test, y_test = data.x_test.numpy(), data.y_test.numpy()
    if args.limit:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    x0 = data.x_train[:1]
    print(f"digits: {len(data.y_train)} train / {len(data.y_calib)} calibration / {len(data.y_test)} test images "
          f"(evaluating {len(y_test)})")

    rows, failures = [], []
    for name in args.models:
        info = digits.trained_info(name, args.seed)
        model = info.model
        torch_acc = digits.accuracy(model, x_test, y_test)
        print(f"{name}: trained in {info.seconds:.1f} s, float test accuracy (torch) {torch_acc:.2%}", flush=True)
        results = {}
        for label, quantize in VARIANTS:
            t0 = time.perf_counter()
            try:
                compiled = compile_variant(model, x0, quantize, data.x_calib)
                results[label] = evaluate(compiled, x_test, y_test)
            except Exception as exc:  # noqa: BLE001 (report every variant, then fail at the end)
                failures.append(f"{name} {label}: {type(exc).__name__}: {exc}")
                print(f"  {label}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                continue
            r = results[label]
            print(f"  {label:<12} C accuracy {r['acc']:.2%}, C == interpreter bit-exact on {r['exact']}/{r['n']} "
                  f"(max |diff| {r['max_abs']:.3g}), weights {r['weights']} B, arena {r['arena']} B "
                  f"[{time.perf_counter() - t0:.1f} s]", flush=True)
        rows.append((name, torch_acc, results))

    print()
    print(format_table(rows))
    if failures:
        print("\nfailed:\n  " + "\n  ".join(failures))
        return 1
    return 0


def format_table(rows) -> str:
    def pct(results, label):
        return f"{results[label]['acc']:.2%}" if label in results else "n/a"

    def pair(results, key):
        a, b = (str(results[v][key]) if v in results else "n/a" for v in ("float", "int8"))
        return f"{a} / {b}"

    def exact(results):
        r = results.get("int8")
        return f"{r['exact']}/{r['n']}" if r else "n/a"

    def float_diff(results):
        return " / ".join(f"{results[v]['max_abs']:.1e}" if v in results else "n/a" for v in ("float", "int8-weights"))

    header = ("model", "float (torch)", "float (C)", "int8 (C)", "int8-w (C)", "weights B float / int8",
              "arena B float / int8", "int8 C == interp (bit-exact)",
              "max |C - interp| float / int8-w")
    body = [(name, f"{acc:.2%}", pct(r, "float"), pct(r, "int8"), pct(r, "int8-weights"), pair(r, "weights"),
             pair(r, "arena"), exact(r), float_diff(r)) for name, acc, r in rows]
    widths = [max(len(str(row[i])) for row in (header, *body)) for i in range(len(header))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


if __name__ == "__main__":
    sys.exit(main())
