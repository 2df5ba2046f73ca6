"""Int8-weights mode (passes/quantize_weights.py, ops/w8.py, kernels/mb_w8.c): weights int8 per output
channel, activations float32.

Each op is checked over shapes and options: the C output against the NumPy interpreter (float math,
rel L2 < 1e-5; the embedding lookup is a single float32 product, so bit for bit), the interpreter
against float PyTorch (SQNR >= 35 dB with random weights), and that the graph really holds the _w8
op. The pass is checked for what it replaces and keeps (keep_float scopes, non-constant weights,
shared weights) and for the flash it saves.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

import modelblocks
from modelblocks.api import CompiledModel, rel_l2
from modelblocks.errors import GraphError
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Graph, Node, Tensor
from modelblocks.ir.verify import verify
from modelblocks.passes import PIPELINE, quantize_weights
from modelblocks.quant import arith

C_TOL = 1e-5
MIN_SQNR_DB = 35.0
W8_OPS = {"linear_w8", "conv_w8", "embedding_w8"}


def compile_w8(model: nn.Module, inputs: tuple, keep_float=()) -> CompiledModel:
    compiled = modelblocks.compile(model.eval(), inputs, quantize="int8-weights", keep_float=keep_float)
    assert compiled.quantize_mode == "int8-weights"
    return compiled


def check_w8(model: nn.Module, inputs, expect: dict[str, int], sanitize: bool = False,
             exact: bool = False) -> CompiledModel:
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    model = model.eval()
    compiled = compile_w8(model, inputs)
    counts = compiled.graph.ops_count()
    for op, n in expect.items():
        assert counts.get(op, 0) == n, (op, counts)
    assert not {"linear", "conv", "embedding"} & set(counts), counts
    arrays = [x.numpy() for x in inputs]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    (ref,) = compiled.run_reference(arrays)
    (got,) = compiled.run_c(arrays)
    assert ref.shape == got.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(got, ref)
    else:
        assert rel_l2(got, ref) < C_TOL, rel_l2(got, ref)
    sqnr = arith.sqnr_db(expected, ref)
    assert sqnr >= MIN_SQNR_DB, f"SQNR {sqnr:.1f} dB vs float torch"
    if sanitize:
        (san,) = compiled.run_sanitized(arrays)
        assert rel_l2(san, got) < 1e-6
    return compiled


# -- linear_w8 ------------------------------------------------------------------------------------

LINEAR_CASES = {
    "bias_2d": (lambda: nn.Linear(16, 8), (3, 16), None),
    "no_bias_3d": (lambda: nn.Linear(24, 5, bias=False), (2, 4, 24), None),
    "relu": (lambda: nn.Sequential(nn.Linear(12, 7), nn.ReLU()), (4, 12), (0.0, None)),
    "relu6_no_bias": (lambda: nn.Sequential(nn.Linear(20, 9, bias=False), nn.ReLU6()), (3, 20), (0.0, 6.0)),
    "vector_input": (lambda: nn.Linear(33, 10), (33,), None),
    "one_output": (lambda: nn.Linear(40, 1), (16, 40), None),
}


@pytest.mark.parametrize("case", sorted(LINEAR_CASES))
def test_linear_w8(case):
    factory, shape, clamp = LINEAR_CASES[case]
    model = factory()
    scale = 8.0 if clamp == (0.0, 6.0) else 1.0  # reach the ReLU6 ceiling
    compiled = check_w8(model, torch.randn(shape) * scale, {"linear_w8": 1})
    node = next(n for n in compiled.graph.nodes if n.op == "linear_w8")
    if clamp is not None:
        assert (node.attrs["act_min"], node.attrs["act_max"]) == clamp


# -- conv_w8 --------------------------------------------------------------------------------------

CONV_CASES = {
    "2d_pad_bias": (lambda: nn.Conv2d(3, 6, 3, padding=1), (2, 3, 7, 6)),
    "2d_stride_dilation_no_bias": (lambda: nn.Conv2d(4, 5, (3, 2), stride=(2, 1), dilation=(1, 2), padding=(2, 1),
                                                     bias=False), (1, 4, 9, 8)),
    "2d_groups_relu": (lambda: nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, stride=2), nn.ReLU()), (2, 4, 9, 9)),
    "2d_depthwise_relu6": (lambda: nn.Sequential(nn.Conv2d(5, 5, 3, groups=5, padding=1, bias=False), nn.ReLU6()),
                           (1, 5, 6, 6)),
    "2d_same_even_kernel": (lambda: nn.Conv2d(3, 4, 4, padding="same"), (1, 3, 7, 5)),
    "1d_pad_bias": (lambda: nn.Conv1d(3, 4, 5, padding=2), (2, 3, 16)),
    "1d_stride_dilation_groups": (lambda: nn.Conv1d(6, 9, 3, stride=2, dilation=2, groups=3, padding=1), (1, 6, 20)),
    "1d_depthwise_no_bias_unbatched": (lambda: nn.Conv1d(4, 4, 3, groups=4, bias=False), (4, 11)),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_w8(case):
    factory, shape = CONV_CASES[case]
    scale = 6.0 if "relu6" in case else 1.0
    compiled = check_w8(factory(), torch.randn(shape) * scale, {"conv_w8": 1})
    node = next(n for n in compiled.graph.nodes if n.op == "conv_w8")
    if "relu" in case:
        assert node.attrs["act_min"] == 0.0 and node.attrs["act_max"] == (6.0 if "relu6" in case else None)


def test_conv_w8_sanitized():
    """2-D, asymmetric padding, stride, dilation, groups and a clamp under ASan + UBSan."""
    model = nn.Sequential(nn.Conv2d(4, 6, (3, 4), stride=(1, 2), dilation=(2, 1), padding="valid", groups=2),
                          nn.ReLU6(), nn.Conv2d(6, 6, 3, groups=6, padding=1, bias=False))
    check_w8(model, torch.randn(1, 4, 10, 11) * 4, {"conv_w8": 2}, sanitize=True)


# -- embedding_w8 ---------------------------------------------------------------------------------

def test_embedding_w8_bit_exact():
    emb = nn.Embedding(20, 6)
    idx = torch.randint(0, 20, (3, 5))
    compiled = check_w8(emb, idx, {"embedding_w8": 1}, exact=True)
    w_q, scales = (compiled.graph.tensors[i].data for i in compiled.graph.nodes[0].inputs[:2])
    expected_scales = arith.symmetric_scales(emb.weight.detach().numpy(), axis=0)  # one scale per row
    np.testing.assert_array_equal(scales, expected_scales)
    np.testing.assert_array_equal(w_q, arith.quantize_symmetric(emb.weight.detach().numpy(), expected_scales))


def test_embedding_w8_out_of_range_rows_are_zero():
    """torch raises on a bad index; the kernel writes a zero row (and the interpreter agrees)."""
    graph = quantize_weights.run(modelblocks.compile(nn.Embedding(7, 4).eval(), torch.randint(0, 7, (8,))).graph)
    compiled = CompiledModel(graph)
    idx = np.array([0, -8, 6, 7, 3, 2**31 - 1, -(2**31), -7], dtype=np.int32)
    (ref,) = compiled.run_reference([idx])
    np.testing.assert_array_equal(compiled.run_c([idx])[0], ref)
    np.testing.assert_array_equal(compiled.run_sanitized([idx])[0], ref)
    assert not ref[[1, 3, 5, 6]].any() and ref[[0, 2, 4]].any()
    np.testing.assert_array_equal(ref[7], ref[0])  # -7 counts from the end of the 7 rows, as NumPy does


class EmbedConvHead(nn.Module):
    """Token embedding -> 1-D conv over the sequence -> linear head tied to the embedding table."""

    def __init__(self, vocab=30, dim=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, dim, 3, padding=1, groups=2)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        x = self.emb(idx).transpose(1, 2)
        x = torch.relu(self.conv(x)).transpose(1, 2)
        return self.head(x)


def test_all_ops_sanitized_and_tied_weights_shared():
    """Every _w8 op under ASan + UBSan; the tied embedding / head table is quantized once (same axis)."""
    model = EmbedConvHead()
    compiled = check_w8(model, torch.randint(0, 30, (2, 9)), {"embedding_w8": 1, "conv_w8": 1, "linear_w8": 1},
                        sanitize=True)
    g = compiled.graph
    emb = next(n for n in g.nodes if n.op == "embedding_w8")
    head = next(n for n in g.nodes if n.op == "linear_w8")
    assert emb.inputs[:2] == head.inputs[1:3]
    assert not [t for t in g.constants() if t.dtype == DType.float32 and t.numel >= 30 * 16]


# -- the pass -------------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return torch.relu(self.fc(x))


class Stack(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.stem = nn.Conv1d(2, d, 3, padding=1)
        self.blocks = nn.ModuleList([Block(d) for _ in range(3)])
        self.head = nn.Linear(d, 4)

    def forward(self, x):
        x = self.stem(x).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


@functools.lru_cache(maxsize=1)
def _stack_graph() -> Graph:
    torch.manual_seed(0)
    return modelblocks.compile(Stack().eval(), torch.randn(1, 2, 5)).graph


def _float_graph() -> Graph:
    return _stack_graph().copy()  # the pass never mutates its input (tested below), copy all the same


@pytest.mark.parametrize("keep, floats", [
    ((), set()),
    (("blocks.0",), {"blocks.0.fc"}),
    (["blocks.*"], {"blocks.0.fc", "blocks.1.fc", "blocks.2.fc"}),
    ("head", {"head"}),  # a single pattern as a string
    (("blocks.[02]", "stem"), {"blocks.0.fc", "blocks.2.fc", "stem"}),
    (("block", "blocks.0.f", "blocks.1.fc.x"), set()),  # no partial-name or deeper-than-scope matches
])
def test_keep_float_scopes(keep, floats):
    g = _float_graph()
    g2 = quantize_weights.run(g, keep_float=keep)
    verify(g2, after="quantize_weights")
    kept = {n.scope for n in g2.nodes if n.op in ("linear", "conv")}
    assert kept == floats
    assert len([n for n in g2.nodes if n.op in W8_OPS]) == 5 - len(floats)
    # activations keep their names: the node list is the same apart from op and weight inputs
    assert [(n.name, n.outputs, n.inputs[0]) for n in g2.nodes] == [(n.name, n.outputs, n.inputs[0]) for n in g.nodes]


def test_mixed_float_and_w8_graph_runs():
    g = _float_graph()
    x = np.random.default_rng(0).standard_normal((1, 2, 5)).astype(np.float32)
    (expected,) = CompiledModel(g).run_reference([x])
    compiled = CompiledModel(quantize_weights.run(g, keep_float=("blocks.1", "stem")))
    assert compiled.graph.ops_count()["linear_w8"] == 3
    (ref,) = compiled.run_reference([x])
    assert rel_l2(compiled.run_c([x])[0], ref) < C_TOL
    assert arith.sqnr_db(expected, ref) >= MIN_SQNR_DB


def test_compile_api_keep_float_and_verify():
    """compile(quantize="int8-weights", keep_float=...) end to end, and verify() holds the C to the interpreter."""
    model = Stack().eval()
    x = torch.randn(1, 2, 5)
    compiled = compile_w8(model, (x,), keep_float=["blocks.1"])
    counts = compiled.graph.ops_count()
    assert counts.get("linear") == 1 and counts.get("linear_w8") == 3 and counts.get("conv_w8") == 1, counts
    results = modelblocks.verify(compiled, (x,), runs=2, print_table=False)
    assert results and all(r.passes(C_TOL, compiled.quantize_mode) for r in results)
    assert all(r.rel_l2_ref < 10 ** (-MIN_SQNR_DB / 20) for r in results)  # interpreter vs torch: SQNR >= 35 dB


def test_pass_replaces_weights_and_leaves_input_graph_alone():
    g = _float_graph()
    before = g.copy()
    g2 = quantize_weights.run(g)
    assert g.same_as(before)
    for node in g.nodes:
        if node.op not in ("linear", "conv"):
            continue
        w = g.tensors[node.inputs[1]]
        new = next(n for n in g2.nodes if n.name == node.name)
        assert new.op == node.op + "_w8" and new.attrs == node.attrs and new.scope == node.scope
        assert new.inputs[0] == node.inputs[0] and new.inputs[3] == node.inputs[2]
        wq, scales = g2.tensors[new.inputs[1]], g2.tensors[new.inputs[2]]
        expected = arith.symmetric_scales(w.data, axis=0)
        np.testing.assert_array_equal(scales.data, expected)
        np.testing.assert_array_equal(wq.data, arith.quantize_symmetric(w.data, expected))
        assert wq.dtype == DType.int8 and wq.quant.axis == 0 and set(wq.quant.zero_point) == {0}
        assert w.name not in g2.tensors  # the float weight is gone
    assert "quantize_weights" not in PIPELINE


def test_pass_keeps_non_constant_and_unsupported_weights():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose1d(3, 3, 2, stride=2)
            self.fc = nn.Linear(6, 5)

        def forward(self, x, w):
            y = self.up(x)  # conv_transpose: no int8-weights op, stays float
            return nn.functional.linear(y, w) + self.fc(y[..., :6])  # w is an input, not a constant

    x, w = torch.randn(1, 3, 4), torch.randn(5, 8)
    compiled = CompiledModel(quantize_weights.run(modelblocks.compile(M().eval(), (x, w)).graph))
    assert compiled.graph.ops_count().get("conv_transpose") == 1
    assert compiled.graph.ops_count().get("linear") == 1 and compiled.graph.ops_count().get("linear_w8") == 1


def test_non_finite_weight_stays_float():
    lin = nn.Linear(4, 3)
    g = modelblocks.compile(lin.eval(), torch.randn(2, 4)).graph
    wname = g.nodes[0].inputs[1]
    g.tensors[wname].data[1, 2] = np.inf
    assert quantize_weights.run(g).ops_count() == {"linear": 1}


def test_weights_bytes_shrink():
    model = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 64))
    x = torch.randn(1, 8, 6, 6)
    float_bytes = modelblocks.compile(model.eval(), x).source.weights_bytes
    compiled = check_w8(model, x, {"conv_w8": 1, "linear_w8": 2})
    ratio = float_bytes / compiled.source.weights_bytes
    assert ratio >= 3.5, (float_bytes, compiled.source.weights_bytes)


# -- the op rules ---------------------------------------------------------------------------------

def _graph(op, ins: list[Tensor], attrs=None) -> Graph:
    g = Graph(tensors={t.name: t for t in ins}, inputs=[ins[0].name])
    g.nodes.append(Node("n", op, tuple(t.name for t in ins), ("y",), attrs or {}))
    g.tensors["y"] = Tensor("y", (2, 3), DType.float32)
    return g


def _const(name, shape, dtype):
    return Tensor(name, shape, dtype, data=np.zeros(shape, dtype.numpy))


@pytest.mark.parametrize("bad", ["float_weight", "scales_shape", "bias_dtype"])
def test_linear_w8_rejects_bad_inputs(bad):
    x = Tensor("x", (2, 4), DType.float32)
    w = _const("w", (3, 4), DType.float32 if bad == "float_weight" else DType.int8)
    s = _const("s", (4,) if bad == "scales_shape" else (3,), DType.float32)
    b = _const("b", (3,), DType.int32 if bad == "bias_dtype" else DType.float32)
    with pytest.raises(GraphError):
        verify(_graph("linear_w8", [x, w, s, b]))
    ok = _graph("linear_w8", [x, _const("w", (3, 4), DType.int8), _const("s", (3,), DType.float32),
                              _const("b", (3,), DType.float32)])
    verify(ok)
