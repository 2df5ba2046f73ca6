"""Run the canary debug build of a model on the host (backend/c/canaries.py) and turn a broken
guard into an error naming the layer and the tensor."""

from __future__ import annotations

import ctypes
from typing import Sequence

import numpy as np

from ..backend.c.emitter import generate_c
from ..errors import ModelBlocksError, where
from ..ir.graph import Graph
from .host import HostLibrary

# The host harness's mb_canary_failed: remembers the first 16 reports for Python to read.
HOOK_FILE = "mb_canary_host.c"
HOOK_C = """\
/* Host harness for the canary debug build: records what mb_canary_failed reports. */
#define MB_CANARY_MAX 16
void mb_canary_failed(int layer, const char *tensor);
int mb_canary_count = 0;
int mb_canary_layers[MB_CANARY_MAX];
const char *mb_canary_tensors[MB_CANARY_MAX];

void mb_canary_failed(int layer, const char *tensor)
{
    if (mb_canary_count < MB_CANARY_MAX) {
        mb_canary_layers[mb_canary_count] = layer;
        mb_canary_tensors[mb_canary_count] = tensor;
    }
    mb_canary_count++;
}
"""


class CanaryError(ModelBlocksError):
    """A guard word around an arena tensor was overwritten: a kernel wrote outside its tensor or the
    memory plan let two live tensors share bytes (a ModelBlocks bug). `.layer` is the node index
    after which it was found, `.tensors` the tensors whose guards broke."""

    def __init__(self, message: str, layer: int, tensors: list[str]):
        super().__init__(message)
        self.layer = layer
        self.tensors = tensors


class CanaryModel:
    """The model's canary debug build, compiled once into a shared library."""

    def __init__(self, graph: Graph, prefix: str = "model", arena_alignment: int = 16, cc: str | None = None,
                 extra_flags: Sequence[str] = ()):
        self.graph = graph
        self.source = generate_c(graph, prefix=prefix, arena_alignment=arena_alignment, canaries=True)
        self.host = HostLibrary(self.source, graph, cc=cc, extra_flags=extra_flags, extra_files={HOOK_FILE: HOOK_C})

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        count = self.host.variable("mb_canary_count", ctypes.c_int)
        count.value = 0
        try:
            outs = self.host.run(inputs)
        except RuntimeError:
            if not count.value:
                raise
        if count.value:
            self._raise(count.value)
        return outs

    def _raise(self, count: int) -> None:
        n = min(count, 16)
        layers = list(self.host.variable("mb_canary_layers", ctypes.c_int * 16))[:n]
        tensors = [t.decode() for t in list(self.host.variable("mb_canary_tensors", ctypes.c_char_p * 16))[:n]]
        layer = layers[0]
        node = self.graph.nodes[layer]
        broken = sorted(set(tensors))
        raise CanaryError(f"canary check: layer [{layer}] {node.name}{where(node.scope, node.source, node.op)} wrote "
                          f"outside its tensors: broken guard words around {', '.join(broken)} "
                          f"({count} guard(s) broken; ModelBlocks bug: a kernel overruns or the memory plan overlaps)",
                          layer, broken)
