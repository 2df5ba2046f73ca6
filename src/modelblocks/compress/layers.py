"""Removing whole layers (the project plan's "pruning of an intermediate layer"): the layers whose
removal costs least, measured on the user's data.

A candidate is a layer of a stack (an element of an nn.Sequential or nn.ModuleList) that has
parameters and maps its input to an output of the same shape: a residual transformer block, or a
Linear(h, h). Removing it means replacing it by nn.Identity, so the model code runs unchanged.
The cost of a removal is measured, not guessed: the relative L2 distance between the outputs of
the model without the layer and the original model's, over `data`. Removals are greedy: the
cheapest first, then the remaining candidates are measured again on the model without it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import InputError
from ..passes.quantize import scope_matches
from .modules import Compression, LayerChange, as_batches, copy_model, count_params, describe, get_module, set_module


def removal_candidates(model: nn.Module, example_inputs) -> list[str]:
    """Paths of the stack layers whose output has their input's shape (see the module docstring)."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    stacks = [p for p, m in model.named_modules() if isinstance(m, (nn.Sequential, nn.ModuleList))]
    members = {f"{s}.{name}" if s else name: child for s in stacks
               for name, child in get_module(model, s).named_children()}
    same_shape: dict[str, bool] = {}
    hooks = []
    for path, module in members.items():
        if count_params(module) == 0:
            continue

        def hook(mod, args, out, path=path):
            x = args[0] if args else None
            ok = len(args) == 1 and isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) \
                and x.shape == out.shape
            same_shape[path] = same_shape.get(path, True) and ok
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in hooks:
            h.remove()
    return [p for p, ok in same_shape.items() if ok]


def _outputs(model: nn.Module, batches) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(*b).detach().double().reshape(len(b[0]), -1).numpy() for b in batches])


def remove_layers(model: nn.Module, example_inputs, *, count: int = 1, data=None,
                  candidates: Sequence[str] | None = None) -> Compression:
    """A copy of `model` without the `count` stack layers whose removal changes its outputs on
    `data` (samples [N, ...]) least; `candidates` (globs) limits which layers may go."""
    if data is None:
        raise InputError("remove_layers measures what each removal costs on data: pass data= (samples [N, ...])")
    if count < 1:
        raise InputError(f"count must be at least 1, got {count}")
    student = copy_model(model)
    found = removal_candidates(student, example_inputs)
    if candidates is not None:
        found = [p for p in found if any(scope_matches(p, g) for g in candidates)]
    if len(found) < count:
        raise InputError(f"only {len(found)} layer(s) can be removed ({', '.join(found) or 'none'}: a layer of an "
                         f"nn.Sequential/ModuleList with parameters and equal input and output shapes), "
                         f"asked for {count}")
    batches = as_batches(data)
    reference = _outputs(student, batches)
    norm = float(np.linalg.norm(reference)) or 1.0
    changes = []
    for _ in range(count):
        costs = []
        for path in found:
            original = get_module(student, path)
            set_module(student, path, nn.Identity())
            costs.append(float(np.linalg.norm(_outputs(student, batches) - reference)) / norm)
            set_module(student, path, original)
        best = int(np.argmin(costs))
        path = found.pop(best)
        module = get_module(student, path)
        set_module(student, path, nn.Identity())
        found = [p for p in found if not p.startswith(path + ".")]
        changes.append(LayerChange(path, "removed", describe(module), "Identity", count_params(module), 0,
                                   f"output rel L2 vs original {costs[best]:.4f} (cheapest of {len(costs)})"))
    return Compression(student, changes, original=model)
