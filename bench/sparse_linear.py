"""Dense vs CSR (sparse) Linear kernels on the Cortex-M7 in QEMU: exact instructions of the layer, per
dense MAC, at 30/50/70/90 % unstructured sparsity, float32 and int8; `--fit` also fits the per-MAC /
per-nonzero / per-output costs that passes/sparsify.py uses, against the reference dense kernels
(FLOAT_COSTS, INT8_COSTS) and the optimised ones (FLOAT_OPT_COSTS, INT8_OPT_COSTS).

    .venv/bin/python bench/sparse_linear.py [--size 256] [--fit]

Every layer of one model reads the same input; one simulation per dtype gives every layer's count
(the QEMU TCG plugin's per-layer marks, see targets/qemu.py). Weights have magnitudes in [0.1, 1] so
that int8 quantization adds no zeros: a layer's sparsity is exactly the one asked for.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn as nn

import modelblocks

SPARSITIES = (0.3, 0.5, 0.7, 0.9)
DENSE_OPS = ("linear", "q_linear")
SPARSE_OPS = ("linear_sparse", "q_linear_sparse")


def pruned_weight(out_features: int, in_features: int, sparsity: float, gen: torch.Generator) -> torch.Tensor:
    """Magnitudes in [0.1, 1] with random signs, then exactly round(sparsity * numel) zeros at random places."""
    w = (0.1 + 0.9 * torch.rand(out_features, in_features, generator=gen)) * torch.sign(
        torch.rand(out_features, in_features, generator=gen) - 0.5)
    k = int(round(sparsity * w.numel()))
    idx = torch.randperm(w.numel(), generator=gen)[:k]
    w.view(-1)[idx] = 0.0
    return w


class Layers(nn.Module):
    """One Linear per spec (in_features, out_features, sparsity), each on the first in_features inputs."""

    def __init__(self, specs, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.specs = list(specs)
        self.fcs = nn.ModuleList()
        for i, o, s in self.specs:
            fc = nn.Linear(i, o)
            with torch.no_grad():
                fc.weight.copy_(pruned_weight(o, i, s, gen))
            self.fcs.append(fc)

    def forward(self, x):
        return tuple(fc(x[..., :i]) if i < x.shape[-1] else fc(x) for fc, (i, _, _) in zip(self.fcs, self.specs))


def measure(specs, dtype: str, rows: int = 1, kernels: str = "optimized") -> list[dict]:
    """Per spec: the dense layer's instructions (sparse='off', on the `kernels` kernels) and the sparse
    layer's (sparse='always')."""
    width = max(i for i, _, _ in specs)
    model = Layers(specs).eval()
    x = torch.randn(rows, width)
    kw = {"quantize": "int8", "calibration": torch.randn(64 * rows, width)} if dtype == "int8" else {}
    counts = {}
    for mode in ("off", "always"):
        compiled = modelblocks.compile(model, (x,), sparse=mode, kernels=kernels, **kw)
        sim = compiled.simulate([x.numpy()], target="cortex-m7")
        ref = compiled.run_reference([x.numpy()])
        for got, want in zip(sim.outputs[0], ref):  # the counts are of a correct run
            if dtype == "int8":
                np.testing.assert_array_equal(got, want)
            else:
                assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want)
        by_index = {layer.index: layer.instructions for layer in sim.layers}
        linear = {n.scope: (by_index[k], n, compiled.graph) for k, n in enumerate(compiled.graph.nodes)
                  if n.op in DENSE_OPS + SPARSE_OPS}  # the schedule may reorder them: match by module path
        counts[mode] = [linear[f"fcs.{k}"] for k in range(len(specs))]
    rows_out = []
    for spec, (dense_n, dense_node, _), (sparse_n, sparse_node, g) in zip(specs, counts["off"], counts["always"]):
        i, o, s = spec
        nnz = g.tensors[sparse_node.inputs[1]].shape[0] if sparse_node.op in SPARSE_OPS else i * o
        rows_out.append({"in": i, "out": o, "sparsity": s, "rows": rows, "nnz": nnz, "dense": dense_n,
                         "sparse": sparse_n, "sparse_op": sparse_node.op, "dense_op": dense_node.op})
    return rows_out


