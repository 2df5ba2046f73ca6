"""int8 scaled dot-product attention: passes/decompose_attention.py spells F.scaled_dot_product_attention
out as hand-written attention (k^T, matmul, scale, softmax, matmul) before calibration, so int8 runs it
on q_matmul, q_mul (or q_lut) and q_softmax.

Every case checks that no float `attention` is left, that the C equals the NumPy interpreter bit for bit,
that the dequantized output is within SQNR_DB of PyTorch, and that the decomposed float graph (and its
C) computes what PyTorch does; float compiles keep the one fused attention node. Causal attention and
masks stay float32 with their reason, and TinyViT (whose block 1 calls SDPA) quantizes fully to int8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modelblocks
from modelblocks.api import CompiledModel
from modelblocks.interpreter import run as run_graph
from modelblocks.metrics import rel_l2
from modelblocks.models import tiny_vit
from modelblocks.passes import decompose_attention
from modelblocks.quant import arith
from modelblocks.quant.exactness import EXACT, output_checks
from helpers import FLOAT_TOL, check_model, op_model

# Measured 32.3 .. 37.0 dB over the cases below with ten seeds each (the input among the calibration data).
SQNR_DB = 30.0
MOVEMENT = "its input is float32"  # the reason data movement on a float graph input stays float

CASES = {  # query, key, value shapes and SDPA's keyword arguments
    "1head_L_eq_S": ((1, 1, 8, 16), (1, 1, 8, 16), (1, 1, 8, 16), {}),
    "2heads_L_lt_S_scale": ((2, 2, 5, 8), (2, 2, 9, 8), (2, 2, 9, 6), {"scale": 0.3}),
    "4heads_L_gt_S": ((1, 4, 12, 16), (1, 4, 7, 16), (1, 4, 7, 16), {}),
    "3d_no_heads_scale_1": ((2, 6, 4), (2, 6, 4), (2, 6, 8), {"scale": 1.0}),  # no q_mul
    "gqa_4q_2kv": ((1, 4, 6, 8), (1, 2, 6, 8), (1, 2, 6, 8), {"enable_gqa": True}),
}


def _sdpa(**kw):
    return op_model(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw))


def _inputs(shapes):
    return tuple(torch.randn(s) for s in shapes)


def _calibration(xs, n=16):
    """The inputs plus n - 1 random batches like them: the SQNR measures rounding, not clipped ranges."""
    return [torch.cat([t] + [torch.randn_like(t) for _ in range(n - 1)]) for t in xs]


def _torch(model, xs) -> np.ndarray:
    with torch.no_grad():
        return model(*xs).numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_sdpa_runs_in_int8_bit_exact(name):
    *shapes, kw = CASES[name]
    model, xs = _sdpa(**kw), _inputs(shapes)
    compiled = modelblocks.compile(model, xs, quantize="int8", calibration=_calibration(xs))
    ops = compiled.graph.ops_count()
    scalings = 0 if kw.get("scale") == 1.0 else 1
    assert "attention" not in ops and ops["q_matmul"] == 2 and ops["q_softmax"] == 1, ops
    # the scale: q_mul, or a q_lut once the scores have 256 elements or more (a scalar constant's table)
    assert ops.get("q_mul", 0) + ops.get("q_lut", 0) == scalings, ops
    assert all(MOVEMENT in why for why in compiled.quantization.float_nodes.values()), compiled.quantization.float_nodes
    arrays = [t.numpy() for t in xs]
    ref = compiled.run_reference(arrays)[0]
    np.testing.assert_array_equal(compiled.run_c(arrays)[0], ref)
    if name == "gqa_4q_2kv":
        np.testing.assert_array_equal(compiled.run_sanitized(arrays)[0], ref)
    sqnr = arith.sqnr_db(_torch(model, xs), ref)
    assert sqnr >= SQNR_DB, f"SQNR {sqnr:.1f} dB < {SQNR_DB} dB"


@pytest.mark.parametrize("name", list(CASES))
def test_decomposed_float_graph_computes_sdpa(name):
    """The rewritten float graph against PyTorch; the float compile keeps its one attention node."""
    *shapes, kw = CASES[name]
    model, xs = _sdpa(**kw), _inputs(shapes)
    compiled = check_model(model, xs, sanitize=False)["compiled"]
    assert compiled.graph.ops_count() == {"attention": 1}
    decomposed = decompose_attention.run(compiled.graph)
    assert decomposed.kept == {} and "attention" not in decomposed.graph.ops_count()
    expected, arrays = _torch(model, xs), [t.numpy() for t in xs]
    assert rel_l2(run_graph(decomposed.graph, arrays)[0], expected) < FLOAT_TOL
    if name == "gqa_4q_2kv":  # the float C kernels of the pieces are tested elsewhere: one case suffices
        assert rel_l2(CompiledModel(decomposed.graph).run_c(arrays)[0], expected) < FLOAT_TOL


REFUSED = {
    "causal": (_sdpa(is_causal=True), "causal attention has no int8 form"),
    "bool_mask": (op_model(lambda self, q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask),
                           mask=torch.tensor(np.tril(np.ones((6, 6), dtype=bool)))),
                  "attention with a mask has no int8 form"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_causal_and_masked_attention_stay_float_with_their_reason(name):
    model, reason = REFUSED[name]
    xs = _inputs([(1, 2, 6, 8)] * 3)
    compiled = modelblocks.compile(model, xs, quantize="int8", calibration=_calibration(xs, 4))
    assert compiled.graph.ops_count().get("attention") == 1
    node = next(n for n in compiled.graph.nodes if n.op == "attention")
    assert compiled.quantization.float_nodes[node.name].startswith(reason)
    assert rel_l2(compiled.run_c([t.numpy() for t in xs])[0], _torch(model, xs)) < FLOAT_TOL


class _SelfAttention(torch.nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = _SelfAttention()

    def forward(self, x):
        return x + self.attn(x)


def test_decomposed_nodes_keep_the_attention_name_and_scope():
    x = torch.randn(1, 5, 16)
    compiled = modelblocks.compile(_Block().eval(), (x,), quantize="int8", calibration=_calibration((x,), 8))
    assert compiled.quantization.float_nodes == {}
    float_graph = compiled.quantization.float_graph
    attention = next(n for n in float_graph.nodes if n.op == "matmul" and n.name.endswith("attention"))
    parts = [n for n in compiled.graph.nodes if n.name.startswith(attention.name)]
    scales = ("q_mul", "q_lut")  # a q_lut once the scores have 256 elements or more
    assert [n.op for n in parts] in (["permute", "q_matmul", s, "q_softmax", "q_matmul"] for s in scales), parts
    assert {n.scope for n in parts} == {"attn"} and all(n.source for n in parts)


def test_keep_float_keeps_the_fused_attention():
    x = torch.randn(1, 5, 16)
    compiled = modelblocks.compile(_Block().eval(), (x,), quantize="int8", calibration=_calibration((x,), 8),
                                   keep_float=["attn"])
    ops = compiled.graph.ops_count()
    assert ops.get("attention") == 1 and "matmul" not in ops and "softmax" not in ops, ops
    node = next(n for n in compiled.graph.nodes if n.op == "attention")
    assert compiled.quantization.float_nodes[node.name] == "kept float by --keep-float"


def test_tiny_vit_quantizes_fully_to_int8_bit_exact():
    model, (x,) = tiny_vit.build()
    calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(3))
    compiled = modelblocks.compile(model, (x,), quantize="int8", calibration=calib)
    assert compiled.quantization.float_nodes == {}
    movement = {"reshape", "permute", "select", "concat"}
    assert {n.op for n in compiled.graph.nodes if not n.op.startswith("q_")} == movement | {"quantize", "dequantize"}
    ops = compiled.graph.ops_count()
    assert ops["quantize"] == 1 and ops["dequantize"] == 1  # the image in, the logits out
    assert output_checks(compiled.graph) == [EXACT]
    np.testing.assert_array_equal(compiled.run_c([x.numpy()])[0], compiled.run_reference([x.numpy()])[0])
