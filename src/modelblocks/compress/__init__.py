"""Compression beyond quantization, applied to the PyTorch model so the result stays a model that
can be fine-tuned, compiled and checked against: low-rank factorization (lowrank.py), pruning
(unstructured.py, structured.py, layers.py), distillation (distill.py) and studies of accuracy
versus size (study.py). Every step returns a `Compression`: a compressed copy of the model and a
row per layer saying what changed."""

from .distill import distill
from .heads import head_groups, prune_heads
from .layers import remove_layers
from .lowrank import LowRank, factorize, low_rank, spectrum
from .modules import Compression, LayerChange
from .structured import channel_groups, prune_channels, refactor_pair
from .study import StudyData, StudySpec, run_study
from .unstructured import prune_weights

__all__ = ["Compression", "LayerChange", "LowRank", "StudyData", "StudySpec", "channel_groups", "distill",
           "factorize", "head_groups", "low_rank", "prune_channels", "prune_heads", "prune_weights", "refactor_pair",
           "remove_layers", "run_study", "spectrum"]
