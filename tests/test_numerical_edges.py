"""Numerical edge cases (issue 9): where a naive kernel overflows, divides by zero or rounds the wrong
way. Float: the host C (and its ASan+UBSan build) against PyTorch, element by element where the
answer is exact (0, 1, inf). int8: the C against the NumPy interpreter, bit for bit, and the
saturated values against the int8 grid's ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import modelblocks
from helpers import check_model, op_model


def _run_all(model, x):
    """(PyTorch, interpreter, host C, sanitized C) outputs of a float model on `x`."""
    compiled = modelblocks.compile(model.eval(), (x,))
    with torch.no_grad():
        want = model(x).numpy()
    a = [x.numpy()]
    return want, compiled.run_reference(a)[0], compiled.run_c(a)[0], compiled.run_sanitized(a)[0]


@pytest.mark.parametrize("scale", [1e2, 1e4, 3e37])
def test_softmax_and_log_softmax_with_huge_logits(scale):
    """exp of the raw logits would overflow to inf (and inf/inf = NaN): the kernels subtract the row max."""
    x = torch.tensor([[1.0, 0.5, -1.0, 0.999], [-1.0, -1.0, -1.0, -1.0], [0.0, 1.0, 0.0, 0.0]]) * scale
    for fn in (lambda t: torch.softmax(t, -1), lambda t: torch.log_softmax(t, -1)):
        want, ref, c, san = _run_all(op_model(fn), x)
        for got in (ref, c, san):
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    want, _, c, _ = _run_all(op_model(lambda t: torch.softmax(t, -1)), x)
    np.testing.assert_array_equal(c[1], np.full(4, 0.25, np.float32))  # equal logits: exactly uniform
    np.testing.assert_allclose(c.sum(-1), np.ones(3), rtol=1e-6)


def test_layer_norm_on_constant_rows_returns_the_bias():
    """Variance 0: (x - mean) is exactly 0 and eps keeps the division finite, so the output is beta."""
    norm = nn.LayerNorm(16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.stack([torch.full((16,), v) for v in (0.0, 3.0, -1e6, 1e30)])
    want, ref, c, san = _run_all(norm, x)
    beta = norm.bias.detach().numpy()
    for got in (ref, c, san):
        np.testing.assert_allclose(got, np.broadcast_to(beta, (4, 16)), atol=1e-6)
    # PyTorch's own kernel overflows on the 1e30 row (NaN); on the others it agrees
    assert np.isnan(want[3]).all()
    np.testing.assert_allclose(c[:3], want[:3], atol=1e-6)


def test_exp_tanh_sigmoid_saturate_like_pytorch():
    """Far outside their linear range: exp to 0 and inf, tanh to +-1, sigmoid to 0 and 1, softplus to x;
    never NaN, and exactly what PyTorch gives at the ends."""
    x = torch.tensor([-1e4, -200.0, -89.0, -20.0, -1e-30, 0.0, 1e-30, 20.0, 88.0, 89.0, 200.0, 1e4])
    for fn in (torch.exp, torch.tanh, torch.sigmoid, nn.functional.softplus, nn.functional.gelu,
               nn.functional.silu, nn.functional.elu):
        want, ref, c, san = _run_all(op_model(fn), x)
        for got in (ref, c, san):
            assert not np.isnan(got).any(), fn
            np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
            finite = np.isfinite(want)
            np.testing.assert_allclose(got[finite], want[finite], rtol=2e-6, atol=1e-30)
    _, _, c, _ = _run_all(op_model(torch.tanh), x)
    assert c[0] == -1.0 and c[-1] == 1.0
    _, _, c, _ = _run_all(op_model(torch.exp), x)
    assert c[0] == 0.0 and np.isinf(c[-1])


def test_int8_saturates_at_both_ends_bit_exactly():
    """Inputs 100x beyond the calibrated range and at +-3e38: every int8 stage clamps to [-128, 127] the
    same way in the C and the interpreter, and the input saturates at both ends of its grid."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4)).eval()
    calib = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    compiled = modelblocks.compile(model, (torch.zeros(1, 8),), quantize="int8", calibration=calib)
    x = np.concatenate([calib[:4] * 100, -calib[:4] * 100, np.full((1, 8), 3e38, np.float32),
                        np.full((1, 8), -3e38, np.float32)]).astype(np.float32)
    for k in range(len(x)):
        ref = compiled.run_reference([x[k:k + 1]])[0]
        np.testing.assert_array_equal(compiled.run_c([x[k:k + 1]])[0], ref)
        np.testing.assert_array_equal(compiled.run_sanitized([x[k:k + 1]])[0], ref)
    # the input's quantize clamps to the ends of its grid: x gives what x clipped to those ends gives
    q = compiled.graph.tensors[next(n for n in compiled.graph.nodes if n.op == "quantize").outputs[0]]
    scale, zp = float(q.quant.scale[0]), int(q.quant.zero_point[0])
    lo, hi = np.float32(scale * (-128 - zp)), np.float32(scale * (127 - zp))
    assert (x < lo).any() and (x > hi).any()
    for k in range(len(x)):
        np.testing.assert_array_equal(compiled.run_c([x[k:k + 1]])[0],
                                      compiled.run_c([np.clip(x[k:k + 1], lo, hi)])[0])


