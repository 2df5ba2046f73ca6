"""Calibration data in, per-tensor ranges out.

`calibration_sets(source, graph)` accepts what users have at hand and returns a list of input sets,
each a list of arrays with exactly the graph inputs' shapes:
- an array (or torch tensor) of samples [N, ...] for a model with batch B: cut into N / B batches
  (the same shape as the input is one batch; one sample without the batch dimension is one batch of 1);
- a list/tuple of such arrays, one per model input, or a dict by input name;
- a path: a `.npz` file (arrays by input name, or in input order), a `.npy` file, or a folder of
  `.npy` files (each a batch of samples for a one-input model, read in name order);
- a callable returning an iterable of batches (each batch as above);
- on the command line, `module:function` (a Python file or an importable module), called the same way.

`calibrate(graph, sets, observer)` runs the NumPy interpreter on every set and feeds each float
activation's values to one observer; it returns the QuantParams of every observed tensor.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import InputError
from ..interpreter import run as run_graph
from ..ir.dtypes import DType
from ..ir.graph import Graph, QuantParams
from . import arith
from .observers import DEFAULT_OBSERVER, OBSERVERS


def calibration_sets(source, graph: Graph) -> list[list[np.ndarray]]:
    if source is None:
        raise InputError("int8 quantization needs calibration data (calibration=...): an array of typical inputs, "
                         "an .npz file, a folder of .npy files, or a function returning batches")
    if isinstance(source, (str, Path)):
        return _from_path(str(source), graph)
    if callable(source) and not hasattr(source, "shape"):
        sets = []
        for batch in source():
            sets.extend(_split(batch, graph, "a batch from the calibration function"))
        if not sets:
            raise InputError("the calibration function returned no batches")
        return sets
    return _split(source, graph, "the calibration data")


def _from_path(text: str, graph: Graph) -> list[list[np.ndarray]]:
    path = Path(text)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise InputError(f"calibration folder {path} holds no .npy files")
        sets = []
        for f in files:
            sets.extend(_split(np.load(f), graph, f"calibration file {f}"))
        return sets
    if path.suffix == ".npz":
        if not path.exists():
            raise InputError(f"calibration file {path} does not exist")
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if all(n in arrays for n in graph.inputs):
            return _split({n: arrays[n] for n in graph.inputs}, graph, f"calibration file {path}")
        if len(arrays) < len(graph.inputs):
            raise InputError(f"calibration file {path} holds {len(arrays)} array(s) {sorted(arrays)} but the model "
                             f"takes {len(graph.inputs)} input(s) {graph.inputs}")
        return _split(list(arrays.values())[:len(graph.inputs)], graph, f"calibration file {path}")
    if path.suffix == ".npy":
        if not path.exists():
            raise InputError(f"calibration file {path} does not exist")
        return _split(np.load(path), graph, f"calibration file {path}")
    if ":" in text:
        return calibration_sets(_function(text), graph)
    raise InputError(f"calibration {text!r} is neither an .npz/.npy file, a folder of .npy files, nor module:function")


def _function(text: str) -> Callable:
    module_text, _, attr = text.rpartition(":")
    try:
        if module_text.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(module_text).stem, module_text)
            if spec is None or not Path(module_text).exists():
                raise FileNotFoundError(module_text)
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(spec.name, module)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_text)
        fn = getattr(module, attr)
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        raise InputError(f"cannot load the calibration function {text!r}: {type(exc).__name__}: {exc}") from None
    if not callable(fn):
        raise InputError(f"{text} is not callable")
    return fn


def _split(batch, graph: Graph, what: str) -> list[list[np.ndarray]]:
    """One batch of samples per model input -> input sets with the graph's exact input shapes."""
    if isinstance(batch, Mapping):
        missing = [n for n in graph.inputs if n not in batch]
        if missing:
            raise InputError(f"{what} lacks input(s) {missing}; the model takes {graph.inputs}")
        batch = [batch[n] for n in graph.inputs]
    elif not isinstance(batch, (list, tuple)):
        batch = [batch]
    batch = [b.detach().cpu().numpy() if hasattr(b, "detach") else np.asarray(b) for b in batch]
    if len(batch) != len(graph.inputs):
        raise InputError(f"{what} gives {len(batch)} array(s) but the model takes {len(graph.inputs)} input(s) "
                         f"{graph.inputs}")
    pieces = []
    for name, arr in zip(graph.inputs, batch):
        t = graph.tensors[name]
        shape = t.shape
        if tuple(arr.shape) == shape:
            chunks = [arr]
        elif shape and shape[0] == 1 and tuple(arr.shape) == shape[1:]:
            chunks = [arr[None]]
        elif shape and arr.ndim == len(shape) and tuple(arr.shape[1:]) == shape[1:] and arr.shape[0] % shape[0] == 0:
            chunks = [arr[i:i + shape[0]] for i in range(0, arr.shape[0], shape[0])]
        else:
            raise InputError(f"{what} has shape {list(arr.shape)} but input {name} takes {list(shape)}: give samples "
                             f"as [N, {', '.join(str(d) for d in shape[1:])}] with N a multiple of {shape[0] if shape else 1}")
        if t.dtype.is_float and not np.all(np.isfinite(arr)):
            raise InputError(f"{what} holds NaN or infinite values for input {name}")
        pieces.append([np.ascontiguousarray(c, dtype=t.dtype.numpy) for c in chunks])
    counts = {len(p) for p in pieces}
    if len(counts) != 1:
        raise InputError(f"{what} gives different sample counts per input: {[len(p) for p in pieces]}")
    return [list(s) for s in zip(*pieces)]


def calibrate(graph: Graph, sets: list[list[np.ndarray]], observer: str = DEFAULT_OBSERVER,
              seed: int = 0, progress=None) -> tuple[dict[str, QuantParams], dict[str, tuple[float, float]]]:
    """Run every input set through the interpreter; returns (params, observed (lo, hi)) per float
    activation tensor (graph inputs included, constants excluded). `progress(step, done, total)`
    hears about each set."""
    if observer not in OBSERVERS:
        raise InputError(f"unknown observer {observer!r}; choose one of {sorted(OBSERVERS)}")
    watched = [t.name for t in graph.tensors.values() if t.dtype == DType.float32 and not t.is_constant]
    observers = {name: OBSERVERS[observer](seed=seed + k) for k, name in enumerate(watched)}
    for k, inputs in enumerate(sets):
        if progress:
            progress("calibrating", k, len(sets))
        values = run_graph(graph, inputs, keep_all=True)
        for name, obs in observers.items():
            obs.update(values[name])
    params, ranges = {}, {}
    for name, obs in observers.items():
        lo, hi = obs.range()
        params[name] = arith.params_from_range(lo, hi)
        ranges[name] = (obs.lo, obs.hi) if obs.lo <= obs.hi else (0.0, 0.0)
    return params, ranges
