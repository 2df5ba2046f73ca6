"""Low-rank factorization: a Linear (or a Conv with groups=1) W is replaced by two layers through
rank d, computed by truncated SVD.

For W of shape [out, in] (a conv's [out, in, k...] is read as [out, in*k...]),
W = U S V^T and the best rank-d approximation in both the spectral and the Frobenius norm
(Eckart-Young) is W_d = U_d S_d V_d^T. It is split evenly, `up` = U_d sqrt(S_d) and
`down` = sqrt(S_d) V_d^T, so both factors have the same scale (which suits int8 quantization and
fine-tuning). A Linear becomes Linear(in -> d, no bias) then Linear(d -> out, bias); a conv becomes
the same conv with d filters (stride, padding, dilation kept, no bias) then a 1x1 conv d -> out.

The error is known before anything runs: ||W - W_d||_2 = s_{d+1}, so for every input x,
||W x - W_d x|| <= s_{d+1} ||x||, and ||W - W_d||_F^2 = sum_{i>d} s_i^2.

The factored layer has d (in + out) weights (in*k for a conv) instead of in*out, so it saves only
when d < in*out / (in + out); layers where the chosen d does not save stay dense, and say so.

d is chosen per layer by `rank` (an int, or {module glob: int}), by `energy` (the smallest d whose
singular values keep that fraction of sum s_i^2), or by a parameter `budget` for all the selected
layers together (one energy level for all, the highest that fits).

With `data` (typical inputs of the model) the factorization is data-aware: what matters is the
error on the inputs each layer really sees, E||(W - W_d) x||^2 = ||(W - W_d) R^T||_F^2 with
R^T R = E[x x^T] (x: the layer's input rows; for a conv, its patches). The best W_d is then
(U_d S_d V_d^T) R^-T from the SVD of W R^T, so the energy and the error bound refer to the
layer's outputs on that data rather than to W alone. This keeps much more accuracy at the same rank.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import InputError
from ..passes.quantize import scope_matches
from .modules import Compression, LayerChange, copy_model, describe, run_with_input_hooks, select, set_module

FACTORABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


class LowRank(nn.Sequential):
    """A layer factored through rank d: `down` (in -> d, no bias), then `up` (d -> out, the original bias)."""

    def __init__(self, down: nn.Module, up: nn.Module):
        super().__init__(OrderedDict(down=down, up=up))

    @property
    def rank(self) -> int:
        return self.up.in_features if isinstance(self.up, nn.Linear) else self.up.in_channels


@dataclass(frozen=True)
class Spectrum:
    """The singular values of one layer's weight matrix [out, in*k...]."""

    path: str
    out_features: int
    in_features: int  # in * prod(kernel) for a conv
    singular_values: np.ndarray  # float64, descending

    @property
    def max_rank(self) -> int:
        return len(self.singular_values)

    def dense_weights(self) -> int:
        return self.out_features * self.in_features

    def factored_weights(self, d: int) -> int:
        return d * (self.out_features + self.in_features)

    def break_even(self) -> int:
        """The largest d that still saves weights (0 when none does)."""
        d = self.dense_weights() // (self.out_features + self.in_features)
        while d > 0 and self.factored_weights(d) >= self.dense_weights():
            d -= 1
        return d

    def energy_rank(self, energy: float) -> int:
        """The smallest d whose singular values keep `energy` of sum s_i^2 (at least 1)."""
        return energy_rank(self.singular_values, energy)

    def energy_kept(self, d: int) -> float:
        s2 = self.singular_values ** 2
        total = s2.sum()
        return float(s2[:d].sum() / total) if total > 0 else 1.0

    def spectral_error(self, d: int) -> float:
        """||W - W_d||_2 / ||W||_2 = s_{d+1} / s_1."""
        s = self.singular_values
        return float(s[d] / s[0]) if d < len(s) and s[0] > 0 else 0.0

    def weights_after(self, d: int) -> int:
        """Weights of this layer with rank d, or dense when d does not save."""
        return self.factored_weights(d) if 0 < d <= self.break_even() else self.dense_weights()


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    if not 0.0 < energy <= 1.0:
        raise InputError(f"energy must be in (0, 1], got {energy}")
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    total = s2.sum()
    if total == 0:
        return 1
    kept = np.cumsum(s2) / total
    # a relative tolerance so that energy=1.0 does not demand more rank than rounding leaves
    return int(min(np.searchsorted(kept, energy * (1 - 1e-12)) + 1, len(s2)))


def weight_matrix(layer: nn.Module) -> np.ndarray:
    """The layer's weight as [out, in*k...] float64."""
    w = layer.weight.detach().to(torch.float64).numpy()
    return w.reshape(w.shape[0], -1)


