"""What every compression step shares: finding modules by path, swapping them, and the record of
what a step changed (`Compression`, one `LayerChange` per layer touched or declined)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import InputError
from ..passes.quantize import scope_matches


@dataclass
class LayerChange:
    """One layer a compression step changed, or declined to change and why."""

    path: str  # module path, e.g. "blocks.0.mlp.0"
    kind: str  # "low-rank", "pair", "sparsity", "channels", "heads", "removed", "kept"
    before: str  # e.g. "Linear(64 -> 256)"
    after: str  # e.g. "rank 12: Linear(64 -> 12) + Linear(12 -> 256)"
    params_before: int
    params_after: int
    detail: str = ""  # e.g. "energy kept 0.952, ||W - W_d||_2 / ||W||_2 = 0.083"


@dataclass
class Compression:
    """A compressed copy of a model (the original is left untouched) and what was done to it.

    `masks` holds, for unstructured pruning, the 0/1 mask of each pruned weight (by parameter name)
    so that fine-tuning (compress.distill) keeps pruned weights at zero."""

    model: nn.Module
    changes: list[LayerChange] = field(default_factory=list)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    original: nn.Module | None = None  # the model it was made from
    log: object = None  # compress.distill: its DistillLog (loss per epoch)

    @property
    def params_before(self) -> int:
        """Parameters of the whole original model."""
        return count_params(self.original) if self.original is not None else count_params(self.model)

    @property
    def params_after(self) -> int:
        """Parameters of the whole compressed model (pruned-away weights still count: see `nonzero_after`)."""
        return count_params(self.model)

    @property
    def nonzero_after(self) -> int:
        return sum(int(torch.count_nonzero(p)) for p in self.model.parameters())

    def summary(self) -> str:
        lines = [f"{'module':<28} {'change':<10} {'before':<26} {'after':<44} {'params':>17}"]
        for c in self.changes:
            lines.append(f"{c.path:<28} {c.kind:<10} {c.before:<26} {c.after:<44} "
                         f"{c.params_before:>8,}->{c.params_after:<8,}" + (f"  {c.detail}" if c.detail else ""))
        changed = sum(c.kind != "kept" for c in self.changes)
        before, after, nonzero = self.params_before, self.params_after, self.nonzero_after
        line = f"{changed} layers changed; model {before:,} -> {after:,} parameters ({after / max(before, 1):.1%})"
        if self.masks:
            line += f", {nonzero:,} nonzero ({nonzero / max(before, 1):.1%})"
        lines.append(line)
        return "\n".join(lines)


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode: compression never edits the user's model."""
    if not isinstance(model, nn.Module):
        raise InputError(f"compression works on an nn.Module, got {type(model).__name__}")
    return copy.deepcopy(model).eval()


def get_module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        raise InputError(f"the model has no module {path!r}") from None


def set_module(model: nn.Module, path: str, new: nn.Module) -> None:
    if not path:
        raise InputError("cannot replace the whole model")
    parent_path, _, name = path.rpartition(".")
    setattr(get_module(model, parent_path), name, new)


def select(model: nn.Module, types: tuple[type, ...], layers: Sequence[str] | None = None,
           exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """Modules of `types` whose path matches one of the `layers` globs (all when None) and none of
    `exclude`. A glob also covers everything below it ('blocks.0' covers 'blocks.0.mlp.0')."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(exclude, str):
        exclude = [exclude]
    found = [(p, m) for p, m in model.named_modules() if p and isinstance(m, types)]
    chosen = [(p, m) for p, m in found
              if (layers is None or any(scope_matches(p, g) for g in layers))
              and not any(scope_matches(p, g) for g in exclude)]
    if layers is not None:
        for g in layers:
            if not any(scope_matches(p, g) for p, _ in found):
                names = ", ".join(p for p, _ in found[:30])
                raise InputError(f"layer pattern {g!r} matches no {'/'.join(t.__name__ for t in types)} module; "
                                 f"the candidates are: {names or '(none)'}")
    return chosen


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features} -> {module.out_features})"
    if isinstance(module, nn.modules.conv._ConvNd):
        k = "x".join(str(s) for s in module.kernel_size)
        return f"{type(module).__name__}({module.in_channels} -> {module.out_channels}, {k})"
    return type(module).__name__


def as_batches(data, batch_size: int = 256) -> list[tuple]:
    """Samples [N, ...] (a tensor or array, or a tuple of them, one per model input) as input batches."""
    if data is None:
        return []
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        return [(data[i:i + batch_size],) for i in range(0, len(data), batch_size)]
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (torch.Tensor, np.ndarray)) for d in data):
        data = [torch.as_tensor(d) for d in data]
        return [tuple(d[i:i + batch_size] for d in data) for i in range(0, len(data[0]), batch_size)]
    raise InputError("data must be a tensor or array of samples [N, ...] (or a tuple of them, one per model input)")


def keep_count(path: str, total: int, amount: float | None, keep: Mapping[str, int] | None,
               layers: Sequence[str] | None, what: str) -> int | None:
    """How many of a layer's `total` channels (or heads) to keep: `total` minus `amount` of them,
    or the count of the first `keep` glob matching `path`; None when `layers`/`keep` leave it alone."""
    if layers is not None and not any(scope_matches(path, g) for g in layers):
        return None
    if keep is not None:
        target = next((n for g, n in keep.items() if scope_matches(path, g)), None)
    else:
        target = total - int(round(amount * total))
    if target is not None and not 1 <= target <= total:
        raise InputError(f"cannot keep {target} of the {total} {what} of {path}")
    return target


def top(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` highest scores, in increasing order (ties: the lower index)."""
    return np.sort(np.argsort(-scores, kind="stable")[:count])


def run_with_input_hooks(model: nn.Module, paths: Sequence[str], data, record) -> None:
    """Run `data` (samples [N, ...]) through `model` in batches, calling `record(path, module, x)`
    with the first input of each module in `paths` on every call."""
    hooks = []
    for path in paths:
        def hook(module, args, path=path):
            record(path, module, args[0].detach())
        hooks.append(get_module(model, path).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for batch in as_batches(data):
                model(*batch)
    finally:
        for h in hooks:
            h.remove()
