"""Per-op tests of reductions against torch: sum, mean, amax/amin, max/min (global and along a
dim, with indices), var/std with any correction, argmax/argmin, over several dim sets and
shapes, keepdim True and False."""

import numpy as np
import pytest
import torch

import modelblocks
from helpers import check_model, op_model
from modelblocks.errors import UnsupportedOpError

torch.manual_seed(0)

REDUCE = {
    "mean_last": lambda x: x.mean(-1),
    "mean_keepdim": lambda x: x.mean(1, keepdim=True),
    "mean_all": lambda x: x.mean(),
    "mean_two_dims": lambda x: x.mean((0, 2)),
    "sum_dim": lambda x: x.sum(1),
    "sum_all": lambda x: x.sum(),
    "sum_neg_dims_keepdim": lambda x: x.sum((-1, -3), keepdim=True),
    "sum_empty_dim_list": lambda x: torch.sum(x, dim=[]),
    "amax": lambda x: x.amax(1),
    "amin_two_dims_keepdim": lambda x: x.amin((1, 2), keepdim=True),
    "max_all": lambda x: x.max(),
    "min_all": lambda x: x.min(),
    "max_dim_values": lambda x: x.max(dim=1).values,
    "max_dim_both": lambda x: tuple(x.max(dim=-1, keepdim=True)),
    "min_dim_both": lambda x: tuple(x.min(dim=0)),
    "var_unbiased": lambda x: x.var(1),
    "var_biased_all": lambda x: x.var(unbiased=False),
    "var_correction_2": lambda x: torch.var(x, dim=(0, 2), correction=2, keepdim=True),
    "std_dim": lambda x: x.std(-1),
    "std_correction_0": lambda x: torch.std(x, dim=1, correction=0),
    "argmax_dim": lambda x: x.argmax(1),
    "argmax_flat": lambda x: x.argmax(),
    "argmin_keepdim": lambda x: x.argmin(-1, keepdim=True),
    "argmax_flat_keepdim": lambda x: torch.argmax(x, keepdim=True),
}


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 2)], ids=["3d", "4d"])
@pytest.mark.parametrize("name", list(REDUCE))
def test_reduce(name, shape):
    x = torch.randn(shape) + 0.5  # keep means and sums away from 0, where relative error is ill-posed
    sanitize = shape == (3, 4, 5) and name in ("mean_two_dims", "sum_neg_dims_keepdim", "amin_two_dims_keepdim",
                                                 "max_dim_both", "var_correction_2", "argmax_dim")
    check_model(op_model(REDUCE[name]), x, sanitize=sanitize)


@pytest.mark.parametrize("shape,dims", [((2, 8, 5, 5), (2, 3)), ((1, 16, 7, 3), (-1, -2)), ((3, 4, 1, 1), (2, 3))],
                         ids=["2x8x5x5", "1x16x7x3_neg", "3x4x1x1"])
def test_global_average_pool(shape, dims):
    model = op_model(lambda x: x.mean(dims))
    res = check_model(model, torch.randn(shape), sanitize=shape == (2, 8, 5, 5))
    assert [n.op for n in res["compiled"].graph.nodes] == ["reduce"]


def test_global_average_pool_then_linear():
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(torch.relu(x).mean((2, 3)))

    check_model(Head().eval(), torch.randn(2, 6, 4, 4), sanitize=False)


def test_long_reduction_stays_accurate():
    check_model(op_model(lambda x: (x.mean(-1), x.sum(-1), x.var(-1))), torch.randn(2, 4096) + 3.0, sanitize=False)


def test_reductions_of_1d_and_size_one_dims():
    model = op_model(lambda x, y: (x.sum(), x.amax(0, keepdim=True), y.mean(1), y.std(0), y.argmax(1)))
    check_model(model, (torch.randn(7), torch.randn(5, 1)), sanitize=True)


def test_argmax_ties_and_nan():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0], [float("nan"), 1.0, float("nan"), 0.0], [2.0, 2.0, 2.0, 2.0]])
    model = op_model(lambda x: (x.argmax(1), x.argmin(1), torch.argmax(x)))
    compiled = modelblocks.compile(model, (torch.randn(3, 4),))
    want = [t.numpy() for t in model(x)]
    for got in (compiled.run_reference([x.numpy()]), compiled.run_c([x.numpy()])):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_max_indices_dropped_when_unused():
    res = check_model(op_model(lambda x: x.max(1)[0] * 2), torch.randn(3, 5), sanitize=False)
    assert [n.op for n in res["compiled"].graph.nodes] == ["reduce", "mul"]


def test_sum_of_int_tensor_rejected():
    with pytest.raises(UnsupportedOpError, match="float32 only"):
        modelblocks.compile(op_model(lambda x: x.sum(1)), torch.randint(0, 5, (2, 3)))


def test_mean_with_dtype_rejected():
    with pytest.raises(UnsupportedOpError, match="dtype"):
        modelblocks.compile(op_model(lambda x: x.mean(1, dtype=torch.float64)), torch.randn(2, 3))
