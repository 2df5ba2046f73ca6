"""Per-op tests of elementwise unary and binary ops against torch, over several shapes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modelblocks

from helpers import check_model, op_model

torch.manual_seed(0)

UNARY = {
    "relu": lambda x: torch.relu(x),
    "relu6": lambda x: F.relu6(x),
    "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.7),
    "clamp": lambda x: torch.clamp(x, min=-0.3, max=0.4),
    "clamp_min": lambda x: torch.clamp(x, min=0.1),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "elu": lambda x: F.elu(x, alpha=0.7),
    "selu": F.selu,
    "softplus": lambda x: F.softplus(x, beta=2.0, threshold=5.0),
    "mish": F.mish,
    "exp": torch.exp,
    "log": lambda x: torch.log(x.abs() + 0.1),
    "sqrt": lambda x: torch.sqrt(x.abs()),
    "rsqrt": lambda x: torch.rsqrt(x.abs() + 0.5),
    "reciprocal": lambda x: torch.reciprocal(x.abs() + 0.5),
    "abs": torch.abs,
    "neg": torch.neg,
    "erf": torch.erf,
    "sin": torch.sin,
    "cos": torch.cos,
    "square": lambda x: x**2,
    "pow_1_5": lambda x: x.abs() ** 1.5,
}


@pytest.mark.parametrize("shape", [(7,), (2, 3, 5)], ids=["1d", "3d"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, shape):
    x = torch.randn(shape) * 3
    check_model(op_model(UNARY[name]), x, sanitize=(shape == (7,)))


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 0.5),
    "pow": lambda a, b: a.abs() ** b,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "add_alpha": lambda a, b: torch.add(a, b, alpha=0.5),
    "rsub": lambda a, b: torch.rsub(a, b, alpha=2.0),
}

SHAPES = {
    "same": ((2, 3, 4), (2, 3, 4)),
    "row": ((2, 3, 4), (4,)),
    "channel": ((2, 3, 4, 5), (1, 3, 1, 1)),
    "outer": ((3, 1), (1, 4)),
    "scalar_tensor": ((2, 5), ()),
}


@pytest.mark.parametrize("shapes", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, shapes):
    a, b = torch.randn(shapes[0]), torch.randn(shapes[1])
    check_model(op_model(BINARY[name]), (a, b), sanitize=(shapes == SHAPES["channel"]))


CLAMPS = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.7),
    "clamp_min": lambda x: torch.clamp(x, min=0.1),
}


@pytest.mark.parametrize("shapes", [SHAPES[k] for k in ("same", "channel", "outer")], ids=["same", "channel", "outer"])
@pytest.mark.parametrize("clamp", sorted(CLAMPS))
@pytest.mark.parametrize("name", ["add", "sub"])
def test_add_sub_absorb_a_following_clamp(name, clamp, shapes):
    """add and sub take a fused clamp (a residual ReLU): one node, its act_min / act_max, the C's
    mb_add_clamp_f32 / mb_sub_clamp_f32 within the float tolerance of PyTorch."""
    a, b = torch.randn(shapes[0]) * 2, torch.randn(shapes[1])
    res = check_model(op_model(lambda x, y: CLAMPS[clamp](BINARY[name](x, y))), (a, b), sanitize=(clamp == "relu"))
    graph = res["compiled"].graph
    assert graph.ops_count() == {name: 1}
    assert graph.nodes[0].attrs["act_min"] is not None
    assert f"mb_{name}_clamp_f32(" in res["compiled"].source.files["model.c"]


def test_clamped_add_keeps_nan():
    """torch.relu(NaN) is NaN, and so is the fused clamp's result."""
    a = torch.tensor([float("nan"), -1.0, 2.0, float("inf")])
    compiled = modelblocks.compile(op_model(lambda x, y: torch.relu(x + y)), (a, torch.zeros(4)))
    arrays = [a.numpy(), np.zeros(4, np.float32)]
    for got in (compiled.run_reference(arrays)[0], compiled.run_c(arrays)[0]):
        np.testing.assert_array_equal(got, [np.nan, 0.0, 2.0, np.inf])


@pytest.mark.parametrize("name,fn", [
    ("scalar_add", lambda x: x + 1.5),
    ("scalar_rsub", lambda x: 2.0 - x),
    ("scalar_div", lambda x: x / 3.0),
    ("scalar_mul_tensor_const", None),
])
def test_binary_with_constants(name, fn):
    x = torch.randn(3, 4)
    if fn is None:
        model = op_model(lambda self, x: x * self.w + self.b, w=torch.randn(4), b=torch.randn(3, 1))
    else:
        model = op_model(fn)
    res = check_model(model, x)
    assert len(res["compiled"].graph.inputs) == 1


@pytest.mark.parametrize("name,fn,shape", [
    ("view", lambda x: x.view(2, -1) * 2, (2, 3, 4)),
    ("flatten", lambda x: torch.flatten(x, 1) + 1, (2, 3, 4)),
    ("squeeze_unsqueeze", lambda x: x.squeeze(1).unsqueeze(0) - 1, (2, 1, 4)),
    ("reshape_output", lambda x: (x + 1).reshape(4, 6), (2, 3, 4)),
])
def test_reshape_family(name, fn, shape):
    res = check_model(op_model(fn), torch.randn(shape))
    graph, plan = res["compiled"].graph, res["compiled"].source.plan
    views = [n for n in graph.nodes if n.op == "reshape"]
    assert views, "expected a reshape node"
    for node in views:  # a view shares its input's storage: no copy, no buffer of its own
        assert plan.root[node.outputs[0]] == plan.root[node.inputs[0]]
    assert "memcpy" not in res["compiled"].source.files["model.c"]


def test_input_returned_as_output_is_copied():
    res = check_model(op_model(lambda x: (x, x + 1, x.view(3, 1))), torch.randn(3))
    assert res["compiled"].source.files["model.c"].count("memcpy(") == 2
