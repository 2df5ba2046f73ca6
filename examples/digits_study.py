"""Compression study on scikit-learn's 8x8 digits: how much accuracy each way of shrinking a model
costs, measured on the generated C.

For each model (the MLP and the ViT of `modelblocks.models.digits` by default), sweeps data-aware
low-rank factorization, channel and head pruning, layer removal, weight sparsity and three precisions (float32,
int8-weights, int8), with a few epochs of distillation after each compression; every point is
compiled to C and run on the 540 test images. Writes, per model, into OUT/<model>/:
study.csv, study.json, accuracy_vs_flash.png and accuracy_vs_macs.png (Pareto front marked), and
prints the table and the best point that fits the NUCLEO-H723ZG within 1 point of accuracy.

Run:  .venv/bin/python examples/digits_study.py [--models mlp vit] [--out build/digits_study]
      [--finetune 5] [--combine axes|grid] [--code auto|m7|host|none]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from modelblocks.compress.study import StudyData, StudySpec, run_study
from modelblocks.models import digits
from modelblocks.reports.study import format_study, save_study, select_best
from modelblocks.targets.boards import get_board

SPECS = {  # the sweeps; "b0.5": a low-rank budget of half the weights
    "mlp": dict(ranks=[None, 0.999, "b0.5", "b0.3"], channels=[0.0, 0.25, 0.5], sparsity=[0.0, 0.5, 0.8]),
    "cnn": dict(ranks=[None, 0.999, "b0.5"], channels=[0.0, 0.25, 0.5], sparsity=[0.0, 0.5, 0.8]),
    "vit": dict(ranks=[None, "b0.5", "b0.3"], channels=[0.0, 0.5, 0.75], heads=[0.0, 0.5], sparsity=[0.0, 0.5, 0.8],
                layers=[0, 1]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "vit"], choices=sorted(SPECS))
    parser.add_argument("--out", default="build/digits_study")
    parser.add_argument("--finetune", type=int, default=5, help="distillation epochs per point (0: none)")
    parser.add_argument("--finetune-lr", type=float, default=2e-3)
    parser.add_argument("--combine", default="axes", choices=["axes", "grid"])
    parser.add_argument("--precisions", default="float32,int8-weights,int8")
    parser.add_argument("--code", default="auto", choices=["auto", "m7", "host", "none"])
    parser.add_argument("--max-drop", type=float, default=1.0)
    args = parser.parse_args()
    data = digits.load_data()
    study_data = StudyData(data.x_test.numpy(), data.y_test.numpy(), data.x_train.numpy(), data.y_train.numpy(),
                           data.x_calib.numpy())
    board = get_board("stm32h723zg")
    for name in args.models:
        model = digits.trained(name)
        spec = StudySpec(**SPECS[name], precisions=args.precisions.split(","), combine=args.combine,
                         finetune=args.finetune, finetune_lr=args.finetune_lr, exclude=("head",))
        t0 = time.perf_counter()
        study = run_study(model, torch.zeros(1, 1, 8, 8), study_data, spec, code=args.code)
        seconds = time.perf_counter() - t0
        selection = select_best(study.points, board, args.max_drop)
        written = save_study(study.points, selection, Path(args.out) / name,
                             f"digits {name.upper()}: compression study", board)
        print(f"\n== digits {name.upper()}: {len(study.points)} points in {seconds:.0f} s "
              f"(finetune {args.finetune} epochs, {args.combine})")
        print(format_study(study.points, selection, board))
        print("wrote", ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
