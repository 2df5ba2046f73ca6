"""int8 linear, conv (1-D/2-D, stride, padding, dilation, groups, depthwise) and matmul.

Every case checks (1) the C kernels against the NumPy interpreter bit for bit, (2) the dequantized
int8 result against float PyTorch (SQNR), (3) that the graph really holds the int8 op. Kernel edge
cases (extreme zero points, multipliers > 1, narrow clamps) run on hand-built int8 graphs, and the
integer reference is checked against float arithmetic on the values the int8 tensors represent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modelblocks
from modelblocks.api import CompiledModel
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Graph, Node, Tensor
from modelblocks.ir.verify import verify
from modelblocks.ops.registry import get_op
from modelblocks.passes import select_kernels
from modelblocks.quant import arith
from helpers import assert_int8_exact, op_model

SQNR_DB = 30.0  # one int8 layer with random weights and calibrated ranges


def _calibration(xs, n):
    """The example inputs plus n - 1 random batches like them, as one [n * B, ...] array per input (the
    test input is among the calibration data, so the SQNR measures rounding, not range clipping)."""
    return [torch.cat([t] + [torch.randn_like(t) * t.std() for _ in range(n - 1)]) for t in xs]


def _run_int8(model, x, *, op: str, sanitize: bool = False, calib_n: int = 16, min_sqnr: float = SQNR_DB):
    """helpers.assert_int8_exact, calibrated on `x` and `calib_n` - 1 random batches like it."""
    xs = x if isinstance(x, tuple) else (x,)
    return assert_int8_exact(model, xs, _calibration(xs, calib_n), ops=(op,), min_sqnr=min_sqnr, sanitize=sanitize)


# -- linear ---------------------------------------------------------------------------------------

LINEAR_CASES = {
    "2d": ((4, 16), 8, True, None),
    "batch_dims": ((2, 3, 24), 10, True, None),
    "no_bias": ((3, 16), 12, False, None),
    "relu": ((5, 16), 8, True, "relu"),
    "relu6": ((5, 16), 8, True, "relu6"),
    "single_row_wide": ((1, 200), 7, True, None),
}


@pytest.mark.parametrize("name", list(LINEAR_CASES))
def test_q_linear(name):
    shape, out, bias, act = LINEAR_CASES[name]
    layers = [torch.nn.Linear(shape[-1], out, bias=bias)]
    if act == "relu":
        layers.append(torch.nn.ReLU())
    elif act == "relu6":
        layers.append(torch.nn.ReLU6())
    model = torch.nn.Sequential(*layers)
    x = torch.randn(shape) * (3.0 if act == "relu6" else 1.0)
    compiled, ops = _run_int8(model, x, op="q_linear", sanitize=name == "batch_dims")
    assert set(ops) <= {"quantize", "dequantize", "q_linear"}, ops  # the activation is fused
    assert ops["q_linear"] == 1
    node = next(n for n in compiled.graph.nodes if n.op == "q_linear")
    if act:  # real 0 is the clamp's floor; ReLU6's 6.0 is the top of the calibrated output range
        assert node.attrs["act_min"] == node.attrs["out_zp"]
        scale, zp = compiled.graph.tensors[node.outputs[0]].quant.scale[0], node.attrs["out_zp"]
        expected_hi = 127 if act == "relu" else int(arith.quantize_values(np.float32(6.0), scale, zp))
        assert node.attrs["act_max"] == expected_hi


# -- conv -----------------------------------------------------------------------------------------

CONV_CASES = {
    # name: (dims, x shape, Conv kwargs, activation)
    "1d_basic": (1, (1, 4, 20), dict(out_channels=6, kernel_size=3), None),
    "1d_stride_pad_dil": (1, (2, 4, 23), dict(out_channels=6, kernel_size=3, stride=2, padding=2, dilation=2), None),
    "1d_groups_nobias": (1, (1, 6, 17), dict(out_channels=9, kernel_size=4, groups=3, bias=False, padding="same"),
                         None),
    "1d_depthwise_relu": (1, (1, 5, 16), dict(out_channels=5, kernel_size=5, groups=5, padding=2), "relu"),
    "2d_basic": (2, (1, 3, 9, 9), dict(out_channels=8, kernel_size=3, padding=1), None),
    "2d_stride_rect": (2, (2, 4, 11, 8), dict(out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
                       "relu"),
    "2d_dilation_same_even": (2, (1, 3, 10, 10), dict(out_channels=5, kernel_size=4, dilation=2, padding="same"),
                              None),
    "2d_groups_relu6": (2, (1, 8, 7, 7), dict(out_channels=4, kernel_size=3, groups=2, padding=1), "relu6"),
    "2d_depthwise": (2, (1, 6, 9, 9), dict(out_channels=6, kernel_size=3, groups=6, stride=2, padding=1), None),
    "2d_depthwise_mult_nobias": (2, (2, 3, 8, 8), dict(out_channels=6, kernel_size=3, groups=3, bias=False,
                                                       dilation=2, padding=2), "relu"),
    "2d_pointwise": (2, (1, 16, 5, 5), dict(out_channels=8, kernel_size=1), None),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_q_conv(name):
    dims, shape, kw, act = CONV_CASES[name]
    conv = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(shape[1], **kw)
    layers = [conv] + ([torch.nn.ReLU()] if act == "relu" else [torch.nn.ReLU6()] if act == "relu6" else [])
    model = torch.nn.Sequential(*layers)
    x = torch.randn(shape) * (3.0 if act == "relu6" else 1.0)
    compiled, ops = _run_int8(model, x, op="q_conv", sanitize=name == "2d_stride_rect")
    assert set(ops) <= {"quantize", "dequantize", "q_conv"}, ops
    node = next(n for n in compiled.graph.nodes if n.op == "q_conv")
    assert node.attrs["groups"] == kw.get("groups", 1)
    # compile() picks the optimised kernels (tests/quant/test_int8_kernels.py); the reference ones run in
    # test_kernels_bit_exact_on_edge_parameters below
    groups = kw.get("groups", 1)
    assert node.kernel == ("rows" if groups == 1 else "depthwise" if groups == shape[1] else "")  # grouped: reference
    kernel = {"rows": "mb_q_conv_s8_rows(", "depthwise": "mb_q_depthwise_conv_s8_rows(", "": "mb_q_conv_s8("}[node.kernel]
    assert kernel in compiled.source.files["model.c"]
    if act:  # the ReLU floor (real 0) became the int8 clamp
        assert node.attrs["act_min"] == node.attrs["out_zp"]


# -- matmul ---------------------------------------------------------------------------------------

MATMUL_CASES = {
    "2d": ((5, 7), (7, 4)),
    "batched": ((3, 4, 6), (3, 6, 5)),
    "broadcast_b": ((2, 3, 4, 5), (3, 5, 6)),
    "broadcast_both": ((2, 1, 4, 8), (1, 3, 8, 2)),
}


@pytest.mark.parametrize("name", list(MATMUL_CASES))
def test_q_matmul_activations(name):
    sa, sb = MATMUL_CASES[name]
    model = op_model(lambda a, b: torch.matmul(a, b))
    _, ops = _run_int8(model, (torch.randn(sa), torch.randn(sb)), op="q_matmul", sanitize=name == "broadcast_both")
    assert set(ops) <= {"quantize", "dequantize", "q_matmul"}, ops


def test_q_matmul_constant_operand_and_relu():
    w = torch.randn(1, 6, 5)
    model = op_model(lambda self, a: torch.relu(torch.matmul(a, self.w)), w=w)
    compiled, ops = _run_int8(model, torch.randn(2, 3, 6), op="q_matmul")
    node = next(n for n in compiled.graph.nodes if n.op == "q_matmul")
    assert node.attrs["act_min"] == node.attrs["out_zp"] and set(ops) <= {"quantize", "dequantize", "q_matmul"}


def test_q_matmul_attention_scores():
    """q @ k^T then attn @ v, as hand-written attention does."""
    def attn(q, k, v):
        s = torch.matmul(q, k.transpose(-2, -1)) * 0.25
        return torch.matmul(torch.softmax(s, dim=-1), v)

    q, k, v = torch.randn(2, 5, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 8)
    _, ops = _run_int8(op_model(attn), (q, k, v), op="q_matmul", min_sqnr=28.0)
    assert ops["q_matmul"] == 2, ops


# -- refusals: these stay float32 ---------------------------------------------------------------

def _compile_int8(model, xs):
    calib = _calibration(xs, 8)
    return modelblocks.compile(model.eval(), xs, quantize="int8", calibration=calib)


def test_linear_with_activation_weight_is_not_q_linear():
    model = op_model(lambda x, w: F.linear(x, w))
    compiled = _compile_int8(model, (torch.randn(3, 8), torch.randn(4, 8)))
    assert "q_linear" not in compiled.graph.ops_count()


def test_addmm_with_bias_term_stays_float():
    model = op_model(lambda self, a, b: torch.baddbmm(self.c, a, b, alpha=0.5), c=torch.randn(2, 3, 4))
    compiled = _compile_int8(model, (torch.randn(2, 3, 5), torch.randn(2, 5, 4)))
    ops = compiled.graph.ops_count()
    assert "q_matmul" not in ops and ops.get("matmul") == 1, ops


def test_accumulator_overflow_keeps_linear_float():
    k = 65794  # 65794 * 255 * 128 >= 2^31
    assert k * 255 * 128 >= 2**31 > (k - 1) * 255 * 128
    model = torch.nn.Linear(k, 1, bias=False)
    compiled = _compile_int8(model, (torch.randn(1, k),))
    ops = compiled.graph.ops_count()
    assert "q_linear" not in ops and ops.get("linear") == 1, ops
    model = torch.nn.Linear(k - 1, 1, bias=False)
    assert "q_linear" in _compile_int8(model, (torch.randn(1, k - 1),)).graph.ops_count()


def test_shape_rules_reject_overflowing_or_bad_nodes():
    g_w = Tensor("w", (1, 65794), DType.int8)
    ins = [Tensor("x", (1, 65794), DType.int8), g_w, Tensor("b", (1,), DType.int32), Tensor("m", (1,), DType.int32),
           Tensor("s", (1,), DType.int8)]
    node = Node("n", "q_linear", ("x", "w", "b", "m", "s"), ("y",), {"in_zp": 0, "out_zp": 0})
    with pytest.raises(ValueError, match="overflow"):
        get_op("q_linear").infer(node, ins)
    bad = Node("n", "q_linear", ("x", "w", "b", "m", "s"), ("y",), {"in_zp": 200, "out_zp": 0})
    with pytest.raises(ValueError, match="zero point"):
        get_op("q_linear").infer(bad, ins)
    mm = Node("n", "q_matmul", ("a", "b"), ("y",), {"a_zp": 0, "b_zp": 0, "out_zp": 0, "mult": 1 << 30, "shift": 0})
    a, b = Tensor("a", (2, 33026), DType.int8), Tensor("b", (33026, 2), DType.int8)  # 33026 * 255^2 >= 2^31
    with pytest.raises(ValueError, match="overflow"):
        get_op("q_matmul").infer(mm, [a, b])


# -- kernels on hand-built int8 graphs: extreme zero points, multipliers > 1, narrow clamps ----------

def _graph(specs, rng):
    """One graph holding several independent int8 nodes: specs are (op, inputs, out_shape, attrs) where
    inputs are arrays (constants) or ("input", shape)."""
    g = Graph("q")
    for k, (op, inputs, out_shape, attrs) in enumerate(specs):
        names = []
        for j, value in enumerate(inputs):
            name = f"n{k}_{j}"
            if isinstance(value, tuple):
                g.add_tensor(Tensor(name, value[1], DType.int8))
                g.inputs.append(name)
            else:
                g.add_tensor(Tensor(name, value.shape, DType.from_numpy(value.dtype), data=value))
            names.append(name)
        g.add_tensor(Tensor(f"y{k}", out_shape, DType.int8))
        g.nodes.append(Node(f"node{k}", op, tuple(names), (f"y{k}",), attrs))
        g.outputs.append(f"y{k}")
    verify(g)
    feeds = [rng.integers(-128, 128, size=g.tensors[n].shape).astype(np.int8) for n in g.inputs]
    return g, feeds


def _tables(rng, c, big=False):
    bias = rng.integers(-5000, 5000, size=c).astype(np.int32)
    reals = rng.uniform(1.0, 3.0, size=c) if big else rng.uniform(1e-4, 5e-3, size=c)
    mult, shift = arith.quantize_multipliers(reals)
    return bias, mult, shift


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def test_kernels_bit_exact_on_edge_parameters():
    rng = np.random.default_rng(5)
    specs = []
    for in_zp, out_zp, lo, hi, big in [(-128, 127, -128, 127, False), (127, -128, -128, 127, False),
                                       (3, -7, -20, 90, False), (0, 5, -128, 127, True)]:
        b, m, s = _tables(rng, 6, big)
        q = {"in_zp": in_zp, "out_zp": out_zp, "act_min": lo, "act_max": hi}
        specs.append(("q_linear", [("input", (2, 3, 11)), _int8(rng, (6, 11)), b, m, s], (2, 3, 6), q))
        specs.append(("q_conv", [("input", (2, 3, 7, 6)), _int8(rng, (6, 3, 3, 2)), b, m, s], (2, 6, 3, 5),
                      {**q, "stride": (2, 1), "padding": (1, 0, 0, 1), "dilation": (1, 2), "groups": 1}))
        specs.append(("q_conv", [("input", (1, 3, 9)), _int8(rng, (6, 1, 4)), b, m, s], (1, 6, 5),
                      {**q, "stride": (2,), "padding": (3, 0), "dilation": (1,), "groups": 3}))
        specs.append(("q_conv", [("input", (1, 6, 5, 5)), _int8(rng, (6, 2, 3, 3)), b, m, s], (1, 6, 3, 3),
                      {**q, "stride": (2, 2), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 3}))
        specs.append(("q_conv", [("input", (2, 3, 6, 7)), _int8(rng, (6, 1, 3, 3)), b, m, s], (2, 6, 2, 4),
                      {**q, "stride": (1, 2), "padding": (0, 2, 0, 0), "dilation": (2, 1), "groups": 3}))
        mult, shift = arith.quantize_multiplier(2.5 if big else 2e-3)
        specs.append(("q_matmul", [("input", (2, 1, 3, 9)), ("input", (4, 9, 5))], (2, 4, 3, 5),
                      {"a_zp": in_zp, "b_zp": 0 if abs(in_zp) > 100 else -out_zp, "out_zp": out_zp, "mult": mult,
                       "shift": shift, "act_min": lo, "act_max": hi}))
    g, feeds = _graph(specs, rng)
    compiled = CompiledModel(g)  # the graph as built: every node on its reference kernel
    code = compiled.source.files["model.c"]
    assert "mb_q_depthwise_conv_s8(" in code and "mb_q_conv_s8(" in code  # both conv kernels run
    ref = compiled.run_reference(feeds)
    got = compiled.run_c(feeds)
    for k, (r, c) in enumerate(zip(ref, got)):
        np.testing.assert_array_equal(c, r, err_msg=g.nodes[k].name)
        if k < 18:  # multipliers < 1: not trivially saturated (the last six multiply by 1..3 and saturate)
            assert len(np.unique(r)) > 4, g.nodes[k].name
    for r, s in zip(ref, compiled.run_sanitized(feeds)):
        np.testing.assert_array_equal(s, r)
    # the same edge parameters (zero points at both ends, clamps, multipliers above 1) on the optimised kernels
    optimized = CompiledModel(select_kernels.run(g))
    assert set(select_kernels.kernel_counts(optimized.graph)) == {"q_linear/gemm", "q_conv/rows", "q_conv/depthwise",
                                                                  "q_matmul/dsp"}
    for r, c in zip(ref, optimized.run_sanitized(feeds)):
        np.testing.assert_array_equal(c, r)


def test_kernels_bit_exact_at_accumulator_limits():
    """All inputs at -128 with in_zp = 127 and weights at -128: the largest products the bound allows."""
    rng = np.random.default_rng(1)
    k = 300
    w = np.full((2, k), -128, np.int8)
    b = np.array([2**20, -(2**20)], np.int32)
    m, s = arith.quantize_multipliers([1e-7, 1e-7])
    q = {"in_zp": 127, "out_zp": 0}
    g, _ = _graph([("q_linear", [("input", (1, k)), w, b, m, s], (1, 2), q)], rng)
    feeds = [np.full((1, k), -128, np.int8)]
    compiled = CompiledModel(g)
    ref = compiled.run_reference(feeds)[0]
    acc = np.array([2**20, -(2**20)]) + k * 255 * 128
    np.testing.assert_array_equal(ref[0], np.clip(arith.requantize(acc, m, s), -128, 127))
    np.testing.assert_array_equal(compiled.run_c(feeds)[0], ref)


# -- the integer reference is the float math up to rounding ----------------------------------------

def _deq(q, scale, zp=0):
    return (np.asarray(q, np.float64) - zp) * np.asarray(scale, np.float64)


def test_reference_matches_float_math_on_hand_built_tensors():
    rng = np.random.default_rng(0)
    s_in, zp_in, s_out, zp_out = 0.02, -9, 0.05, 4
    # linear
    x = _int8(rng, (3, 20))
    w = rng.integers(-127, 128, size=(5, 20)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.01, size=5)
    b = rng.integers(-3000, 3000, size=5).astype(np.int32)
    mult, shift = arith.quantize_multipliers(s_in * s_w / s_out)
    node = Node("n", "q_linear", ("x", "w", "b", "m", "s"), ("y",), {"in_zp": zp_in, "out_zp": zp_out})
    y = get_op("q_linear").reference(node, [x, w, b, mult, shift])[0]
    real = _deq(x, s_in, zp_in) @ _deq(w, s_w[:, None]).T + _deq(b, s_in * s_w)
    assert np.all(np.abs(real / s_out + zp_out) < 127)  # no saturation in this case
    assert np.max(np.abs(_deq(y, s_out, zp_out) - real)) <= s_out + 1e-12

    # conv, 2-D, stride 2, padding, groups 2
    x = _int8(rng, (1, 4, 6, 6))
    w = rng.integers(-127, 128, size=(4, 2, 3, 3)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.008, size=4)
    b = rng.integers(-3000, 3000, size=4).astype(np.int32)
    mult, shift = arith.quantize_multipliers(s_in * s_w / s_out)
    node = Node("n", "q_conv", ("x", "w", "b", "m", "s"), ("y",),
                {"in_zp": zp_in, "out_zp": zp_out, "stride": (2, 2), "padding": (1, 1, 1, 1), "dilation": (1, 1),
                 "groups": 2})
    y = get_op("q_conv").reference(node, [x, w, b, mult, shift])[0]
    xf = torch.from_numpy(_deq(x, s_in, zp_in))
    wf = torch.from_numpy(_deq(w, s_w[:, None, None, None]))
    real = F.conv2d(xf, wf, torch.from_numpy(_deq(b, s_in * s_w)), stride=2, padding=1, groups=2).numpy()
    assert y.shape == real.shape
    assert np.all(np.abs(real / s_out + zp_out) < 127)
    assert np.max(np.abs(_deq(y, s_out, zp_out) - real)) <= s_out + 1e-12

    # matmul, batched with broadcasting
    s_a, zp_a, s_b, zp_b = 0.03, 11, 0.04, -20
    a, bm = _int8(rng, (2, 1, 3, 6)), _int8(rng, (4, 6, 2))
    s_out = 0.5
    mult, shift = arith.quantize_multiplier(s_a * s_b / s_out)
    node = Node("n", "q_matmul", ("a", "b"), ("y",),
                {"a_zp": zp_a, "b_zp": zp_b, "out_zp": zp_out, "mult": mult, "shift": shift})
    y = get_op("q_matmul").reference(node, [a, bm])[0]
    real = np.matmul(_deq(a, s_a, zp_a), _deq(bm, s_b, zp_b))
    assert y.shape == real.shape == (2, 4, 3, 2)
    assert np.all(np.abs(real / s_out + zp_out) < 127)
    assert np.max(np.abs(_deq(y, s_out, zp_out) - real)) <= s_out + 1e-12
