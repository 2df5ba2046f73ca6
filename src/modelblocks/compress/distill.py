"""Recovery fine-tuning by distillation: train the compressed model (the student) on the user's data
for a few epochs, with the original model as teacher.

Loss per batch (Hinton et al., "Distilling the Knowledge in a Neural Network"):
  alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)
Without labels the soft-target term is all there is (alpha = 1). For models whose outputs are not
class scores (an autoencoder, a regressor) `soft_loss="mse"` matches the teacher's outputs instead.

Deterministic for a seed: the shuffling has its own generator, torch's global seed is set and
restored, and training runs on one thread. Pruned weights stay zero: the masks of unstructured
pruning are applied again after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from ..training import adam_cosine, seeded_training
from .modules import Compression, LayerChange, copy_model


@dataclass
class DistillLog:
    epochs: int
    losses: list[float] = field(default_factory=list)  # mean loss per epoch


def distill(student: nn.Module | Compression, teacher: nn.Module, x_train, y_train=None, *, epochs: int = 5,
            lr: float = 1e-3, batch_size: int = 64, temperature: float = 4.0, alpha: float = 0.5,
            soft_loss: str = "kl", seed: int = 0, weight_decay: float = 0.0) -> Compression:
    """A fine-tuned copy of `student` (a model, or a Compression whose masks are kept); see the
    module docstring. `x_train` is [N, ...] samples (tensor or array), `y_train` optional labels [N]."""
    masks = {}
    changes = []
    if isinstance(student, Compression):
        masks, changes = student.masks, list(student.changes)
        student = student.model
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}")
    if soft_loss not in ("kl", "mse"):
        raise InputError(f"soft_loss must be 'kl' or 'mse', got {soft_loss!r}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    x = torch.as_tensor(np.asarray(x_train) if not isinstance(x_train, torch.Tensor) else x_train).float()
    y = None
    if y_train is not None:
        y = torch.as_tensor(np.asarray(y_train) if not isinstance(y_train, torch.Tensor) else y_train).long()
        if len(y) != len(x):
            raise InputError(f"x_train has {len(x)} samples but y_train has {len(y)} labels")
    else:
        alpha = 1.0
    model = copy_model(student)
    teacher = teacher.eval()
    params = dict(model.named_parameters())
    missing = [name for name in masks if name not in params]
    if missing:
        raise InputError(f"pruning masks name parameters the student does not have: {', '.join(missing[:5])}")
    log = DistillLog(epochs)
    with seeded_training(seed) as gen:
        opt, sched = adam_cosine(model.parameters(), lr, epochs, weight_decay)
        with torch.no_grad():
            targets = torch.cat([teacher(x[i:i + 256]) for i in range(0, len(x), 256)])
        model.train()
        for _ in range(epochs):
            total, batches = 0.0, 0
            perm = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), batch_size):
                idx = perm[start:start + batch_size]
                opt.zero_grad(set_to_none=True)
                out = model(x[idx])
                loss = alpha * _soft(out, targets[idx], temperature, soft_loss)
                if y is not None and alpha < 1.0:
                    loss = loss + (1.0 - alpha) * F.cross_entropy(out, y[idx])
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for name, mask in masks.items():
                        params[name].mul_(mask.to(params[name].dtype))
                total += float(loss.detach())
                batches += 1
            sched.step()
            log.losses.append(total / max(batches, 1))
    model.eval()
    changes.append(LayerChange("(all)", "distilled", "", f"{epochs} epochs", 0, 0,
                               f"loss {log.losses[0]:.4f} -> {log.losses[-1]:.4f} (T={temperature}, alpha={alpha}, "
                               f"seed {seed})"))
    return Compression(model, changes, masks, original=teacher, log=log)


def _soft(student_out: torch.Tensor, teacher_out: torch.Tensor, temperature: float, kind: str) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(student_out, teacher_out)
    t = temperature
    return F.kl_div(F.log_softmax(student_out / t, dim=-1), F.log_softmax(teacher_out / t, dim=-1),
                    reduction="batchmean", log_target=True) * (t * t)
