"""Save a graph as `model.json` plus one raw little-endian `.bin` file per constant, and load it back.

The JSON is meant to be read by people: one object per node with op, inputs, outputs, attrs,
scope and source; tensors with shape and dtype; constants point at their `.bin` file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dtypes import DType
from .graph import Graph, Node, QuantParams, Tensor

FORMAT_VERSION = 1


def _file_name(tensor_name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", tensor_name) or "t"
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return f"{name}.bin"


def _attr_to_json(value):
    return list(value) if isinstance(value, tuple) else value


def _attr_from_json(value):
    return tuple(value) if isinstance(value, list) else value


def save_graph(graph: Graph, directory: str | Path) -> Path:
    directory = Path(directory)
    (directory / "weights").mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    tensors = []
    for t in graph.tensors.values():
        entry = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.value}
        if t.quant is not None:
            entry["quant"] = {"scale": list(t.quant.scale), "zero_point": list(t.quant.zero_point), "axis": t.quant.axis}
        if t.data is not None:
            fname = _file_name(t.name, taken)
            t.data.astype(t.data.dtype.newbyteorder("<"), copy=False).tofile(directory / "weights" / fname)
            entry["data"] = f"weights/{fname}"
        tensors.append(entry)
    doc = {
        "format": "modelblocks-ir",
        "version": FORMAT_VERSION,
        "name": graph.name,
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "tensors": tensors,
        "nodes": [
            {"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
             "attrs": {k: _attr_to_json(v) for k, v in n.attrs.items()}, "scope": n.scope, "source": n.source,
             **({"kernel": n.kernel} if n.kernel else {})}
            for n in graph.nodes
        ],
    }
    path = directory / "model.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read IR file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != "modelblocks-ir" or doc.get("version") != FORMAT_VERSION:
        raise InputError(f"{path} is not a ModelBlocks IR file of version {FORMAT_VERSION}")
    try:
        return _graph_from_doc(doc, path)
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise InputError(f"{path} is not a valid ModelBlocks IR file: {type(exc).__name__}: {exc}") from None


def _graph_from_doc(doc: dict, path: Path) -> Graph:
    graph = Graph(name=doc["name"], inputs=list(doc["inputs"]), outputs=list(doc["outputs"]))
    for e in doc["tensors"]:
        dtype = DType(e["dtype"])
        shape = tuple(e["shape"])
        quant = None
        if "quant" in e:
            q = e["quant"]
            quant = QuantParams(tuple(q["scale"]), tuple(q["zero_point"]), q["axis"])
        data = None
        if "data" in e:
            raw = np.fromfile(path.parent / e["data"], dtype=dtype.numpy.newbyteorder("<"))
            if raw.size != int(np.prod(shape, dtype=np.int64)):
                raise InputError(f"{e['data']} holds {raw.size} values, tensor {e['name']} needs {list(shape)}")
            data = raw.astype(dtype.numpy).reshape(shape)
        graph.add_tensor(Tensor(e["name"], shape, dtype, quant, data))
    for n in doc["nodes"]:
        graph.nodes.append(Node(n["name"], n["op"], tuple(n["inputs"]), tuple(n["outputs"]),
                                {k: _attr_from_json(v) for k, v in n["attrs"].items()}, n["scope"], n["source"],
                                n.get("kernel", "")))
    return graph
