"""The four MLPerf Tiny reference models (models/mlperf_tiny.py): float C against PyTorch, int8 C bit-exact
with the interpreter, parameter and MAC counts against the reference models' figures, and the arena
against its liveness lower bound (and against activation sizes worked out by hand)."""

import numpy as np
import pytest

import modelblocks
from helpers import assert_int8_exact, check_model
from modelblocks.models import mlperf_tiny as mt

# Every model also runs as a stand-alone ASan/UBSan program (float and int8): about 1 s each even for
# the 7.5M- and 12.5M-MAC CNNs, so none needs sanitize=False.
SANITIZE = True

# int8 op that each model must lower to (the whole graph is int8: nothing stays float)
INT8_OPS = {
    "ds_cnn": ["q_conv", "q_avg_pool", "q_linear", "q_softmax"],
    "mobilenet_v1": ["q_conv", "q_avg_pool", "q_linear", "q_softmax"],
    "resnet8": ["q_conv", "q_add", "q_avg_pool", "q_linear", "q_softmax"],
    "fc_autoencoder": ["q_linear"],
}

# The arena's peak by hand (float32 bytes; int8 is a quarter, plus the int8 copy of the input where
# it is alive). Graph inputs and outputs live in the caller's buffers, so the peak is the largest set
# of activations alive together:
#   DS-CNN: two 25x5x64 maps (every layer reads one and writes one)           = 2 * 8000 * 4
#   MobileNetV1: the first depthwise 48x48x8 -> pointwise 48x48x16            = (18432 + 36864) * 4
#   ResNet-8: stack 1 holds its input, y and conv2's output, 32x32x16 each     = 3 * 16384 * 4
#   autoencoder: two 128-wide hidden vectors                                   = 2 * 128 * 4
ARENA_FLOAT = {"ds_cnn": 64000, "mobilenet_v1": 221184, "resnet8": 196608, "fc_autoencoder": 1024}
#   int8: DS-CNN / ResNet-8 as above / 4; MobileNetV1 as above / 4 (the int8 input, 27,648 B, dies
#   at the first conv, before the peak); autoencoder: the int8 input (640) + a 128-wide vector
ARENA_INT8 = {"ds_cnn": 16000, "mobilenet_v1": 55296, "resnet8": 49152, "fc_autoencoder": 768}

CONV_LINEAR = ("conv", "linear", "q_conv", "q_linear")


@pytest.fixture(scope="module", params=mt.NAMES)
def name(request):
    return request.param


def assert_arena_at_bound(compiled, expected: int | None = None):
    report = compiled.report
    live = report["live_bytes_per_step"]
    assert report["arena_lower_bound"] == max(live)
    assert report["arena_lower_bound"] <= report["arena_bytes"] <= report["arena_naive_bytes"]
    if expected is not None:
        # the plan reaches the bound, and the bound is the peak worked out by hand
        assert report["arena_bytes"] == report["arena_lower_bound"] == expected, (report["arena_bytes"], expected)


def test_counts_match_the_reference_models(name):
    model, (x,) = mt.build(name)
    pub = mt.PUBLISHED[name]
    assert mt.count_params(model) == pub.params
    assert mt.count_macs(model, x) == pub.macs


def test_float_c_matches_pytorch(name):
    model, (x,) = mt.build(name)
    pub = mt.PUBLISHED[name]
    out = check_model(model, (x,), sanitize=SANITIZE)
    compiled = out["compiled"]
    report = compiled.report
    # BatchNorm folded away: the graph holds the reference's weights and biases only
    assert "batch_norm" not in compiled.graph.ops_count()
    assert report["params"] == pub.folded_params
    assert sum(r["macs"] for r in report["layers"] if r["op"] in CONV_LINEAR) == pub.macs
    assert_arena_at_bound(compiled)
    # a second input: the C is right beyond the example it was compiled with
    x2 = mt.eval_inputs(name, 2)[1:2]
    check_model(model, (x2,), sanitize=False, compiled=compiled)


def test_arena_is_the_activation_peak(name):
    model, (x,) = mt.build(name)
    assert_arena_at_bound(modelblocks.compile(model, (x,), kernels="reference"), ARENA_FLOAT[name])
    calib = mt.calibration_inputs(name, 8)
    q = modelblocks.compile(model, (x,), kernels="reference", quantize="int8", calibration=calib)
    assert_arena_at_bound(q, ARENA_INT8[name])


def test_int8_c_is_bit_exact(name):
    model, (x,) = mt.build(name)
    calib = mt.calibration_inputs(name, 16)
    compiled, counts = assert_int8_exact(model, (x,), calib, ops=INT8_OPS[name], min_sqnr=25.0,
                                         sanitize=SANITIZE)
    assert compiled.quantization.float_nodes == {}, compiled.quantization.float_nodes
    assert not any(op in counts for op in ("conv", "linear", "add", "avg_pool", "softmax")), counts
    assert_arena_at_bound(compiled)
    # more inputs, all bit-exact
    for i in range(1, 4):
        xi = [mt.eval_inputs(name, 4)[i:i + 1].numpy()]
        np.testing.assert_array_equal(compiled.run_c(xi)[0], compiled.run_reference(xi)[0])


def test_inputs_are_seeded_and_shaped():
    for n in mt.NAMES:
        a, b = mt.calibration_inputs(n, 4), mt.calibration_inputs(n, 4)
        assert a.shape == (4, *mt.INPUT_SHAPES[n]) and a.dtype == mt.eval_inputs(n, 1).dtype
        assert np.array_equal(a.numpy(), b.numpy())
        assert not np.array_equal(a[:1].numpy(), mt.eval_inputs(n, 1).numpy())
        m1, m2 = mt.build(n)[0], mt.build(n)[0]
        assert all(np.array_equal(p.detach().numpy(), q.detach().numpy())
                   for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError, match="unknown MLPerf Tiny model"):
        mt.build("resnet50")
