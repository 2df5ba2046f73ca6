"""Each pass: op counts before and after, and unchanged outputs (NumPy interpreter), plus the
cases where a pass must leave the graph alone."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import apply_pass, capture, check_model, op_model
from modelblocks.ir import DType, Graph, Node, Tensor, verify
from modelblocks.passes import PIPELINE, run_passes


apply = apply_pass


class DropMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.drop, self.fc2 = nn.Linear(6, 8), nn.Dropout(0.3), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.fc1(x)))).clone()


def test_remove_identity():
    x = torch.randn(2, 6)
    g = capture(DropMLP(), x)
    assert g.ops_count().get("dropout", 0) + g.ops_count().get("identity", 0) == 2
    g2 = apply("remove_identity", g, (x,))
    assert "dropout" not in g2.ops_count() and "identity" not in g2.ops_count()
    assert g2.ops_count()["linear"] == 2


def test_fuse_activation_counts_and_limits():
    x = torch.randn(2, 6)
    g = apply("remove_identity", capture(DropMLP(), x), (x,))
    assert g.ops_count()["clamp"] == 1
    fused = apply("fuse_activation", g, (x,))
    assert "clamp" not in fused.ops_count()
    assert fused.nodes[0].attrs["act_min"] == 0.0

    # the linear's output is also read elsewhere: the ReLU must stay separate
    def two_readers(self, x):
        h = nn.functional.linear(x, self.w)
        return torch.relu(h), h * 2

    two_users = capture(op_model(two_readers, w=torch.randn(4, 6)), x)
    kept = apply("fuse_activation", two_users, (x,))
    assert kept.ops_count().get("clamp", 0) == two_users.ops_count().get("clamp", 0) == 1


def test_relu6_then_relu_fuse_into_one_clamp():
    model = op_model(lambda self, x: torch.relu(nn.functional.relu6(nn.functional.linear(x, self.w))), w=torch.randn(5, 6))
    res = check_model(model, torch.randn(3, 6) * 4, sanitize=False)
    g = res["compiled"].graph
    assert g.ops_count() == {"linear": 1}
    assert (g.nodes[0].attrs["act_min"], g.nodes[0].attrs["act_max"]) == (0.0, 6.0)


class LinearBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.bn, self.out = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.fc(x))))


def test_fold_batchnorm_into_linear():
    x = torch.randn(4, 6)
    g = capture(LinearBN(), x)
    assert g.ops_count()["batch_norm"] == 1
    folded = apply("fold_batchnorm", g, (x,))
    assert "batch_norm" not in folded.ops_count() and folded.ops_count()["linear"] == 2
    check_model(LinearBN(), x)


def test_batchnorm_after_relu_is_not_folded():
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.BatchNorm1d(8)).eval()
    with torch.no_grad():
        model[2].running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 6)
    res = check_model(model, x, sanitize=False)
    assert res["compiled"].graph.ops_count() == {"linear": 1, "batch_norm": 1}


def test_fold_constants_and_dead_code():
    g = Graph(name="g")
    g.add_tensor(Tensor("x", (3,), DType.float32))
    g.inputs.append("x")
    a = g.add_constant("a", np.array([1.0, 2.0, 3.0], dtype=np.float32)).name
    b = g.add_constant("b", np.array([0.5, 0.5, 0.5], dtype=np.float32)).name
    for name in ("ab", "y", "unused"):
        g.add_tensor(Tensor(name, (3,), DType.float32))
    g.nodes += [Node("n_ab", "mul", (a, b), ("ab",)), Node("n_y", "add", ("x", "ab"), ("y",)),
                Node("n_unused", "sigmoid", ("x",), ("unused",))]
    g.outputs.append("y")
    verify(g)
    x = torch.tensor([1.0, -1.0, 2.0])
    folded = apply("fold_constants", g, (x,))
    assert folded.ops_count() == {"add": 1, "sigmoid": 1}
    np.testing.assert_array_equal(folded.tensors["ab"].data, np.array([0.5, 1.0, 1.5], dtype=np.float32))
    clean = apply("dead_code", folded, (x,))
    assert clean.ops_count() == {"add": 1}
    assert set(clean.tensors) == {"x", "ab", "y"}


def test_pipeline_verifies_after_every_pass():
    x = torch.randn(2, 6)
    g = run_passes(capture(DropMLP(), x))
    assert g.ops_count() == {"linear": 2}
    assert PIPELINE[-2:] == ("dead_code", "schedule")  # the execution order is chosen last


def test_verifier_error_names_the_pass(monkeypatch):
    import modelblocks.passes as passes
    from modelblocks.errors import GraphError

    def broken(graph):
        out = graph.copy()
        out.nodes = out.nodes[::-1]
        return out

    monkeypatch.setattr(passes, "get_pass", lambda name: broken)
    with pytest.raises(GraphError, match="after pass 'broken_pass'"):
        run_passes(capture(DropMLP(), torch.randn(2, 6)), ["broken_pass"])
