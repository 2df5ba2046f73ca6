"""int8 elementwise add / sub / mul / div-by-constant, requantize, LUT activations, softmax, pooling,
mean, and data movement (including concat with requantized inputs).

Every end-to-end case checks (1) the C kernels against the NumPy interpreter bit for bit, (2) the
dequantized int8 result against float PyTorch (SQNR), (3) that the graph really holds the int8 op.
Kernel edge cases (every int8 value, extreme zero points and multipliers) run on hand-built int8
graphs, and the integer references are checked against float arithmetic on the values the int8
tensors represent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modelblocks
from modelblocks.api import CompiledModel
from modelblocks.interpreter import run as run_graph
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Graph, Node, QuantParams, Tensor
from modelblocks.ir.verify import verify
from modelblocks.ops.q_elementwise import requantize_attrs
from modelblocks.ops.q_lut import lut_table
from modelblocks.ops.q_softmax import exp_table
from modelblocks.ops.registry import get_op
from modelblocks.quant import arith
from helpers import assert_int8_exact, op_model


def _calibration(xs, n):
    """n random batches like the example inputs, as one [n * B, ...] array per input."""
    def like(t):
        std = float(t.std()) if t.numel() > 1 else 1.0
        return torch.randn_like(t) * std + float(t.mean())

    return [torch.cat([like(t) for _ in range(n)]) for t in xs]


def _assert_int8_exact(model, x, *, op, min_sqnr, sanitize=False, calib_n=24, calib=None):
    """helpers.assert_int8_exact, calibrated on `calib` or `calib_n` random batches like `x`."""
    xs = x if isinstance(x, tuple) else (x,)
    return assert_int8_exact(model, xs, calib if calib is not None else _calibration(xs, calib_n),
                             ops=(op,) if isinstance(op, str) else op, min_sqnr=min_sqnr, sanitize=sanitize)


def _grid_check(c, x, op, fn, min_equal=0.9):
    """Independent check of the one `op` node: its int8 output against `fn` (float64 torch) on the values its
    int8 inputs represent, rounded to the output grid: within one step everywhere, equal almost everywhere."""
    xs = x if isinstance(x, tuple) else (x,)
    values = run_graph(c.graph, [t.numpy() for t in xs], keep_all=True)
    (node,) = [n for n in c.graph.nodes if n.op == op]
    args = []
    for name in node.inputs:
        p = c.graph.tensors[name].quant
        if p is not None:
            args.append(torch.from_numpy((values[name].astype(np.float64) - p.zero_point[0]) * p.scale[0]))
    p = c.graph.tensors[node.outputs[0]].quant
    with torch.no_grad():
        f = fn(*args).numpy()
    want = np.clip(arith.round_half_away(f / p.scale[0]) + p.zero_point[0], -128, 127)
    diff = np.abs(values[node.outputs[0]].astype(np.int64) - want)
    assert diff.max() <= 1 and np.mean(diff == 0) >= min_equal, (diff.max(), np.mean(diff == 0))


def _int8_graph(op, inputs, attrs, consts=(), out_params=QuantParams((0.05,), (3,))):
    """A hand-built graph of one int8 node: inputs [(name, shape, (scale, zp))], consts [(name, array)]."""
    g = Graph("t")
    for name, shape, (s, zp) in inputs:
        g.add_tensor(Tensor(name, shape, DType.int8, QuantParams((s,), (zp,))))
        g.inputs.append(name)
    names = [n for n, _, _ in inputs]
    for name, data in consts:
        g.add_constant(name, data)
        names.append(name)
    node = Node("n", op, tuple(names), ("y",), attrs)
    (shape, dtype), = get_op(op).infer(node, [g.tensors[n] for n in names])
    g.add_tensor(Tensor("y", shape, dtype, out_params))
    g.nodes.append(node)
    g.outputs.append("y")
    verify(g)
    return g


def _exact_c(g, arrays, sanitize=False):
    c = CompiledModel(g)
    ref = c.run_reference(arrays)[0]
    np.testing.assert_array_equal(c.run_c(arrays)[0], ref)
    if sanitize:
        np.testing.assert_array_equal(c.run_sanitized(arrays)[0], ref)
    return ref


def _all_pairs():
    v = np.arange(-128, 128, dtype=np.int8)
    return np.repeat(v, 256).reshape(256, 256), np.tile(v, 256).reshape(256, 256)


# -- add / sub / mul ------------------------------------------------------------------------------------

BINARY_CASES = {
    "add_same": ("add", (2, 3, 8), (2, 3, 8)),
    "add_row": ("add", (2, 3, 8), (8,)),
    "add_both_broadcast": ("add", (2, 1, 8), (1, 4, 1)),
    "add_channel": ("add", (2, 4, 3, 3), (1, 4, 1, 1)),
    "sub_row": ("sub", (4, 6), (1, 6)),
    "sub_lhs_broadcast": ("sub", (1, 6), (4, 6)),
    "mul_same": ("mul", (2, 3, 8), (2, 3, 8)),
    "mul_col": ("mul", (2, 3, 8), (3, 1)),
    "mul_scalar_shape": ("mul", (5, 7), (1,)),
}
_FN = {"add": torch.add, "sub": torch.sub, "mul": torch.mul}


@pytest.mark.parametrize("case", BINARY_CASES)
def test_binary_broadcasting(case):
    kind, sa, sb = BINARY_CASES[case]
    x = (torch.randn(sa), torch.randn(sb) * 2.0 + 0.5)
    op = "q_mul" if kind == "mul" else "q_add"
    c, ops = _assert_int8_exact(op_model(_FN[kind]), x, op=op, min_sqnr=30.0 if kind != "mul" else 27.0)
    assert ops.get("add", 0) + ops.get("sub", 0) + ops.get("mul", 0) == 0
    _grid_check(c, x, op, _FN[kind])


def test_residual_add_of_two_int8_activations():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

        def forward(self, x):
            h = torch.relu(self.fc1(x))
            return self.fc2(h) + h

    c, ops = _assert_int8_exact(Block(), torch.randn(3, 16), op=("q_add", "q_linear"), min_sqnr=28.0)
    add = next(n for n in c.graph.nodes if n.op == "q_add")
    producers = {o: n.op for n in c.graph.nodes for o in n.outputs}
    assert [producers[i] for i in add.inputs] == ["q_linear", "q_linear"]  # no quantize/dequantize between


CONST_CASES = {
    "position_embedding": (lambda m, x: x + m.pos, {"pos": torch.randn(1, 5, 8) * 0.5}, "q_add"),
    "scalar_scale": (lambda x: x * 0.5, {}, "q_mul"),
    "rsub_scalar": (lambda x: 1.0 - x, {}, "q_add"),
    "div_by_constant": (lambda m, x: x / m.d, {"d": torch.tensor([2.0, -4.0, 0.5, 8.0, 1.0, 3.0, -1.5, 6.0])},
                        "q_mul"),
    "div_by_scalar": (lambda x: x / 3.0, {}, "q_mul"),
}


@pytest.mark.parametrize("case", CONST_CASES)
def test_binary_with_constant(case):
    fn, buffers, op = CONST_CASES[case]
    _assert_int8_exact(op_model(fn, **buffers), torch.randn(2, 5, 8), op=op, min_sqnr=30.0)


def test_add_sub_mul_every_int8_pair_extreme_params():
    """All 65536 operand pairs, extreme zero points, output scale much smaller than the inputs'
    (multiplier > 1, saturation): C == interpreter under the sanitizers, and each result is the
    float result on the represented values, rounded to the output grid (within one step)."""
    a, b = _all_pairs()
    for kind in ("add", "sub", "mul"):
        pa, pb, po = (0.02, -128), (0.5, 127), ((0.001, 100) if kind != "add" else (0.3, -128))
        sa, sb, so = pa[0], pb[0], po[0]
        if kind == "mul":
            mult, shift = arith.quantize_multiplier(sa * sb / so)
            attrs = {"a_zp": pa[1], "b_zp": pb[1], "out_zp": po[1], "mult": mult, "shift": shift,
                     "act_min": -128, "act_max": 127}
            op = "q_mul"
        else:
            twice = 2 * max(sa, sb)
            am, ash = arith.quantize_multiplier(sa / twice)
            bm, bsh = arith.quantize_multiplier(sb / twice)
            om, osh = arith.quantize_multiplier(twice / ((1 << 20) * so))
            attrs = {"a_zp": pa[1], "a_mult": am, "a_shift": ash, "b_zp": pb[1], "b_mult": -bm if kind == "sub" else bm,
                     "b_shift": bsh, "left_shift": 20, "out_zp": po[1], "out_mult": om, "out_shift": osh,
                     "act_min": -128, "act_max": 127}
            op = "q_add"
        g = _int8_graph(op, [("a", (256, 256), pa), ("b", (256, 256), pb)], attrs,
                        out_params=QuantParams((so,), (po[1],)))
        y = _exact_c(g, [a, b], sanitize=(kind == "sub"))
        fa, fb = (a.astype(np.float64) - pa[1]) * sa, (b.astype(np.float64) - pb[1]) * sb
        f = {"add": fa + fb, "sub": fa - fb, "mul": fa * fb}[kind]
        want = np.clip(arith.round_half_away(f / so) + po[1], -128, 127)
        diff = np.abs(y.astype(np.int64) - want)
        assert diff.max() <= 1, kind
        assert np.mean(diff == 0) > 0.99, kind


def test_fused_clamp_range_of_q_add():
    """act_min / act_max clamp the result (the kernel's clamp arguments are exercised)."""
    a, b = _all_pairs()
    am, ash = arith.quantize_multiplier(0.5)
    om, osh = arith.quantize_multiplier(2.0 / (1 << 20))
    attrs = {"a_zp": 0, "a_mult": am, "a_shift": ash, "b_zp": 0, "b_mult": am, "b_shift": ash, "left_shift": 20,
             "out_zp": -20, "out_mult": om, "out_shift": osh, "act_min": -20, "act_max": 90}
    g = _int8_graph("q_add", [("a", (256, 256), (1.0, 0)), ("b", (256, 256), (1.0, 0))], attrs)
    y = _exact_c(g, [a, b])
    assert y.min() == -20 and y.max() == 90


# -- requantize ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [1.0, 0.37, 3.1, 1e-3, 250.0])
def test_requantize_is_exact_to_one_step(ratio):
    """(s_in, zp_in) -> (s_out, zp_out) for every int8 value: C == interpreter, and the result is the
    correctly rounded value (a one-step difference only at a rounding tie)."""
    s_in, zp_in, zp_out = 0.05, -7, 12
    s_out = float(np.float32(s_in / ratio))
    x = np.arange(-128, 128, dtype=np.int8)
    g = _int8_graph("q_requantize", [("x", (256,), (s_in, zp_in))], requantize_attrs(s_in / s_out, zp_in, zp_out),
                    out_params=QuantParams((s_out,), (zp_out,)))
    y = _exact_c(g, [x], sanitize=ratio == 3.1).astype(np.int64)
    exact = (x.astype(np.float64) - zp_in) * s_in / s_out
    want = np.clip(arith.round_half_away(exact) + zp_out, -128, 127)
    assert np.all(np.abs(y - want) <= 1)
    ties = np.abs(np.abs(exact - np.trunc(exact)) - 0.5) < 1e-6
    np.testing.assert_array_equal(y[~ties], want[~ties])


# -- LUT activations --------------------------------------------------------------------------------------

LUT_GROUPS = {  # one compiled model per group, one output per activation: (name, fn, SQNR bound)
    "sigmoid_tanh_gelu": [("sigmoid", torch.sigmoid, 35.0), ("tanh", torch.tanh, 35.0), ("gelu", F.gelu, 30.0),
                          ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), 30.0)],
    "clamps": [("relu6", lambda x: F.relu6(x * 3.0), 30.0), ("relu", torch.relu, 30.0),
               ("hardtanh", lambda x: F.hardtanh(x, -0.5, 1.0), 30.0),
               ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), 30.0)],
    "smooth": [("hardswish", F.hardswish, 30.0), ("silu", F.silu, 30.0), ("elu", F.elu, 30.0),
               ("exp", torch.exp, 25.0)],
}


