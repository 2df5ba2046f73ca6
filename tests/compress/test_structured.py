"""Structured pruning: the channel groups found on the IR, that removing channels which carry
nothing (dead or constant) leaves the model's outputs unchanged (the surgery is consistent:
producer rows, BatchNorm, flatten blocks, consumer columns and the bias correction), the
least-squares refit, the pair refactoring, and C that matches the pruned models."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.compress.structured import channel_groups, prune_channels, refactor_pair
from modelblocks.errors import InputError
from modelblocks.metrics import rel_l2
from modelblocks.models.tiny_vit import TinyViT


class _MLP(nn.Module):
    def __init__(self, hidden=(48, 24), act=nn.ReLU):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, hidden[0]), act(), nn.Linear(hidden[0], hidden[1]), act(),
                                 nn.Linear(hidden[1], 5))

    def forward(self, x):
        return self.net(x)


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
                                      nn.Conv2d(12, 16, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 3 * 3, 4)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def _outputs(model, x):
    with torch.no_grad():
        return model(x).numpy()


def test_channel_groups_follow_channels_to_their_consumers():
    cnn = _CNN().eval()
    groups = channel_groups(cnn, torch.zeros(1, 3, 8, 8))
    assert groups["features.0"].followers == ["features.1"]
    assert groups["features.0"].consumers == [("features.3", 1)]
    assert groups["features.3"].consumers == [("head", 9)]  # 3x3 positions per channel after flatten
    assert groups["features.3"].path_ops == ["clamp", "max_pool", "reshape"]
    assert "model output" in groups["head"].reason
    vit = TinyViT(image_size=16, patch=8, dim=32, depth=1, heads=2).eval()
    groups = channel_groups(vit, torch.zeros(1, 3, 16, 16))
    assert groups["blocks.0.mlp.0"].consumers == [("blocks.0.mlp.2", 1)] and groups["blocks.0.mlp.0"].prunable
    assert "split or moved by reshape" in groups["blocks.0.attn.qkv"].reason
    assert "meet another tensor in add" in groups["blocks.0.mlp.2"].reason  # the residual


def _kill(linear_or_conv, channels, bias):
    with torch.no_grad():
        linear_or_conv.weight[channels] = 0.0
        linear_or_conv.bias[channels] = bias


def test_pruning_dead_neurons_is_exact():
    torch.manual_seed(1)
    model = _MLP().eval()
    dead = [3, 7, 8, 20, 41]
    _kill(model.net[0], dead, -1.0)  # ReLU(-1) = 0: these neurons carry nothing
    x = torch.randn(64, 16)
    pruned = prune_channels(model, torch.zeros(1, 16), keep={"net.0": 48 - len(dead)}).model
    assert pruned.net[0].out_features == 43 and pruned.net[2].in_features == 43
    assert rel_l2(_outputs(pruned, x), _outputs(model, x)) < 1e-6


@pytest.mark.parametrize("act", [nn.ReLU, nn.Sigmoid, nn.GELU])
def test_constant_neurons_are_folded_into_the_consumer_bias(act):
    """Neurons with zero weights output act(bias), a constant: with data they have no spread, go
    first, and their constant is folded into the next layer's bias, so the outputs stay the same."""
    torch.manual_seed(2)
    model = _MLP(act=act).eval()
    _kill(model.net[0], [0, 5, 9, 30], 0.7)
    x = torch.randn(200, 16)
    pruned = prune_channels(model, torch.zeros(1, 16), keep={"net.0": 44}, data=x, refit=False).model
    assert rel_l2(_outputs(pruned, x), _outputs(model, x)) < 1e-6


def test_cnn_channels_through_batchnorm_and_flatten_are_exact():
    torch.manual_seed(3)
    model = _CNN().eval()
    with torch.no_grad():
        model.features[1].running_mean.uniform_(-0.3, 0.3)
        model.features[1].running_var.uniform_(0.5, 2.0)
        model.features[1].bias[[2, 6]] = -5.0  # after BN and ReLU these channels are 0 (weights zeroed)
    _kill(model.features[0], [2, 6], 0.0)
    _kill(model.features[3], [1, 4, 11], -1.0)
    x = torch.randn(8, 3, 8, 8)
    pruned = prune_channels(model, torch.zeros(1, 3, 8, 8), keep={"features.0": 10, "features.3": 13}).model
    assert pruned.features[1].num_features == 10 and pruned.features[3].in_channels == 10
    assert pruned.head.in_features == 13 * 9
    assert rel_l2(_outputs(pruned, x), _outputs(model, x)) < 1e-6