def test_int8_quantize_rounds_ties_away_from_zero_bit_exactly():
    """Inputs exactly halfway between two grid points, both signs: the C's rounding equals the
    interpreter's (TFLite's round-half-away-from-zero) on every one."""
    model = op_model(lambda t: torch.relu(t) - 0.25)
    calib = np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(1, 64)
    compiled = modelblocks.compile(model, (torch.zeros(1, 64),), quantize="int8", calibration=calib)
    q = next(n for n in compiled.graph.nodes if n.op == "quantize")
    scale = float(compiled.graph.tensors[q.outputs[0]].quant.scale[0])
    zp = int(compiled.graph.tensors[q.outputs[0]].quant.zero_point[0])
    halves = (np.arange(-64, 64, 2, dtype=np.float64) + 0.5 - zp) * scale  # ties before the zero point shift
    x = halves.astype(np.float32).reshape(1, 64)
    ref = compiled.run_reference([x])[0]
    np.testing.assert_array_equal(compiled.run_c([x])[0], ref)
    np.testing.assert_array_equal(compiled.run_sanitized([x])[0], ref)


def test_long_sum_and_mean_do_not_lose_the_small_terms():
    """A row of one large value and many small ones: the float C's sum stays within 1e-5 of PyTorch."""
    x = torch.cat([torch.full((1, 1), 1e6), torch.full((1, 20000), 0.1)], 1)
    check_model(op_model(lambda t: t.sum(-1, keepdim=True)), x, sanitize=False)
    check_model(op_model(lambda t: t.mean(-1, keepdim=True)), x, sanitize=False)
    rows = torch.cat([x, x.flip(-1), -x], 0)  # the large value first, last, and negated
    check_model(op_model(lambda t: t.sum(-1)), rows, sanitize=False)
    check_model(op_model(lambda t: t.var(-1, keepdim=True)), rows, sanitize=False)


def test_average_pooling_does_not_lose_the_small_terms():
    """A 64x64 plane of 0.1 with one 1e6: global average pooling within 1e-5 of PyTorch's adaptive pool.
    PyTorch's own avg_pool2d sums sequentially and is 1e-4 off here, so the window pool is checked
    against the float64 mean instead."""
    x = torch.full((1, 2, 64, 64), 0.1)
    x[0, 0, 0, 0] = 1e6
    x[0, 1, -1, -1] = -1e6
    check_model(op_model(lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1)), x)
    exact = x.double().mean((2, 3), keepdim=True).numpy()
    compiled = modelblocks.compile(op_model(lambda t: torch.nn.functional.avg_pool2d(t, 64)), (x,))
    for got in (compiled.run_reference([x.numpy()])[0], compiled.run_c([x.numpy()])[0]):
        assert np.abs(got - exact).max() / np.abs(exact).max() < 1e-7


def test_compensated_sum_keeps_infinities_and_nans():
    """The compensation term of inf + finite is inf - inf: the kernel must report the running sum as it is."""
    x = torch.tensor([[1.0, float("inf"), 2.0, 3.0], [1.0, float("-inf"), float("inf"), 0.0],
                      [float("nan"), 1.0, 2.0, 3.0], [-3e38, -3e38, 1.0, 0.0]])
    compiled = modelblocks.compile(op_model(lambda t: t.sum(-1)), (torch.zeros(4, 4),), allow_nonfinite=True)
    expected = x.sum(-1).numpy()
    assert np.isposinf(expected[0]) and np.isnan(expected[1]) and np.isnan(expected[2]) and np.isneginf(expected[3])
    for got in (compiled.run_c([x.numpy()])[0], compiled.run_sanitized([x.numpy()])[0]):
        np.testing.assert_array_equal(got, expected)
