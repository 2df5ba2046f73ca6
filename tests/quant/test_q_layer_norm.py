"""int8 LayerNorm: bit-exact C, close to PyTorch's float LayerNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.quant import arith
from modelblocks.quant.exactness import output_checks


class Norm(nn.Module):
    def __init__(self, shape, affine=True, bias=True, eps=1e-5, scale_in=1.0, shift_in=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(shape, elementwise_affine=affine, bias=bias, eps=eps)
        self.scale_in, self.shift_in = scale_in, shift_in
        if affine:
            with torch.no_grad():
                self.norm.weight.uniform_(0.5, 1.5)
                if bias:
                    self.norm.bias.uniform_(-0.3, 0.3)

    def forward(self, x):
        return self.norm(x * self.scale_in + self.shift_in)


CASES = {
    "tokens": ((1, 5, 16), 16, {}),
    "two_dims": ((2, 3, 4, 6), (4, 6), {}),
    "no_affine": ((1, 7, 12), 12, {"affine": False}),
    "no_bias": ((1, 4, 32), 32, {"bias": False}),
    "shifted_input": ((1, 3, 24), 24, {"shift_in": 3.0, "scale_in": 0.2}),
    "large_eps": ((1, 2, 8), 8, {"eps": 0.5}),
    "wide_rows": ((1, 2, 384), 384, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_q_layer_norm_bit_exact_and_close_to_torch(name):
    shape, norm_shape, kw = CASES[name]
    torch.manual_seed(3)
    model = Norm(norm_shape, **kw).eval()
    calib = torch.randn(32, *shape[1:])
    # min/max ranges over the calibration set cover the inputs drawn from it: no clipping
    c = modelblocks.compile(model, (torch.randn(shape),), quantize="int8", calibration=calib, observer="minmax")
    assert c.graph.ops_count().get("q_layer_norm") == 1 and "layer_norm" not in c.graph.ops_count()
    assert output_checks(c.graph) == ["exact"]
    for seed in range(3):
        x = calib[seed * shape[0]:(seed + 1) * shape[0]]
        ref = c.run_reference([x.numpy()])[0]
        np.testing.assert_array_equal(c.run_c([x.numpy()])[0], ref)
        assert arith.sqnr_db(model(x).detach().numpy(), ref) > 30.0
    if name == "tokens":
        np.testing.assert_array_equal(c.run_sanitized([x.numpy()])[0], ref)


def test_q_layer_norm_reference_is_float_layer_norm_within_a_step():
    """Independent check of the integer/float32 recipe: against float64 LayerNorm of the dequantized
    input, the int8 output is within one output step plus the float32 rounding."""
    torch.manual_seed(4)
    model = Norm(40).eval()
    c = modelblocks.compile(model, (torch.randn(1, 6, 40),), quantize="int8", calibration=torch.randn(16, 6, 40))
    node = next(n for n in c.graph.nodes if n.op == "q_layer_norm")
    values = c.run_reference([torch.randn(1, 6, 40).numpy()]) and modelblocks.interpreter.run(
        c.graph, [torch.randn(1, 6, 40).numpy()], keep_all=True)
    xq, yq = values[node.inputs[0]], values[node.outputs[0]]
    sx, zx = c.graph.tensors[node.inputs[0]].quant.scale[0], c.graph.tensors[node.inputs[0]].quant.zero_point[0]
    sy, zy = c.graph.tensors[node.outputs[0]].quant.scale[0], c.graph.tensors[node.outputs[0]].quant.zero_point[0]
    xf = (xq.astype(np.float64) - zx) * sx
    w = model.norm.weight.detach().numpy().astype(np.float64)
    b = model.norm.bias.detach().numpy().astype(np.float64)
    mean = xf.mean(-1, keepdims=True)
    var = xf.var(-1, keepdims=True)
    expect = (xf - mean) / np.sqrt(var + 1e-5) * w + b
    expect_q = np.clip(np.round(expect / sy) + zy, -128, 127)
    assert np.max(np.abs(yq.astype(np.int64) - expect_q)) <= 1
