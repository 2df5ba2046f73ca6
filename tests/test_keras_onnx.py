"""Keras models exported to ONNX with tf2onnx (fixtures in tests/data/keras/, written by
tools/make_keras_onnx.py; TensorFlow is never imported here): each compiles with its symbolic batch
dimension fixed by the example input, the host C matches onnxruntime and Keras's own stored output
(relative L2 < 1e-5), and the NHWC Transpose pairs tf2onnx writes around every Conv are gone
(passes/cancel_permutes.py), leaving only the permutes that the model's layout needs. Also: the
pass on torch models with permute pairs, the cases it must leave alone, and an int8 compile of
the Keras CNN (C bit-exact against the interpreter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import apply_pass, capture

import modelblocks
from modelblocks.errors import InputError
from modelblocks.interpreter import run
from modelblocks.metrics import rel_l2
from modelblocks.passes import PIPELINE, get_pass
from modelblocks.passes.cancel_permutes import permute_bytes
from modelblocks.quant import arith

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

DATA = Path(__file__).parent / "data" / "keras"
TOL = 1e-5


def _fixture(name: str):
    stored = np.load(DATA / f"{name}.npz")
    return str(DATA / f"{name}.onnx"), stored["x"], stored["y"]


def _ort(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _onnx_transposes(path: str) -> int:
    return sum(n.op_type == "Transpose" for n in onnx.load(path).graph.node)


# name -> permutes left in the compiled graph: the input's NHWC -> NCHW (NLC -> NCL for Conv1D) at the
# model boundary, plus, for the recurrent models, the one conv-layout -> time-major reorder they need
CASES = {
    "keras_cnn": 1,
    "keras_cnn_raw": 1,  # tf2onnx without its optimizers: 16 Transposes in the ONNX file
    "keras_mlp": 0,
    "keras_residual": 1,  # the NHWC Flatten before Dense is folded into the Dense weight
    "keras_residual_raw": 1,
    "keras_upsample": 1,
    "keras_gru": 2,
    "keras_lstm": 2,
}


@pytest.mark.parametrize("name", list(CASES))
def test_keras_model_matches_onnxruntime_and_keras(name):
    path, x, keras_y = _fixture(name)
    compiled = modelblocks.compile(path, (x,))
    got = compiled.run_c([x])[0]
    ref = compiled.run_reference([x])[0]
    want = _ort(path, x)
    assert got.shape == want.shape == keras_y.shape
    assert rel_l2(got, want) < TOL
    assert rel_l2(ref, want) < TOL
    assert rel_l2(got, keras_y) < TOL
    permutes = compiled.graph.ops_count().get("permute", 0)
    assert permutes == CASES[name], (permutes, _onnx_transposes(path))


def test_raw_tf2onnx_transposes_cancel():
    # the literal tf2onnx translation: Transpose pairs around every Conv / BatchNorm / MaxPool,
    # ReduceMean (axes as an input, opset 18) for the global pooling, Identity, Cast, MatMul + Add
    path, x, keras_y = _fixture("keras_cnn_raw")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("Transpose") == 18 and {"Identity", "ReduceMean", "Cast"} <= set(ops)
    before = modelblocks.compile(path, (x,), passes=[p for p in PIPELINE if p != "cancel_permutes"])
    after = modelblocks.compile(path, (x,))
    assert before.graph.ops_count()["permute"] == 16  # the other two transpose constant weights (folded)
    counts = after.graph.ops_count()
    assert counts["permute"] == 1 and after.graph.nodes[0].op == "permute"  # NHWC input -> NCHW
    # with the pairs gone, the ReLUs fuse into the convs, the depthwise conv takes its BiasAdd
    # (passes/fold_bias_add.py) and then the BatchNorm behind it
    assert counts.get("clamp", 0) < before.graph.ops_count()["clamp"]
    assert counts["batch_norm"] < before.graph.ops_count()["batch_norm"]
    assert rel_l2(before.run_reference([x])[0], keras_y) < TOL
    assert rel_l2(after.run_c([x])[0], keras_y) < TOL
    # the NHWC copies were the largest tensors: 131072 -> 92288 bytes of arena for this batch of 2
    assert after.report["arena_bytes"] < 0.75 * before.report["arena_bytes"]


def test_dynamic_batch_needs_an_example_input():
    path, x, _ = _fixture("keras_mlp")
    with pytest.raises(InputError, match=r"input 'features' has a dynamic shape \['unk__\d+', 20\].*example inputs"):
        modelblocks.compile(path)
    one = modelblocks.compile(path, (x[:1],))  # batch 1 for the device, from a batch-3 export
    assert rel_l2(one.run_c([x[:1]])[0], _fixture("keras_mlp")[2][:1]) < TOL


def test_int8_keras_cnn_bit_exact():
    path, x, keras_y = _fixture("keras_cnn")
    calib = np.random.default_rng(0).standard_normal((32, 32, 32, 3)).astype(np.float32)
    compiled = modelblocks.compile(path, (x[:1],), quantize="int8", calibration=calib)
    assert compiled.quantize_mode == "int8"
    counts = compiled.graph.ops_count()
    assert counts.get("q_conv", 0) >= 5 and counts.get("permute", 0) + counts.get("q_permute", 0) <= 1, counts
    for k in range(len(x)):
        xs = [x[k:k + 1]]
        ref, got = compiled.run_reference(xs)[0], compiled.run_c(xs)[0]
        np.testing.assert_array_equal(got, ref)
        # measured 38.1 and 37.5 dB against Keras's softmax output for the two stored inputs
        assert arith.sqnr_db(keras_y[k:k + 1], ref) >= 30.0


# -- the pass on torch models ------------------------------------------------------------------------

_capture = capture


def _apply(graph, inputs, name="cancel_permutes"):
    return apply_pass(name, graph, inputs)


class NHWCNet(nn.Module):
    """Channels-last torch code: permute pairs around each conv, a bias add, a ReLU, a concat on the
    channel axis, then both a max over H, W and a flatten + Linear read the NHWC tensor."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.bias = nn.Parameter(torch.randn(8))
        self.fc, self.head = nn.Linear(6 * 6 * 16, 4), nn.Linear(16, 4)

    def forward(self, x):
        h = self.conv1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        h = torch.relu(h) + self.bias
        h2 = self.conv2(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        h = torch.cat([h, h2 * 0.5], dim=-1)
        return self.fc(h.reshape(h.shape[0], -1)) + self.head(h.amax(dim=(1, 2)))


def test_cancel_permutes_on_nhwc_torch_code():
    torch.manual_seed(0)
    model, x = NHWCNet(), torch.randn(2, 6, 6, 3)
    g = _capture(model, x)
    assert g.ops_count()["permute"] == 4
    g2 = _apply(g, (x,))
    counts = g2.ops_count()
    assert counts["permute"] == 1 and g2.nodes[0].op == "permute"
    assert counts["concat"] == 1 and g2.nodes[[n.op for n in g2.nodes].index("concat")].attrs["dim"] == 1
    assert permute_bytes(g2) == x.numel() * 4
    with torch.no_grad():
        assert rel_l2(run(g2, [x.numpy()])[0], model(x).numpy()) < TOL


def test_cancel_permutes_composes_and_keeps_needed_ones():
    def forward(x):
        y = x.permute(0, 2, 3, 1)
        # reduce with keepdim=False: the axes move, and the kept dims need no permute
        return y.permute(0, 3, 1, 2).permute(0, 2, 1, 3) * 2.0, torch.sigmoid(y).sum(dim=-1)

    x = torch.randn(2, 3, 4, 5)
    g = _apply(_capture(_Lambda(forward), x), (x,))
    perms = [n.attrs["perm"] for n in g.nodes if n.op == "permute"]
    assert perms == [(0, 2, 1, 3)]  # (0,2,3,1) then (0,3,1,2) is the identity; the sum needs none
    assert next(n for n in g.nodes if n.op == "reduce").attrs["axes"] == (1,)


def test_cancel_permutes_leaves_alone():
    x = torch.randn(1, 4, 5, 6)

    # two different readers: sinking would copy the permute into two bigger ones
    def two_readers(x):
        y = x.permute(0, 2, 3, 1)
        return torch.relu(y), torch.sigmoid(y)

    # a graph output, a per-channel BatchNorm and a non-constant broadcast operand pin the permute
    class Pinned(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(5)

        def forward(self, x, z):
            y = x.permute(0, 2, 1, 3)
            return y, self.bn(y) + z

    for model, inputs in ((_Lambda(two_readers), (x,)), (Pinned(), (x, torch.randn(1, 1, 1, 6)))):
        g = _capture(model, *inputs)
        g2 = _apply(g, inputs)
        assert g2.ops_count()["permute"] == g.ops_count()["permute"] == 1
        assert permute_bytes(g2) == permute_bytes(g) and g2.nodes == g.nodes


def test_fold_bias_add():
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(3, 4, 3, bias=False), nn.Linear(4, 5)
    c, r, spatial = torch.randn(4, 1, 1), torch.randn(5), torch.randn(1, 1, 4, 4)

    def forward(x):
        h = torch.relu(conv(x) + c)  # the BiasAdd; its ReLU moves into the conv as well
        y = fc(h.mean(dim=(2, 3))) + r  # linear already has a bias: the two add up
        return y, conv(x) + spatial  # varies over H, W: not a bias

    x = torch.randn(2, 3, 6, 6)
    g = get_pass("fuse_activation")(_capture(_Lambda(forward), x))
    assert g.ops_count()["add"] == 3
    g2 = _apply(g, (x,), "fold_bias_add")
    assert g2.ops_count()["add"] == 1
    first = g2.nodes[0]
    assert first.op == "conv" and first.inputs[2] and first.attrs["act_min"] == 0.0


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)