def test_refit_is_the_least_squares_optimum():
    torch.manual_seed(4)
    model = _MLP().eval()
    x = torch.randn(400, 16)
    plain = prune_channels(model, torch.zeros(1, 16), keep={"net.2": 12}, data=x, refit=False).model
    refit = prune_channels(model, torch.zeros(1, 16), keep={"net.2": 12}, data=x, refit=True).model
    # the consumer's output (before the head) is what the refit fits: compare there
    hidden = model.net[:4](x).detach()

    def head_in(m):
        return m.net[:4](x).detach()
    target = model.net[4](hidden).detach().numpy()
    err_plain = np.linalg.norm(plain.net[4](head_in(plain)).detach().numpy() - target)
    err_refit = np.linalg.norm(refit.net[4](head_in(refit)).detach().numpy() - target)
    assert err_refit < err_plain
    # optimality: the residual is orthogonal to the kept inputs (normal equations), to round-off
    kept_in = torch.cat([head_in(refit), torch.ones(len(x), 1)], 1).double().numpy()
    resid = refit.net[4](head_in(refit)).detach().double().numpy() - target
    assert np.abs(kept_in.T @ resid).max() < 1e-3 * np.abs(kept_in).max() * np.abs(target).max() * len(x) ** 0.5


def test_linear_pair_refactors_exactly_at_full_width():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(20, 64), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    x = torch.randn(32, 20)
    full = refactor_pair(model, torch.zeros(1, 20), "0", "1", 12)
    assert full.model[0].out_features == 12
    assert rel_l2(_outputs(full.model, x), _outputs(model, x)) < 1e-6
    w = (model[1].weight @ model[0].weight).detach().double().numpy()
    s = np.linalg.svd(w, compute_uv=False)
    narrow = refactor_pair(model, torch.zeros(1, 20), "0", "1", 4).model
    with torch.no_grad():
        got = narrow[1](narrow[0](x.double().float())).double().numpy()
        want = model[1](model[0](x)).double().numpy()
    # the error of W2 W1 at width 4 is at most s_5 per unit input
    assert np.all(np.linalg.norm(got - want, axis=1) <= s[4] * np.linalg.norm(x.numpy(), axis=1) * (1 + 1e-4))


def test_pair_with_activation_narrows_the_hidden_width():
    torch.manual_seed(6)
    model = _MLP().eval()
    x = torch.randn(300, 16)
    result = refactor_pair(model, torch.zeros(1, 16), "net.0", "net.2", 30, data=x)
    assert result.model.net[0].out_features == 30 and result.model.net[2].in_features == 30
    assert "least-squares" in result.changes[0].detail
    with pytest.raises(InputError, match="net.2 -> net.0 is not a pair: net.2.s outputs are read by net.4"):
        refactor_pair(model, torch.zeros(1, 16), "net.2", "net.0", 8)


def test_pruned_models_compile_to_matching_c():
    torch.manual_seed(7)
    for model, shape in ((_MLP().eval(), (1, 16)), (_CNN().eval(), (1, 3, 8, 8))):
        data = torch.randn(64, *shape[1:])
        pruned = prune_channels(model, torch.zeros(shape), amount=0.4, data=data).model
        compiled = modelblocks.compile(pruned, (torch.zeros(shape),))
        assert compiled.report["macs"] < modelblocks.compile(model, (torch.zeros(shape),)).report["macs"]
        for i in range(3):
            assert rel_l2(compiled.run_c([data[i:i + 1].numpy()])[0], _outputs(pruned, data[i:i + 1])) < 1e-5


def test_errors_name_the_cause():
    model = _MLP().eval()
    with pytest.raises(InputError, match="exactly one"):
        prune_channels(model, torch.zeros(1, 16))
    with pytest.raises(InputError, match="cannot keep 99 of the 48"):
        prune_channels(model, torch.zeros(1, 16), keep={"net.0": 99})
    with pytest.raises(InputError, match="matches no Linear or conv layer"):
        prune_channels(model, torch.zeros(1, 16), keep={"head": 3})