@pytest.mark.parametrize("group", LUT_GROUPS)
def test_lut_activations(group):
    cases = LUT_GROUPS[group]
    x = torch.randn(2, 4, 9)
    model = op_model(lambda t: tuple(fn(t) for _, fn, _ in cases))
    c, ops = _assert_int8_exact(model, x, op="q_lut", min_sqnr=min(b for _, _, b in cases))
    assert ops["q_lut"] == len(cases)
    ref = c.run_reference([x.numpy()])
    for (name, fn, bound), r in zip(cases, ref):
        assert arith.sqnr_db(fn(x).numpy(), r) >= bound, name
    quants = [c.graph.tensors[n.outputs[0]].quant for n in c.graph.nodes if n.op == "q_lut"]
    if group == "sigmoid_tanh_gelu":  # TFLite's fixed output parameters
        assert quants[0] == QuantParams((1 / 256,), (-128,)) and quants[1] == QuantParams((1 / 128,), (0,))


@pytest.mark.parametrize("op,attrs,torch_fn", [
    ("sigmoid", {}, torch.sigmoid),
    ("gelu", {"approximate": "none"}, F.gelu),
    ("hardswish", {}, F.hardswish),
    ("clamp", {"min": 0.0, "max": 6.0}, F.relu6),
])
def test_lut_table_is_torch_on_the_dequantized_grid(op, attrs, torch_fn):
    """The table, built from the IR op's NumPy reference, against torch on the 256 represented inputs."""
    s_in, zp_in, s_out, zp_out = 0.04, 5, 0.03, -100
    table = lut_table(Node("n", op, ("x",), ("y",), attrs), s_in, zp_in, s_out, zp_out)
    x = (np.arange(-128, 128) - zp_in) * np.float32(s_in)
    want = np.clip(np.round(torch_fn(torch.tensor(x, dtype=torch.float64)).numpy() / s_out) + zp_out, -128, 127)
    assert np.max(np.abs(table.astype(np.int64) - want)) <= 1
    assert np.mean(table == want) > 0.98


