"""Shared checks: every test compares against an independent reference.

`check_model` is the one path all model and op tests take: capture with torch.export, run the
NumPy interpreter and the generated C (ctypes, and once more as a stand-alone program under
AddressSanitizer + UndefinedBehaviorSanitizer), and assert the relative L2 distance to PyTorch.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

import modelblocks
from modelblocks.api import rel_l2

FLOAT_TOL = 1e-5


class Lambda(torch.nn.Module):
    """Wraps a function of tensors as a module, for per-op tests."""

    def __init__(self, fn: Callable, **params: torch.Tensor):
        super().__init__()
        self.fn = fn
        for name, value in params.items():
            self.register_buffer(name, value)

    def forward(self, *xs):
        return self.fn(self, *xs) if self._buffers else self.fn(*xs)


# a model file for the command-line tests: `MLP_PY` written to m.py, used as m.py:MLP -s 1,8
MLP_PY = """\
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
"""


def outputs_of(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        y = model(*inputs)
    flat = []

    def walk(v):
        if isinstance(v, torch.Tensor):
            flat.append(v.detach().numpy())
        elif isinstance(v, (tuple, list)):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)

    walk(y)
    return flat


def check_model(model: torch.nn.Module, inputs: Sequence[torch.Tensor] | torch.Tensor, *, tol: float = FLOAT_TOL,
                sanitize: bool = True, expect_shapes: Sequence[tuple] | None = None,
                compiled: "modelblocks.CompiledModel | None" = None) -> dict:
    """Compile, run reference + C (+ sanitized C), assert rel L2 to torch < tol for every output.

    Returns {"compiled", "rel_c", "rel_ref"} so callers can assert more (op counts, bytes)."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    model = model.eval()
    expected = outputs_of(model, inputs)
    if expect_shapes is not None:
        assert [tuple(e.shape) for e in expected] == [tuple(s) for s in expect_shapes]
    compiled = compiled or modelblocks.compile(model, inputs)
    arrays = [x.numpy() for x in inputs]
    got_ref = compiled.run_reference(arrays)
    got_c = compiled.run_c(arrays)
    assert len(got_ref) == len(expected) == len(got_c), (len(got_ref), len(expected), len(got_c))
    rel_c, rel_ref = [], []
    for k, (e, r, c) in enumerate(zip(expected, got_ref, got_c)):
        assert r.shape == e.shape and c.shape == e.shape, (k, r.shape, c.shape, e.shape)
        if e.dtype.kind in "iub":
            np.testing.assert_array_equal(r, e, err_msg=f"reference output {k}")
            np.testing.assert_array_equal(c, e, err_msg=f"C output {k}")
            rel_c.append(0.0)
            rel_ref.append(0.0)
            continue
        rel_ref.append(rel_l2(r, e))
        rel_c.append(rel_l2(c, e))
        assert rel_ref[-1] < tol, f"output {k}: reference rel L2 {rel_ref[-1]:.3e} >= {tol}"
        assert rel_c[-1] < tol, f"output {k}: C rel L2 {rel_c[-1]:.3e} >= {tol}"
    if sanitize:
        got_san = compiled.run_sanitized(arrays)
        for k, (s, c) in enumerate(zip(got_san, got_c)):
            # -O1 and -O2 builds evaluate the same float expressions: expect (near) identical results
            if s.dtype.kind == "f":
                assert rel_l2(s, c) < 1e-6, f"sanitized build differs on output {k}"
            else:
                np.testing.assert_array_equal(s, c)
    return {"compiled": compiled, "rel_c": rel_c, "rel_ref": rel_ref}


def op_model(fn: Callable, **buffers: torch.Tensor) -> torch.nn.Module:
    return Lambda(fn, **buffers).eval()


def assert_int8_exact(model: torch.nn.Module, xs: tuple, calibration, *, ops: Sequence[str], min_sqnr: float,
                      sanitize: bool = False):
    """Compile `model` with int8 on `calibration`, then assert: every op in `ops` is in the graph, the
    C equals the NumPy interpreter bit for bit (also as a stand-alone program under ASan/UBSan when
    `sanitize`), and each dequantized output's SQNR against PyTorch is at least `min_sqnr` dB.
    Returns the compiled model and its op counts."""
    from modelblocks.quant import arith  # noqa: PLC0415

    compiled = modelblocks.compile(model.eval(), xs, quantize="int8", calibration=calibration)
    counts = compiled.graph.ops_count()
    for name in ops:
        assert counts.get(name, 0) >= 1, counts
    arrays = [t.numpy() for t in xs]
    ref = compiled.run_reference(arrays)
    for r, c in zip(ref, compiled.run_c(arrays)):
        np.testing.assert_array_equal(c, r)
    if sanitize:
        for r, s in zip(ref, compiled.run_sanitized(arrays)):
            np.testing.assert_array_equal(s, r)
    with torch.no_grad():
        expected = model(*xs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for e, r in zip(expected, ref):
        sqnr = arith.sqnr_db(e.numpy(), r)
        assert sqnr >= min_sqnr, f"SQNR {sqnr:.1f} dB < {min_sqnr} dB"
    return compiled, counts


def capture(model: torch.nn.Module, *inputs: torch.Tensor):
    """The IR graph of `model` straight from the torch frontend, before any pass."""
    from modelblocks.frontend.torch_export import export_model, from_exported_program  # noqa: PLC0415

    return from_exported_program(export_model(model.eval(), inputs))


def apply_pass(name: str, graph, inputs: Sequence[torch.Tensor]):
    """Run one pass, verify the graph it returns, and assert the interpreter's outputs did not move
    (relative L2 below 1e-6); returns the new graph."""
    from modelblocks.interpreter import run  # noqa: PLC0415
    from modelblocks.ir import verify  # noqa: PLC0415
    from modelblocks.passes import get_pass  # noqa: PLC0415

    before = run(graph, [x.numpy() for x in inputs])
    after_graph = get_pass(name)(graph)
    verify(after_graph, after=name)
    after = run(after_graph, [x.numpy() for x in inputs])
    for a, b in zip(before, after):
        assert rel_l2(b, a) < 1e-6
    return after_graph
