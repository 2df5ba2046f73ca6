"""Deterministic CPU training, shared by the digits models and distillation: the same seed gives
the same weights on any machine."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded_training(seed: int) -> Iterator[torch.Generator]:
    """Runs on one thread (results do not depend on the core count) with torch's global seed set
    and restored afterwards; yields a seeded generator for shuffling."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed)
    finally:
        torch.set_num_threads(threads)


def adam_cosine(params, lr: float, epochs: int, weight_decay: float = 0.0):
    """Adam with a cosine learning-rate schedule over `epochs` (call the scheduler once per epoch)."""
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
