"""The canary debug build (backend/c/canaries.py): guard words around every arena tensor, checked after
every layer. A bank model runs clean with the same outputs; an overlapping plan and a kernel writing
one element past its output are caught and named; the release C does not change."""

import dataclasses
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from bank_models import BANK
from helpers import outputs_of
from modelblocks.api import rel_l2
from modelblocks.backend.c import emitter
from modelblocks.backend.c.canaries import guard_bytes
from modelblocks.backend.c.emitter import generate_c
from modelblocks.memory.liveness import analyze_storage
from modelblocks.targets.canary import HOOK_C, HOOK_FILE, CanaryError, CanaryModel
from modelblocks.targets.host import run_sanitized


class ResidualMLP(nn.Module):
    """fc1's output stays alive across fc2 and fc3 (the residual), so other tensors live beside it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 32)

    def forward(self, x):
        h = self.fc1(x)
        return torch.tanh(self.fc3(torch.sigmoid(self.fc2(h)))) + h


@pytest.fixture(scope="module")
def residual():
    torch.manual_seed(0)
    model, x = ResidualMLP().eval(), torch.randn(3, 8)
    compiled = modelblocks.compile(model, (x,), kernels="reference")
    return model, x, compiled


@pytest.mark.parametrize("quantize", [None, "int8"], ids=["float32", "int8"])
def test_bank_model_runs_clean_with_canaries(quantize):
    model, inputs, _ = BANK["04_conv_relu_bn_linear"]()
    arrays = [x.numpy() for x in inputs]
    options = {"quantize": "int8", "calibration": inputs[0]} if quantize else {}
    compiled = modelblocks.compile(model, inputs, **options)
    got = compiled.run_debug(arrays)
    release = compiled.run_c(arrays)
    reference = compiled.run_reference(arrays)
    for k, (g, r, ref, e) in enumerate(zip(got, release, reference, outputs_of(model, inputs))):
        np.testing.assert_array_equal(g, r, err_msg=f"output {k}: canary build differs from the release build")
        if quantize:
            np.testing.assert_array_equal(g, ref, err_msg=f"output {k}")
        else:
            assert rel_l2(g, e) < 1e-5, f"output {k}: rel L2 to PyTorch {rel_l2(g, e):.2e}"
    # the debug arena holds every buffer plus its two guards
    debug = compiled._canary.source
    buffers = debug.plan.buffers
    assert len(buffers) >= 2 and compiled.source.arena_bytes < debug.arena_bytes
    assert debug.arena_bytes <= compiled.source.arena_bytes + 2 * guard_bytes(16) * len(buffers)
    if quantize is None:  # the guard arming and checking stay inside the arena: ASan and UBSan are silent
        sanitized = run_sanitized(debug, compiled.graph, arrays, extra_files={HOOK_FILE: HOOK_C})
        for s, r in zip(sanitized, release):
            assert rel_l2(s, r) < 1e-6
    if shutil.which("clang"):  # the debug C is strict C99 for clang as well
        for g, r in zip(CanaryModel(compiled.graph, cc="clang", extra_flags=["-O0"]).run(arrays), release):
            np.testing.assert_array_equal(g, r)


def test_release_c_is_unchanged(residual):
    _, _, compiled = residual
    release = generate_c(compiled.graph)
    assert release.files == compiled.source.files == generate_c(compiled.graph, canaries=False).files
    assert not any("canary" in text.lower() for text in release.files.values())
    debug = generate_c(compiled.graph, canaries=True)
    assert "mb_canary_failed" in debug.files["model.c"] and "mb_canary_failed" in debug.files["model.h"]
    # same tensors, each moved past its low guard at least
    assert set(debug.offsets) == set(release.offsets)
    assert all(debug.offsets[n] >= guard_bytes(16) for n in debug.offsets)


def _overlapping_pair(graph):
    """(A, B): arena tensors where B is written while A is alive, and B is at least as large as A."""
    buffers = [b for b in analyze_storage(graph).buffers if not b.name.endswith("__scratch")]
    for a in buffers:
        for b in buffers:
            if a.first_use < b.first_use <= a.last_use and b.size >= a.size \
                    and b.name in graph.nodes[b.first_use].outputs:
                return a, b
    raise AssertionError("no pair of overlapping live tensors in the test model")


def test_overlapping_plan_is_caught(residual, monkeypatch):
    model, x, compiled = residual
    a, b = _overlapping_pair(compiled.graph)
    guard = guard_bytes(16)
    real_plan_best = emitter.plan_best

    def corrupt(buffers):  # B's data starts one guard into A's data and so covers A's high guard
        best = real_plan_best(buffers)
        offsets = dict(best.offsets)
        offsets[b.name] = offsets[a.name] + guard
        arena = max(offsets[p.name] + p.size for p in buffers)
        return dataclasses.replace(best, offsets=offsets, arena_bytes=arena)

    monkeypatch.setattr(emitter, "plan_best", corrupt)
    monkeypatch.setattr(emitter, "check_plan", lambda *args: None)  # what check_plan would refuse
    debug = CanaryModel(compiled.graph)
    with pytest.raises(CanaryError) as err:
        debug.run([x.numpy()])
    assert err.value.layer == b.first_use
    assert a.name in err.value.tensors
    assert f"layer [{b.first_use}] {compiled.graph.nodes[b.first_use].name}" in str(err.value)
    assert a.name in str(err.value)


def test_kernel_writing_past_its_output_is_caught(residual, monkeypatch):
    model, x, compiled = residual
    graph = compiled.graph
    plan = analyze_storage(graph)
    index, node = next((i, n) for i, n in enumerate(graph.nodes)
                       if n.op == "linear" and plan.kind[plan.root[n.outputs[0]]] == "arena")
    real_get_op = emitter.get_op

    def overrunning(name):
        op = real_get_op(name)
        if name != node.op:
            return op

        def emit(ctx, n):
            code = op.emit(ctx, n)
            if n.name == node.name:  # one float past the last element
                code += f" {ctx.ptr(n.outputs[0])}[{ctx.tensor(n.outputs[0]).numel}] = 12345.0f;"
            return code

        return dataclasses.replace(op, emit=emit)

    monkeypatch.setattr(emitter, "get_op", overrunning)
    debug = CanaryModel(graph)
    with pytest.raises(CanaryError) as err:
        debug.run([x.numpy()])
    assert err.value.layer == index
    assert err.value.tensors == [plan.root[node.outputs[0]]]
    assert node.name in str(err.value)
    # without the overrun the same debug build runs clean and matches PyTorch
    monkeypatch.setattr(emitter, "get_op", real_get_op)
    got = CanaryModel(graph).run([x.numpy()])
    assert rel_l2(got[0], outputs_of(model, (x,))[0]) < 1e-5
