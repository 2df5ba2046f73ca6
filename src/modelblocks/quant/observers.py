"""Calibration observers: each watches the values one float tensor takes over the calibration data
and proposes the range [lo, hi] its int8 parameters must cover.

- `minmax`: the extremes seen (TFLite's converter). Never clips; a single outlier costs resolution.
- `moving_average`: per-batch extremes averaged with weight 0.01 per batch (PyTorch's
  MovingAverageMinMaxObserver), which forgets rare outliers.
- `percentile`: the 0.01 % and 99.99 % quantiles of the values seen.
- `mse` (default): the range, among shrunk versions of the min/max one, whose int8 round trip has
  the least mean squared error on the values seen: clipping a few outliers buys resolution for all.

Percentile and MSE keep a bounded, seeded sample of the values (at most `SAMPLE` per tensor), so
memory stays small whatever the calibration set's size.
"""

from __future__ import annotations

import numpy as np

from . import arith

SAMPLE = 1 << 16


class Observer:
    def __init__(self, seed: int = 0):
        self.lo = np.inf
        self.hi = -np.inf
        self.batches = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        finite = x[np.isfinite(x)]
        if finite.size:
            self.lo = min(self.lo, float(finite.min()))
            self.hi = max(self.hi, float(finite.max()))
            self._update(finite.reshape(-1))
        self.batches += 1

    def _update(self, x: np.ndarray) -> None:
        pass

    def range(self) -> tuple[float, float]:
        if self.lo > self.hi:  # never saw a finite value
            return 0.0, 0.0
        return self._range()

    def _range(self) -> tuple[float, float]:
        return self.lo, self.hi


class MinMaxObserver(Observer):
    pass


class MovingAverageObserver(Observer):
    def __init__(self, seed: int = 0, averaging_constant: float = 0.01):
        super().__init__(seed)
        self.c = averaging_constant
        self.avg_lo = self.avg_hi = None

    def _update(self, x):
        lo, hi = float(x.min()), float(x.max())
        if self.avg_lo is None:
            self.avg_lo, self.avg_hi = lo, hi
        else:
            self.avg_lo += self.c * (lo - self.avg_lo)
            self.avg_hi += self.c * (hi - self.avg_hi)

    def _range(self):
        return self.avg_lo, self.avg_hi


class _Sampling(Observer):
    """Keeps a uniform random sample of at most SAMPLE values (reservoir of batches, seeded)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.rng = np.random.default_rng(seed)
        self.sample = np.empty(0)
        self.seen = 0

    def _update(self, x):
        self.seen += x.size
        merged = np.concatenate([self.sample, x])
        if merged.size > SAMPLE:
            # keep each value with equal probability over everything seen so far
            keep_old = int(round(SAMPLE * (self.seen - x.size) / self.seen))
            old = self.rng.choice(self.sample, size=min(keep_old, self.sample.size), replace=False)
            new = self.rng.choice(x, size=min(SAMPLE - old.size, x.size), replace=False)
            merged = np.concatenate([old, new])
        self.sample = merged


class PercentileObserver(_Sampling):
    def __init__(self, seed: int = 0, percentile: float = 99.99):
        super().__init__(seed)
        self.p = percentile

    def _range(self):
        lo = float(np.percentile(self.sample, 100.0 - self.p))
        hi = float(np.percentile(self.sample, self.p))
        return max(lo, self.lo), min(hi, self.hi)


class MSEObserver(_Sampling):
    """Searches shrink factors of the min/max range for the least int8 round-trip error."""

    STEPS = 40

    def _range(self):
        lo0, hi0 = min(self.lo, 0.0), max(self.hi, 0.0)
        x = self.sample
        best, best_err = (lo0, hi0), np.inf
        for f in np.linspace(1.0, 0.2, self.STEPS):
            lo, hi = lo0 * f, hi0 * f
            p = arith.params_from_range(lo, hi)
            q = arith.quantize_values(x, p.scale[0], p.zero_point[0])
            err = float(np.mean((arith.dequantize_values(q, p.scale[0], p.zero_point[0]) - x) ** 2))
            if err < best_err * (1 - 1e-9):  # ties keep the wider range
                best, best_err = (lo, hi), err
        return best


OBSERVERS = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
}
DEFAULT_OBSERVER = "mse"
