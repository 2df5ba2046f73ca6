"""The independent reference an ONNX model is verified against: onnxruntime, or onnx's own evaluator.

`verify` and `simulate` compare the C with what the source model computes. For a torch model that is
PyTorch; for an ONNX model it is an `OnnxReference`, called like a module (tensors in, tensors out),
so the verification code does not care where the model came from. onnxruntime is used when it is
installed (it is fast and what users deploy against elsewhere); otherwise `onnx.reference`, the pure
NumPy evaluator that ships with the onnx package, so verification never needs an extra download.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .onnx_import import load_model


@dataclass(frozen=True)
class OnnxInput:
    name: str
    dims: list  # ints, or the symbolic name of a dynamic dimension
    dtype: np.dtype


def graph_inputs(proto) -> list[OnnxInput]:
    """The model's runtime inputs (graph inputs that are not initializers), with their declared shapes."""
    import onnx  # noqa: PLC0415

    initializers = {t.name for t in proto.graph.initializer}
    found = []
    for vi in proto.graph.input:
        if vi.name in initializers:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except Exception:  # noqa: BLE001 - an element type numpy has no dtype for
            raise InputError(f"input '{vi.name}' has ONNX element type {tt.elem_type}, which ModelBlocks cannot "
                             "feed") from None
        found.append(OnnxInput(vi.name, dims, dtype))
    return found


class OnnxReference:
    """`ref(*inputs)` runs the ONNX model on torch tensors or arrays and returns its outputs as torch
    tensors, in the model's output order."""

    def __init__(self, model: Any):
        self.proto, self.label = load_model(model)
        self.inputs = graph_inputs(self.proto)
        self._session = None
        self.engine = "onnxruntime" if _have_onnxruntime() else "onnx.reference"

    @property
    def reference_name(self) -> str:
        return self.engine

    def _run(self, feeds: dict) -> list:
        if self._session is None:
            if self.engine == "onnxruntime":
                import onnxruntime  # noqa: PLC0415

                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3  # its warnings about unused initializers are not the user's business
                self._session = onnxruntime.InferenceSession(self.proto.SerializeToString(), options,
                                                             providers=["CPUExecutionProvider"])
            else:
                from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

                self._session = ReferenceEvaluator(self.proto)
        return self._session.run(None, feeds)  # the same call on both engines

    def __call__(self, *inputs):
        import torch  # noqa: PLC0415

        if len(inputs) != len(self.inputs):
            raise InputError(f"{self.label} takes {len(self.inputs)} input(s) "
                             f"({', '.join(i.name for i in self.inputs)}), got {len(inputs)}")
        feeds = {}
        for spec, x in zip(self.inputs, inputs):
            array = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
            feeds[spec.name] = array.astype(spec.dtype, copy=False)
        try:
            outputs = self._run(feeds)
        except Exception as exc:  # the runtime's own message names the node that failed
            raise InputError(f"{self.engine} could not run {self.label}: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
        return tuple(torch.from_numpy(np.array(o)) for o in outputs)


def _have_onnxruntime() -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("onnxruntime") is not None