# -- softmax ----------------------------------------------------------------------------------------------

SOFTMAX_CASES = {
    "row1": ((4, 1), 40.0),
    "row10": ((3, 10), 30.0),
    "row10_batched": ((2, 3, 10), 30.0),
    "row65": ((2, 65), 20.0),
}


@pytest.mark.parametrize("case", SOFTMAX_CASES)
def test_softmax_last_dim(case):
    shape, bound = SOFTMAX_CASES[case]
    x = torch.randn(shape)
    c, _ = _assert_int8_exact(op_model(lambda t: torch.softmax(t * 2.0, dim=-1)), x, op="q_softmax", min_sqnr=bound)
    out = next(n.outputs[0] for n in c.graph.nodes if n.op == "q_softmax")
    assert c.graph.tensors[out].quant == QuantParams((1 / 256,), (-128,))
    _grid_check(c, x, "q_softmax", lambda t: torch.softmax(t, dim=-1))


def test_softmax_other_dim_or_long_rows_stay_float():
    x = torch.randn(4, 6)
    for model, xi in ((op_model(lambda t: torch.softmax(t, dim=0)), x),
                      (op_model(lambda t: torch.softmax(t, dim=-1)), torch.randn(1, 2049))):
        c = modelblocks.compile(model, (xi,), quantize="int8", calibration=_calibration((xi,), 4))
        assert "q_softmax" not in c.graph.ops_count() and c.graph.ops_count()["softmax"] == 1
        assert any("last dimension only" in why or "at most 2048" in why for why in c.quantization.float_nodes.values())