def spectrum(path: str, layer: nn.Module, second_moment: np.ndarray | None = None) -> Spectrum:
    """Singular values of W, or of W R^T (data-aware: see the module docstring)."""
    w = weight_matrix(layer)
    if second_moment is not None:
        w = w @ input_root(second_moment).T
    return Spectrum(path, w.shape[0], w.shape[1], np.linalg.svd(w, compute_uv=False))


def factorize(w: np.ndarray, d: int, second_moment: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`down` [d, in] and `up` [out, d] with up @ down the best rank-d approximation of w [out, in]:
    in the Frobenius/spectral norm, or, given `second_moment` E[x x^T] [in, in] of the inputs, in
    E||(w - up down) x||^2."""
    w = np.asarray(w, dtype=np.float64)
    if not 1 <= d <= min(w.shape):
        raise InputError(f"rank {d} is outside 1..{min(w.shape)} for a {w.shape[0]}x{w.shape[1]} weight")
    if second_moment is None:
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        root = np.sqrt(s[:d])
        return root[:, None] * vt[:d], u[:, :d] * root[None, :]
    r = input_root(second_moment)
    u, s, vt = np.linalg.svd(w @ r.T, full_matrices=False)
    root = np.sqrt(s[:d])
    down = np.linalg.solve(r, (root[:, None] * vt[:d]).T).T  # (S^1/2 V^T) R^-T
    return down, u[:, :d] * root[None, :]


def input_root(second_moment: np.ndarray) -> np.ndarray:
    """R (upper triangular) with R^T R = E[x x^T] + a tiny ridge, which keeps R invertible when
    some inputs never vary (dead units, constant pixels)."""
    m = np.asarray(second_moment, dtype=np.float64)
    ridge = 1e-6 * max(float(np.trace(m)) / len(m), 1e-12)
    return np.linalg.cholesky(m + ridge * np.eye(len(m))).T


def layer_inputs(model: nn.Module, paths: Sequence[str], data) -> dict[str, np.ndarray]:
    """E[x x^T] of the input rows of each Linear (and input patches of each conv) in `paths` over `data`."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def record(path, layer, x):
        x = x.to(torch.float64)
        x = _patches(layer, x) if isinstance(layer, nn.modules.conv._ConvNd) else x.reshape(-1, x.shape[-1])
        sums[path] = sums.get(path, 0) + x.T @ x
        counts[path] = counts.get(path, 0) + len(x)
    run_with_input_hooks(model, paths, data, record)
    return {p: (sums[p] / counts[p]).numpy() for p in sums}


def _patches(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The conv's input patches as rows [positions, in*k...], in the weight's (in, k...) order."""
    if isinstance(conv, nn.Conv1d):
        x = x.unsqueeze(2)
        kernel, stride, pad, dil = (1, *conv.kernel_size), (1, *conv.stride), (0, *conv.padding), (1, *conv.dilation)
    else:
        kernel, stride, pad, dil = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    if isinstance(pad, str) or conv.padding_mode != "zeros":
        raise InputError(f"data-aware low rank supports zero padding given as numbers, not {conv.padding!r} / "
                         f"{conv.padding_mode!r}")
    cols = torch.nn.functional.unfold(x, kernel, dilation=dil, padding=pad, stride=stride)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def factored_layer(layer: nn.Module, d: int, second_moment: np.ndarray | None = None) -> LowRank:
    """`layer` (Linear or Conv1d/2d with groups=1) as two layers through rank d."""
    down_w, up_w = factorize(weight_matrix(layer), d, second_moment)
    dtype = layer.weight.dtype
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        down = nn.Linear(layer.in_features, d, bias=False)
        up = nn.Linear(d, layer.out_features, bias=bias)
        down.weight.data = torch.from_numpy(down_w).to(dtype)
        up.weight.data = torch.from_numpy(up_w).to(dtype)
    else:
        conv = type(layer)
        down = conv(layer.in_channels, d, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                    dilation=layer.dilation, bias=False, padding_mode=layer.padding_mode)
        up = conv(d, layer.out_channels, 1, bias=bias)
        down.weight.data = torch.from_numpy(down_w.reshape(d, *layer.weight.shape[1:])).to(dtype)
        ones = [1] * (layer.weight.dim() - 2)
        up.weight.data = torch.from_numpy(up_w.reshape(layer.out_channels, d, *ones)).to(dtype)
    if bias:
        up.bias.data = layer.bias.detach().clone()
    return LowRank(down, up).eval()


def low_rank(model: nn.Module, *, rank: int | Mapping[str, int] | None = None, energy: float | None = None,
             budget: float | int | None = None, layers: Sequence[str] | None = None, exclude: Sequence[str] = (),
             min_features: int = 8, data=None) -> Compression:
    """A copy of `model` whose Linear and Conv1d/2d layers (groups=1) are factored through rank d,
    chosen by exactly one of `rank`, `energy` or `budget` (a fraction of the selected layers' weights,
    or a number of weights). Only `layers` (module-path globs; default all) minus `exclude` are
    considered, and only those with at least `min_features` inputs and outputs; a layer is factored
    only where it saves weights. `data` (samples [N, ...]) makes it data-aware (module docstring)."""
    if sum(x is not None for x in (rank, energy, budget)) != 1:
        raise InputError("low_rank needs exactly one of rank=, energy= or budget=")
    student = copy_model(model)
    candidates, changes = [], []
    chosen = []
    for path, layer in select(student, FACTORABLE, layers, exclude):
        reason = _not_factorable(layer, min_features)
        if reason:
            changes.append(_kept(path, layer, reason))
        else:
            chosen.append((path, layer))
    moments = layer_inputs(student, [p for p, _ in chosen], data) if data is not None else {}
    candidates = [(path, layer, spectrum(path, layer, moments.get(path))) for path, layer in chosen]
    if budget is not None:
        ranks = _ranks_for_budget([s for _, _, s in candidates], budget)
    else:
        ranks = {s.path: (_rank_for(s.path, rank) if rank is not None else s.energy_rank(energy))
                 for _, _, s in candidates}
    for path, layer, spec in candidates:
        d = min(ranks[path], spec.max_rank)
        if d == 0:
            changes.append(_kept(path, layer, "no pattern of rank= names it"))
            continue
        if d > spec.break_even():
            changes.append(_kept(path, layer, f"rank {d} saves nothing: it must be <= {spec.break_even()} "
                                              f"for {spec.out_features}x{spec.in_features}"))
            continue
        new = factored_layer(layer, d, moments.get(path))
        set_module(student, path, new)
        bias = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        bias = bias if layer.bias is not None else 0
        changes.append(LayerChange(
            path, "low-rank", describe(layer), f"rank {d}: {describe(new.down)} + {describe(new.up)}",
            spec.dense_weights() + bias, spec.factored_weights(d) + bias,
            f"{'output ' if moments else ''}energy kept {spec.energy_kept(d):.4f}, "
            f"{'||(W-W_d)R^T||_2/||WR^T||_2' if moments else '||W-W_d||_2/||W||_2'} = {spec.spectral_error(d):.4f}"))
    return Compression(student, changes, original=model)


def _not_factorable(layer: nn.Module, min_features: int) -> str:
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.groups != 1:
        return f"grouped conv (groups={layer.groups})"
    w = layer.weight
    out, inner = w.shape[0], w[0].numel()
    if min(out, inner) < min_features:
        return f"too small to factor ({out}x{inner}, fewer than {min_features} features)"
    return ""


def _kept(path: str, layer: nn.Module, reason: str) -> LayerChange:
    n = sum(p.numel() for p in layer.parameters())
    return LayerChange(path, "kept", describe(layer), "unchanged", n, n, reason)


def _rank_for(path: str, rank: int | Mapping[str, int]) -> int:
    if isinstance(rank, Mapping):
        for pattern, d in rank.items():
            if scope_matches(path, pattern):
                return _check_rank(d, path)
        return 0  # not listed: left dense
    return _check_rank(rank, path)


def _check_rank(d, path: str) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise InputError(f"rank for {path} must be a positive integer, got {d!r}")
    return int(d)


def _ranks_for_budget(spectra: list[Spectrum], budget: float | int) -> dict[str, int]:
    """One energy level for all layers: the highest whose total weights fit the budget (a fraction
    of the layers' dense weights when < 1 or a float, else a count). The weights grow with the
    energy level, so bisection finds it."""
    dense = sum(s.dense_weights() for s in spectra)
    if isinstance(budget, float) and 0.0 < budget <= 1.0:
        limit = budget * dense
    elif isinstance(budget, (int, np.integer)) and not isinstance(budget, bool) and budget >= 1:
        limit = float(budget)
    else:
        raise InputError(f"budget must be a fraction in (0, 1] or a number of weights >= 1, got {budget!r}")

    def weights(level: float) -> int:
        return sum(s.weights_after(s.energy_rank(level)) for s in spectra)

    if weights(1e-12) > limit:
        raise InputError(f"budget {limit:,.0f} weights is below what rank 1 everywhere needs "
                         f"({weights(1e-12):,} of {dense:,})")
    lo, hi = 1e-12, 1.0
    if weights(hi) <= limit:
        lo = hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if weights(mid) <= limit else (lo, mid)
    return {s.path: s.energy_rank(lo) for s in spectra}
