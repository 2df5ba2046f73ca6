"""Graph passes, run in the order of `PIPELINE`; the verifier checks the graph after each one.

Each pass is a module with a docstring naming the pattern it rewrites and a function
`run(graph) -> Graph` that returns a new graph (it may share unchanged nodes and tensors).
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

from ..ir.graph import Graph
from ..ir.verify import verify

PIPELINE: tuple[str, ...] = (
    "remove_identity",
    "fold_constants",
    "cancel_permutes",
    "fold_bias_add",
    "fold_batchnorm",
    "fuse_activation",
    "dead_code",
    "schedule",
)

# passes that can also be named in compile(passes=...); sparsify normally runs through compile(sparse=...)
ALL_PASSES = frozenset(PIPELINE) | {"sparsify"}


def get_pass(name: str) -> Callable[[Graph], Graph]:
    return importlib.import_module(f"{__name__}.{name}").run


def run_passes(graph: Graph, names: Sequence[str] = PIPELINE) -> Graph:
    for name in names:
        graph = get_pass(name)(graph)
        verify(graph, after=name)
    return graph