def test_softmax_integer_math_extremes():
    """Rows of every kind (constant, one hot at the extremes, full range, 2048 long) under the sanitizers;
    each output is the float softmax of the represented values within one output step (1/256) plus the
    2^-20 resolution of the exp table."""
    rng = np.random.default_rng(0)
    rows = [np.full(2048, -128), np.full(2048, 127), np.r_[127, np.full(2047, -128)], np.r_[-128, np.full(2047, 127)],
            rng.integers(-128, 128, 2048), np.clip(np.arange(2048) - 1024, -128, 127)]
    x = np.stack(rows).astype(np.int8)
    for s_in in (0.1, 0.01, 0.5):
        g = _int8_graph("q_softmax", [("x", x.shape, (s_in, 0))], {}, consts=[("exp", exp_table(s_in))],
                        out_params=QuantParams((1 / 256,), (-128,)))
        y = _exact_c(g, [x], sanitize=s_in == 0.1)
        z = x.astype(np.float64) * s_in
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        got = (y.astype(np.float64) + 128) / 256
        assert np.max(np.abs(got - np.minimum(p, 255 / 256))) <= 1 / 256 + 1e-3


# -- pooling and mean -------------------------------------------------------------------------------------

POOL_CASES = {
    "max2d_k3s2p1": (lambda x: F.max_pool2d(x, 3, 2, 1), (2, 3, 9, 9), "q_max_pool", 35.0),
    "max2d_ceil_dilation": (lambda x: F.max_pool2d(x, 3, 2, 1, dilation=2, ceil_mode=True), (1, 2, 10, 8),
                            "q_max_pool", 35.0),
    "max1d_ceil": (lambda x: F.max_pool1d(x, 2, 2, ceil_mode=True), (2, 3, 11), "q_max_pool", 35.0),
    "avg2d_pad_include": (lambda x: F.avg_pool2d(x, 3, 2, 1), (2, 3, 9, 9), "q_avg_pool", 25.0),
    "avg2d_pad_exclude": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (2, 3, 8, 9),
                          "q_avg_pool", 25.0),
    "avg2d_ceil": (lambda x: F.avg_pool2d(x, (2, 3), (2, 2), (1, 1), ceil_mode=True, count_include_pad=False),
                   (1, 3, 7, 8), "q_avg_pool", 25.0),
    "avg2d_ceil_include": (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (1, 2, 8, 8), "q_avg_pool", 25.0),
    "avg2d_divisor": (lambda x: F.avg_pool2d(x, 2, 2, 1, divisor_override=5), (1, 3, 6, 6), "q_avg_pool", 25.0),
    "avg1d": (lambda x: F.avg_pool1d(x, 4, 3, 2), (2, 3, 12), "q_avg_pool", 25.0),
    "adaptive_avg2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), (2, 3, 7, 8), "q_adaptive_avg_pool", 20.0),
    "global_avg": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 4, 5, 5), "q_adaptive_avg_pool", 20.0),
    "adaptive_avg1d": (lambda x: F.adaptive_avg_pool1d(x, 4), (2, 3, 10), "q_adaptive_avg_pool", 20.0),
    "adaptive_max2d": (lambda x: F.adaptive_max_pool2d(x, (3, 2)), (2, 3, 7, 5), "q_adaptive_max_pool", 35.0),
}


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool(case):
    """Input and output share their parameters, so an average of k values has 1/k of the input's signal
    power but the same rounding step: the SQNR bound is lower for wide windows; the grid check is not."""
    fn, shape, op, bound = POOL_CASES[case]
    x = torch.randn(shape)
    c, _ = _assert_int8_exact(op_model(fn), x, op=op, min_sqnr=bound)
    node = next(n for n in c.graph.nodes if n.op == op)
    assert c.graph.tensors[node.inputs[0]].quant == c.graph.tensors[node.outputs[0]].quant
    _grid_check(c, x, op, fn, min_equal=0.99)