def fit(results: list[dict]) -> dict:
    """Least squares: dense = rows * (out * in * per_mac + out * per_output) + call,
    sparse = rows * (nnz * per_nonzero + out * sparse_per_output) + call."""
    dense = {(r["in"], r["out"]): r for r in results}
    a = np.array([[r["rows"] * r["out"] * r["in"], r["rows"] * r["out"], 1.0] for r in dense.values()])
    y = np.array([r["dense"] for r in dense.values()], dtype=np.float64)
    (per_mac, per_output, call_d), *_ = np.linalg.lstsq(a, y, rcond=None)
    sp = [r for r in results if r["sparse_op"] in SPARSE_OPS]
    a = np.array([[r["rows"] * r["nnz"], r["rows"] * r["out"], 1.0] for r in sp])
    y = np.array([r["sparse"] for r in sp], dtype=np.float64)
    (per_nz, sparse_per_output, call_s), *_ = np.linalg.lstsq(a, y, rcond=None)
    return {"per_mac": per_mac, "per_output": per_output, "per_nonzero": per_nz,
            "sparse_per_output": sparse_per_output, "call_dense": call_d, "call_sparse": call_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="in = out features of the table's layer (default 256)")
    parser.add_argument("--fit", action="store_true",
                        help="also fit the costs over (in, out) in {64, 128, 256}^2 x sparsity 0/30/50/70/90 %%")
    args = parser.parse_args()
    n = args.size
    print(f"Cortex-M7 (QEMU mps2-an500), arm-none-eabi-gcc -O2; Linear({n}, {n}), batch 1; "
          "instructions of the layer (exact, TCG plugin)")
    print(f"{'dtype':<7} {'sparsity':>8} {'nnz':>7} {'dense insn':>11} {'sparse insn':>12} {'dense/MAC':>10} "
          f"{'sparse/MAC':>11} {'sparse/nnz':>11} {'speed-up':>9}")
    for dtype in ("float32", "int8"):
        for r in measure([(n, n, s) for s in SPARSITIES], dtype):
            macs = r["rows"] * r["in"] * r["out"]
            print(f"{dtype:<7} {r['sparsity']:>8.0%} {r['nnz']:>7,} {r['dense']:>11,} {r['sparse']:>12,} "
                  f"{r['dense'] / macs:>10.3f} {r['sparse'] / macs:>11.3f} {r['sparse'] / (r['rows'] * r['nnz']):>11.3f} "
                  f"{r['dense'] / r['sparse']:>8.2f}x")
    if args.fit:
        sizes = (64, 128, 256)
        specs = [(i, o, s) for i in sizes for o in sizes for s in (0.0, *SPARSITIES)]
        for dtype, const in (("float32", "FLOAT"), ("int8", "INT8")):
            for kernels, suffix in (("reference", "_COSTS"), ("optimized", "_OPT_COSTS")):
                results = measure(specs, dtype, kernels=kernels)
                c = fit(results)
                worst = max(abs(r["dense"] - (r["out"] * (r["in"] * c["per_mac"] + c["per_output"]) + c["call_dense"]))
                            / r["dense"] for r in results)
                worst_s = max(abs(r["sparse"] - (r["nnz"] * c["per_nonzero"] + r["out"] * c["sparse_per_output"]
                                                 + c["call_sparse"])) / r["sparse"]
                              for r in results if r["sparse_op"] in SPARSE_OPS)
                print(f"{const}{suffix} = Costs(per_mac={c['per_mac']:.3f}, per_output={c['per_output']:.2f}, "
                      f"per_nonzero={c['per_nonzero']:.3f}, sparse_per_output={c['sparse_per_output']:.2f})"
                      f"  # call overhead {c['call_dense']:.0f} / {c['call_sparse']:.0f} insns; fit within "
                      f"{100 * worst:.2f} % (dense) / {100 * worst_s:.2f} % (sparse)", flush=True)


if __name__ == "__main__":
    main()
