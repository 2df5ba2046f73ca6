"""Unstructured magnitude pruning: zero the weights of smallest magnitude, per layer (each layer
loses the same fraction) or globally (one threshold for all selected layers, so layers with many
small weights lose more).

Only the weight matrices of Linear and conv layers are pruned (biases, norms and embeddings are
small or sensitive). Zeros only save flash and time when the C stores them sparsely: the compiler's
`sparsify` pass picks a sparse kernel for a layer where that is smaller and faster, and keeps the
dense one elsewhere. The masks are returned so that fine-tuning (compress.distill) keeps the zeros.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..errors import InputError
from .modules import Compression, LayerChange, copy_model, describe, select

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prune_weights(model: nn.Module, sparsity: float, *, scope: str = "layer", layers: Sequence[str] | None = None,
                  exclude: Sequence[str] = ()) -> Compression:
    """A copy of `model` with a fraction `sparsity` of the selected layers' weights set to zero,
    the smallest |w| first; `scope` is "layer" (that fraction of each layer) or "global"."""
    if not 0.0 <= sparsity < 1.0:
        raise InputError(f"sparsity must be a fraction in [0, 1), got {sparsity}")
    if scope not in ("layer", "global"):
        raise InputError(f"scope must be 'layer' or 'global', got {scope!r}")
    student = copy_model(model)
    chosen = select(student, PRUNABLE, layers, exclude)
    if not chosen:
        raise InputError("the model has no Linear or conv layer to prune")
    weights = {path: module.weight for path, module in chosen}
    if scope == "global":
        magnitudes = torch.cat([w.detach().abs().flatten() for w in weights.values()])
        threshold = _kth_smallest(magnitudes, int(round(sparsity * magnitudes.numel())))
        masks = {path: _mask_at(w, threshold) for path, w in weights.items()}
        # ties at the threshold: drop them in order until the global count is met
        _trim_ties(weights, masks, int(round(sparsity * magnitudes.numel())), threshold)
    else:
        masks = {path: _mask_count(w, int(round(sparsity * w.numel()))) for path, w in weights.items()}
    changes, named = [], {}
    with torch.no_grad():
        for path, module in chosen:
            mask = masks[path]
            module.weight.mul_(mask.to(module.weight.dtype))
            named[f"{path}.weight"] = mask
            kept = int(mask.sum())
            n = mask.numel()
            changes.append(LayerChange(path, "sparsity", describe(module), f"{1 - kept / n:.1%} zeros",
                                       n, kept, f"{n - kept:,} of {n:,} weights zeroed ({scope})"))
    return Compression(student, changes, named, original=model)


def _kth_smallest(values: torch.Tensor, k: int) -> float:
    if k <= 0:
        return -1.0
    return float(torch.kthvalue(values.double(), k).values)


def _mask_at(w: torch.Tensor, threshold: float) -> torch.Tensor:
    return (w.detach().abs().double() > threshold).to(torch.uint8)


def _mask_count(w: torch.Tensor, k: int) -> torch.Tensor:
    """Keep all but the k weights of smallest magnitude (ties broken by position: deterministic)."""
    flat = w.detach().abs().flatten().double()
    mask = torch.ones(flat.numel(), dtype=torch.uint8)
    if k > 0:
        order = torch.sort(flat, stable=True).indices
        mask[order[:k]] = 0
    return mask.reshape(w.shape)


def _trim_ties(weights, masks, target: int, threshold: float) -> None:
    """`_mask_at` drops every weight <= threshold, which overshoots when several equal it: give
    back tied weights (in layer order, then position) until exactly `target` are dropped."""
    dropped = sum(int((m == 0).sum()) for m in masks.values())
    extra = dropped - target
    for path, w in weights.items():
        if extra <= 0:
            break
        tied = ((w.detach().abs().double() == threshold) & (masks[path] == 0)).flatten().nonzero().flatten()
        give = tied[:extra]
        masks[path].view(-1)[give] = 1
        extra -= len(give)


def sparsity_of(model: nn.Module, layers: Sequence[str] | None = None) -> float:
    """Fraction of zero weights over the Linear and conv weight matrices."""
    chosen = select(model, PRUNABLE, layers)
    total = sum(m.weight.numel() for _, m in chosen)
    zeros = sum(int((m.weight == 0).sum()) for _, m in chosen)
    return zeros / total if total else 0.0