def test_avg_pool_small_divisor_override_stays_float():
    x = torch.randn(1, 2, 6, 6)
    model = op_model(lambda t: F.avg_pool2d(t, 3, 3, divisor_override=2))
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calibration((x,), 4))
    assert "q_avg_pool" not in c.graph.ops_count() and c.graph.ops_count()["avg_pool"] == 1
    assert "divisor_override 2 is smaller than the window" in " ".join(c.quantization.float_nodes.values())


def test_avg_pool_rounds_half_away_from_zero():
    """Hand-built: windows whose sums are exact halves round away from zero on both signs."""
    x = np.array([[[[1, 2, -1, -2], [0, 0, 0, 0]]]], dtype=np.int8)  # 1x1x2x4, zp 0
    attrs = {"kernel": (1, 2), "stride": (1, 2), "padding": (0, 0), "ceil_mode": False, "count_include_pad": True,
             "divisor_override": None, "zero_point": 0}
    y = _exact_c(_int8_graph("q_avg_pool", [("x", x.shape, (0.1, 0))], attrs, out_params=QuantParams((0.1,), (0,))),
                 [x], sanitize=True)
    np.testing.assert_array_equal(y.reshape(-1), [2, -2, 0, 0])


MEAN_CASES = {
    "last_dim": (lambda x: x.mean(-1), (2, 5, 16)),
    "last_dim_keepdim": (lambda x: x.mean(-1, keepdim=True), (3, 16)),
    "spatial": (lambda x: x.mean((2, 3)), (2, 4, 5, 6)),
    "spatial_keepdim": (lambda x: x.mean((-2, -1), keepdim=True), (1, 3, 4, 4)),
    "non_adjacent": (lambda x: x.mean((0, 2)), (3, 4, 5)),
    "sum_dim1": (lambda x: x.sum(1), (2, 6, 3)),
}


