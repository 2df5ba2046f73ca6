"""The compression study: sweep compression settings on the user's data and measure, for each,
what it costs in accuracy and what it saves in flash, RAM and MACs.

Axes (each a list; 0 / None means "not applied"):
- `layers`: how many stack layers to remove (compress.layers, the cheapest first),
- `channels`: fraction of neurons/channels removed per prunable layer (compress.structured),
- `heads`: fraction of attention heads removed per attention (compress.heads),
- `ranks`: low-rank factorization (data-aware, on the training data): an energy level in (0, 1)
  (e.g. 0.99), an integer rank d for every layer, per-layer ranks (("blocks.*.mlp.*", 16), ...),
  or "b0.5" (a budget: half the weights of the factored layers),
- `sparsity`: fraction of weights zeroed by magnitude (compress.unstructured, global),
- `precisions`: float32, int8-weights, int8.
With `combine="grid"` every combination is a point; with "axes" each axis is swept alone (the
others at "not applied"), every one at each precision. Fine-tuning by distillation (`finetune`
epochs, needs training data) runs after the compression of each point and before quantization.

Every point is compiled to C and measured *on the C*: the host build runs each evaluation sample
(batch 1), so accuracy, agreement with the original model and output error are the generated
code's. The C is also checked against its own reference on the first samples: float C within
relative L2 1e-5 of the compressed PyTorch model, int8 C bit-exact with the int8 interpreter.
Flash = weights + code (code measured on a Cortex-M7 build when the Arm toolchain is installed,
else a host-compiler estimate), arena from the memory plan, MACs from the op registry (a sparse
layer counts its nonzero weights), params = the compressed model's nonzero parameters.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import InputError
from ..frontend.checks import check_finite
from ..metrics import rel_l2
from ..reports.study import PRECISIONS, StudyPoint
from .distill import distill
from .heads import prune_heads
from .layers import remove_layers
from .lowrank import low_rank
from .modules import Compression
from .structured import prune_channels
from .unstructured import prune_weights

CHECK_SAMPLES = 8  # evaluation samples on which C is compared with its reference, per point


class Setting(NamedTuple):
    """One compressed model of the study; the defaults leave the model as it is."""

    layers: int = 0  # stack layers removed
    channels: float = 0.0  # fraction of neurons/channels removed per prunable layer
    heads: float = 0.0  # fraction of attention heads removed per attention
    rank: float | int | str | None = None  # energy level, rank d, or "b<fraction>" budget
    sparsity: float = 0.0  # fraction of weights zeroed


ORIGINAL = Setting()


@dataclass
class StudySpec:
    ranks: Sequence[float | int | str | None] = (None,)
    sparsity: Sequence[float] = (0.0,)
    channels: Sequence[float] = (0.0,)
    heads: Sequence[float] = (0.0,)
    layers: Sequence[int] = (0,)
    precisions: Sequence[str] = ("float32",)
    combine: str = "grid"  # "grid" or "axes"
    finetune: int = 0  # distillation epochs per point (0: none)
    finetune_lr: float = 1e-3
    exclude: Sequence[str] = ()  # module globs never compressed (e.g. the classifier head)

    def check(self) -> None:
        for p in self.precisions:
            if p not in PRECISIONS:
                raise InputError(f"precision {p!r}: choose from {', '.join(PRECISIONS)}")
        for r in self.ranks:
            rank_ok = isinstance(r, (int, np.integer)) and not isinstance(r, bool) and r >= 1
            energy_ok = isinstance(r, float) and 0 < r <= 1
            per_layer = isinstance(r, tuple) and r and all(isinstance(g, str) and isinstance(d, int) and d >= 1
                                                           for g, d in r)
            if r is not None and not rank_ok and not energy_ok and not _is_budget(r) and not per_layer:
                raise InputError(f"rank setting {r!r}: an energy level in (0, 1], an integer rank >= 1, b<fraction> "
                                 "(a weight budget, e.g. b0.5), or per-layer ranks ((glob, d), ...)")
        for s in list(self.sparsity) + list(self.channels) + list(self.heads):
            if not 0.0 <= s < 1.0:
                raise InputError(f"sparsity, channel and head fractions must be in [0, 1), got {s}")
        for n in self.layers:
            if n < 0:
                raise InputError(f"layers to remove must be >= 0, got {n}")
        if self.combine not in ("grid", "axes"):
            raise InputError(f"combine must be 'grid' or 'axes', got {self.combine!r}")
        if self.finetune < 0:
            raise InputError(f"finetune epochs must be >= 0, got {self.finetune}")

    def settings(self) -> list[Setting]:
        """Every compressed model of the study, the uncompressed one first."""
        axes = [list(self.layers), list(self.channels), list(self.heads), list(self.ranks), list(self.sparsity)]
        if self.combine == "grid":
            found = [Setting(*values) for values in itertools.product(*axes)]
        else:
            found = [ORIGINAL._replace(**{Setting._fields[k]: v}) for k, values in enumerate(axes) for v in values]
        return list(dict.fromkeys([ORIGINAL] + [_normal(s) for s in found]))


def _is_budget(r) -> bool:
    try:
        return isinstance(r, str) and r.startswith("b") and 0 < float(r[1:]) <= 1
    except ValueError:
        return False


def _normal(s: Setting) -> Setting:
    rank = s.rank
    if rank is not None and (isinstance(rank, float) and rank >= 1.0):
        rank = None  # all the energy: nothing to factor
    return Setting(int(s.layers or 0), float(s.channels or 0.0), float(s.heads or 0.0), rank, float(s.sparsity or 0.0))


@dataclass
class StudyData:
    """Evaluation samples (and labels); training samples for data-aware pruning and fine-tuning;
    calibration samples for int8 (default: the first 256 training samples, else evaluation ones)."""

    x_eval: np.ndarray
    y_eval: np.ndarray | None = None
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    x_calib: np.ndarray | None = None

    @property
    def calibration(self) -> np.ndarray:
        if self.x_calib is not None:
            return self.x_calib
        return (self.x_train if self.x_train is not None else self.x_eval)[:256]

    @property
    def fit_data(self) -> np.ndarray:
        """Samples that data-aware pruning measures activations on."""
        return self.x_train if self.x_train is not None else self.calibration


@dataclass
class Study:
    points: list[StudyPoint] = field(default_factory=list)
    models: dict[str, Compression] = field(default_factory=dict)  # compression name -> compressed model


def setting_name(setting: Setting) -> str:
    s = setting
    parts = []
    if s.layers:
        parts.append(f"-{s.layers} layer{'s' if s.layers > 1 else ''}")
    if s.channels:
        parts.append(f"channels -{s.channels:.0%}")
    if s.heads:
        parts.append(f"heads -{s.heads:.0%}")
    if s.rank is not None:
        parts.append(_rank_text(s.rank, short=True))
    if s.sparsity:
        parts.append(f"sparsity {s.sparsity:.0%}")
    return " + ".join(parts) or "original"


def _rank_text(rank, short: bool) -> str:
    if isinstance(rank, tuple):
        text = ",".join(f"{g}={d}" for g, d in rank)
        return f"rank {text}" if short else text
    if isinstance(rank, str):
        return f"rank budget {float(rank[1:]):.0%}" if short else f"budget {float(rank[1:]):g}"
    if isinstance(rank, float):
        return f"rank e={rank:g}" if short else f"energy {rank:g}"
    return f"rank d={rank}" if short else f"d={rank}"


def compress_model(model: nn.Module, example_inputs, setting: Setting, data: StudyData, *, exclude=(),
                   finetune: int = 0, finetune_lr: float = 1e-3, seed: int = 0) -> Compression:
    """Apply one study setting: remove layers, prune channels and heads, factor, sparsify, then fine-tune."""
    layers, channels, heads, rank, sparsity = setting
    current = Compression(model, original=model)
    changes, masks = [], {}
    if layers:
        current = remove_layers(current.model, example_inputs, count=layers, data=data.fit_data)
        changes += current.changes
    if channels:
        current = prune_channels(current.model, example_inputs, amount=channels, data=data.fit_data, exclude=exclude)
        changes += current.changes
    if heads:
        current = prune_heads(current.model, example_inputs, amount=heads, data=data.fit_data)
        changes += current.changes
    if rank is not None:
        if isinstance(rank, tuple):  # ((glob, d), ...): rank d for the layers each glob names, others dense
            kind = {"rank": dict(rank)}
        elif isinstance(rank, str):  # "b0.5": a budget of half the weights
            kind = {"budget": float(rank[1:])}
        else:
            kind = {"energy": rank} if isinstance(rank, float) else {"rank": int(rank)}
        current = low_rank(current.model, exclude=exclude, data=data.fit_data, **kind)
        changes += current.changes
    if sparsity:
        current = prune_weights(current.model, sparsity, scope="global", exclude=exclude)
        changes += current.changes
        masks = current.masks
    result = Compression(current.model, changes, masks, original=model)
    if finetune and setting != ORIGINAL:
        if data.x_train is None:
            raise InputError("fine-tuning needs training data (x_train / --train)")
        tuned = distill(result, model, data.x_train, data.y_train, epochs=finetune, lr=finetune_lr, seed=seed)
        result = Compression(tuned.model, changes + tuned.changes[-1:], masks, original=model, log=tuned.log)
    return result


def run_study(model: nn.Module, example_inputs, data: StudyData, spec: StudySpec, *, seed: int = 0,
              code: str = "auto", progress: Callable[[str], None] | None = None) -> Study:
    """Every point of `spec` on `model`; see the module docstring. `code`: "m7" (measure on a
    Cortex-M7 build), "host" (host-compiler estimate), "auto" (m7 when the toolchain is there) or
    "none" (flash = weights)."""
    from ..api import compile as mb_compile  # noqa: PLC0415

    spec.check()
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"the study changes and fine-tunes a torch.nn.Module, and {_describe(model)} is not one. "
                         "What to change: run it on the PyTorch model (model.py:Class with --weights); an ONNX or "
                         ".pt2 model can still be compiled in int8 with compile --quantize int8")
    buffers = {name for name, _ in model.named_buffers()}
    check_finite(((name, t.detach().cpu().numpy(), name in buffers) for name, t in model.state_dict().items()),
                 "the model", allow=False,
                 remedy="A study measures accuracy, which NaN or Inf weights make meaningless (every point would "
                        "inherit them), so it has no --allow-nonfinite. What to change: check the training run (a "
                        "diverged loss) and the weights file")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if len(example_inputs) != 1:
        raise InputError("the study evaluates single-input models (one array of samples)")
    x_eval = np.asarray(data.x_eval, dtype=np.float32)
    sample_shape = tuple(example_inputs[0].shape[1:])
    if x_eval.ndim < 1 or tuple(x_eval.shape[1:]) != sample_shape:
        raise InputError(f"evaluation data has shape {list(x_eval.shape)}, the model takes [N, "
                         f"{', '.join(map(str, sample_shape))}]")
    if data.y_eval is not None and len(data.y_eval) != len(x_eval):
        raise InputError(f"{len(x_eval)} evaluation samples but {len(data.y_eval)} labels")
    model = model.eval()
    with torch.no_grad():
        original = np.concatenate([model(torch.from_numpy(x_eval[i:i + 256])).double().numpy()
                                   for i in range(0, len(x_eval), 256)])
    study = Study()
    for setting in spec.settings():
        name = setting_name(setting)
        if progress:
            progress(f"compressing: {name}")
        compressed = compress_model(model, example_inputs, setting, data, exclude=spec.exclude,
                                    finetune=spec.finetune, finetune_lr=spec.finetune_lr, seed=seed)
        study.models[name] = compressed
        for precision in spec.precisions:
            if progress:
                progress(f"compiling and measuring: {name}, {precision}")
            quant = {} if precision == "float32" else {"quantize": precision}
            if precision == "int8":
                quant["calibration"] = np.asarray(data.calibration, dtype=np.float32)
            compiled = mb_compile(compressed.model, example_inputs, **quant)
            study.points.append(_measure(compiled, compressed, setting, precision, x_eval, data.y_eval, original,
                                         bool(spec.finetune) and setting != ORIGINAL, code))
    return study


def _measure(compiled, compressed: Compression, setting, precision: str, x_eval, y_eval, original, finetuned: bool,
             code: str) -> StudyPoint:
    outputs = np.concatenate([compiled.run_c([x_eval[i:i + 1]])[0].astype(np.float64).reshape(1, -1)
                              for i in range(len(x_eval))])
    c_check = _check_c(compiled, compressed.model, x_eval[:CHECK_SAMPLES], outputs[:CHECK_SAMPLES], precision)
    pred = outputs.argmax(-1)
    report = _memory(compiled, code)
    layers, channels, heads, rank, sparsity = setting
    return StudyPoint(
        name=f"{setting_name(setting)}, {precision}" if setting_name(setting) != "original" else precision,
        rank="" if rank is None else _rank_text(rank, short=False),
        sparsity=float(sparsity),
        structured=", ".join(x for x in (f"channels {channels:.0%}" if channels else "",
                                         f"heads {heads:.0%}" if heads else "",
                                         f"layers -{layers}" if layers else "") if x),
        precision=precision, finetuned=finetuned,
        accuracy=float(np.mean(pred == np.asarray(y_eval))) if y_eval is not None else None,
        agreement=float(np.mean(pred == original.argmax(-1))),
        output_rel_l2=rel_l2(outputs, original.reshape(len(original), -1)),
        flash_bytes=int(report["totals"]["flash_bytes"]), weights_bytes=int(report["weights_bytes"]),
        arena_bytes=int(report["arena_bytes"]), macs=int(report["macs"]), params=compressed.nonzero_after,
        c_check=c_check, baseline=setting == ORIGINAL and precision == "float32")


def _check_c(compiled, model: nn.Module, x: np.ndarray, c_out: np.ndarray, precision: str) -> str:
    """The C against its own reference: the compressed PyTorch model (float32) or the interpreter.
    A mismatch would be a ModelBlocks bug; it is reported in the point (starting "FAILED") and the
    study command exits 1."""
    if precision == "float32":
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).double().numpy().reshape(len(x), -1)
        err = rel_l2(c_out, ref)
        return f"{'' if err < 1e-5 else 'FAILED: '}C vs PyTorch rel L2 {err:.1e}"
    ref = np.concatenate([compiled.run_reference([x[i:i + 1]])[0].astype(np.float64).reshape(1, -1)
                          for i in range(len(x))])
    if precision == "int8":
        exact = np.array_equal(ref, c_out)
        if exact:
            return "C == interpreter (bit-exact)"
        return f"FAILED: C != interpreter (rel L2 {rel_l2(c_out, ref):.1e})"
    err = rel_l2(c_out, ref)
    return f"{'' if err < 1e-5 else 'FAILED: '}C vs interpreter rel L2 {err:.1e}"


def _memory(compiled, code: str) -> dict:
    from ..reports.analyze import estimate_code_and_stack, measure_code_and_stack  # noqa: PLC0415
    from ..reports.report import build_report  # noqa: PLC0415

    if code not in ("auto", "m7", "host", "none"):
        raise InputError(f"code must be auto, m7, host or none, got {code!r}")
    estimates = {}
    if code in ("auto", "m7"):
        estimates = measure_code_and_stack(compiled)
        if not estimates and code == "m7":
            raise InputError("code='m7' needs the Arm toolchain and QEMU (see the README)")
    if not estimates and code in ("auto", "host"):
        estimates = estimate_code_and_stack(compiled.source)
    return build_report(compiled.graph, compiled.source, estimates)


def load_samples(path, what: str = "data") -> tuple[np.ndarray, np.ndarray | None]:
    """Samples and optional labels from an .npz (arrays `x` and `y`; also `inputs`/`labels`, or a
    single array) or an .npy of samples."""
    from pathlib import Path  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} file {path} is not a NumPy .npz/.npy file: {exc}") from None
    if isinstance(loaded, np.ndarray):
        return _samples(loaded, path), None
    with loaded:
        keys = list(loaded.keys())
        x_key = next((k for k in ("x", "inputs", "input", "data") if k in keys), keys[0] if len(keys) == 1 else None)
        if x_key is None:
            raise InputError(f"{what} file {path} holds {keys}: name the samples 'x' (and the labels 'y')")
        y_key = next((k for k in ("y", "labels", "label", "targets") if k in keys), None)
        x = _samples(loaded[x_key], path)
        y = np.asarray(loaded[y_key]) if y_key else None
    if y is not None:
        if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise InputError(f"{what} file {path}: labels '{y_key}' must be integers [N] with N = {len(x)} samples, "
                             f"got {y.dtype} {list(y.shape)}")
    return x, y


def _samples(x: np.ndarray, path) -> np.ndarray:
    if x.dtype.kind not in "fiu" or x.ndim < 2:
        raise InputError(f"{path}: samples must be a numeric array [N, ...], got {x.dtype} {list(x.shape)}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path}: the samples contain NaN or Inf")
    return x


def _describe(model) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    return f"a {type(model).__name__}"