@pytest.mark.parametrize("case", MEAN_CASES)
def test_mean(case):
    fn, shape = MEAN_CASES[case]
    x = torch.randn(shape) + 0.5
    c, _ = _assert_int8_exact(op_model(fn), x, op="q_mean", min_sqnr=30.0)
    _grid_check(c, x, "q_mean", fn)


def test_mean_extremes_under_sanitizers():
    """Every element at -128 or 127 with extreme zero points over 4096 elements per output."""
    x = np.where(np.arange(2 * 4096).reshape(2, 64, 64) % 3 == 0, 127, -128).astype(np.int8)
    for in_zp, out_zp, s_out in ((-128, 127, 0.01), (127, -128, 0.5)):
        count, s_in = 4096, 0.1
        shift_l = 11
        mult, shift = arith.quantize_multiplier(s_in / (s_out * count) / (1 << shift_l))
        attrs = {"axes": (1, 2), "keepdim": False, "in_zp": in_zp, "out_zp": out_zp, "left_shift": shift_l,
                 "mult": mult, "shift": shift}
        g = _int8_graph("q_mean", [("x", x.shape, (s_in, in_zp))], attrs, out_params=QuantParams((s_out,), (out_zp,)))
        y = _exact_c(g, [x], sanitize=in_zp == -128).astype(np.int64)
        mean = ((x.astype(np.float64) - in_zp) * s_in).mean(axis=(1, 2))
        want = np.clip(arith.round_half_away(mean / s_out) + out_zp, -128, 127)
        assert np.all(np.abs(y - want) <= 1)


# -- data movement ----------------------------------------------------------------------------------------

MOVE_CASES = {
    "permute_transpose": (lambda x: torch.tanh(x).permute(0, 2, 1).transpose(0, 1), (2, 3, 4), ("permute",)),
    "slice_select_flatten": (lambda x: torch.tanh(x)[:, 1:6:2, 1].flatten(), (2, 7, 3), ("slice", "select")),
    "expand_repeat": (lambda x: torch.tanh(x).unsqueeze(1).expand(2, 3, 4).repeat(1, 2, 1), (2, 4),
                      ("expand", "repeat")),
    "flip_index_select": (lambda x: torch.tanh(x).flip(-1)[:, torch.tensor([2, 0, 2])], (3, 5, 2),
                          ("flip", "index_select")),
    "unfold_diagonal": (lambda x: torch.tanh(x).unfold(2, 3, 2).diagonal(0, 1, 2), (2, 4, 9), ("unfold", "diagonal")),
    "pixel_shuffle": (lambda x: F.pixel_unshuffle(F.pixel_shuffle(torch.tanh(x), 2), 3), (1, 8, 3, 3),
                      ("pixel_shuffle", "pixel_unshuffle")),
}


@pytest.mark.parametrize("case", MOVE_CASES)
def test_data_movement_in_int8(case):
    fn, shape, moves = MOVE_CASES[case]
    c, ops = _assert_int8_exact(op_model(fn), torch.randn(shape), op=("q_lut",) + moves, min_sqnr=35.0,
                       sanitize=case == "unfold_diagonal")
    for node in c.graph.nodes:
        if node.op in moves:
            assert c.graph.tensors[node.outputs[0]].dtype == DType.int8
            assert c.graph.tensors[node.outputs[0]].quant == c.graph.tensors[node.inputs[0]].quant
    assert ops["quantize"] == 1 and ops["dequantize"] == 1


def test_data_movement_of_a_float_tensor_stays_float():
    x = torch.randn(2, 3, 4)
    c = modelblocks.compile(op_model(lambda t: torch.tanh(t.permute(0, 2, 1))), (x,), quantize="int8",
                            calibration=_calibration((x,), 4))
    perm = next(n for n in c.graph.nodes if n.op == "permute")
    assert c.graph.tensors[perm.outputs[0]].dtype == DType.float32
    assert "its input is float32" in c.quantization.float_nodes[perm.name]
    assert "q_lut" in c.graph.ops_count()


def test_concat_requantizes_inputs_to_the_output_params():
    class Cat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("tok", torch.randn(2, 1, 6) * 3.0)

        def forward(self, x):
            # tanh (scale 1/128), a wider int8 activation, a constant and a float graph input
            return torch.cat([torch.tanh(x), torch.sigmoid(x) * 4.0 - 1.0, self.tok, x * 0.0 + x], dim=1)

    c, ops = _assert_int8_exact(Cat(), torch.randn(2, 3, 6), op=("concat", "q_requantize"), min_sqnr=30.0, sanitize=True)
    cat = next(n for n in c.graph.nodes if n.op == "concat")
    params = {c.graph.tensors[i].quant for i in cat.inputs}
    assert params == {c.graph.tensors[cat.outputs[0]].quant}
    assert all(c.graph.tensors[i].dtype == DType.int8 for i in cat.inputs)


def test_concat_of_a_float_input_quantizes_straight_to_output_params():
    x = torch.randn(2, 4)
    c, ops = _assert_int8_exact(op_model(lambda t: torch.cat([torch.tanh(t) * 3.0, t], dim=-1)), x, op="concat",
                       min_sqnr=30.0)
    cat = next(n for n in c.graph.nodes if n.op == "concat")
    producers = {o: n for n in c.graph.nodes for o in n.outputs}
    quant = producers[cat.inputs[1]]
    assert quant.op == "quantize" and quant.inputs == tuple(c.graph.inputs)
    assert c.graph.tensors[quant.outputs[0]].quant == c.graph.tensors[cat.outputs[0]].quant


# -- one sanitized model per family --------------------------------------------------------------------------

class _Elementwise(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pos", torch.randn(1, 4, 10) * 0.3)

    def forward(self, a, b):
        h = F.gelu(a + self.pos) * b - a
        return torch.softmax(h, dim=-1), torch.sigmoid(h / 2.0)


class _Pools(torch.nn.Module):
    def forward(self, x):
        y = F.max_pool2d(x, 3, 2, 1, ceil_mode=True) + F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        z = F.adaptive_avg_pool2d(x, (2, 3)) - F.adaptive_max_pool2d(x, (2, 3))
        return y.mean((2, 3)), z


def test_elementwise_lut_softmax_under_sanitizers():
    a, b = torch.randn(2, 4, 10), torch.randn(1, 10)
    _assert_int8_exact(_Elementwise(), (a, b), op=("q_add", "q_mul", "q_lut", "q_softmax"), min_sqnr=22.0, sanitize=True)


def test_pools_and_mean_under_sanitizers():
    _assert_int8_exact(_Pools(), torch.randn(2, 3, 9, 9),
              op=("q_max_pool", "q_avg_pool", "q_adaptive_avg_pool", "q_adaptive_max_pool", "q_mean", "q_add"),
              min_sqnr=25.0, sanitize=True)
