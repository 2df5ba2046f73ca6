"""Unstructured magnitude pruning (exact counts, the magnitude order, ties), layer removal (the
cheapest removal is the one chosen), and distillation (deterministic, keeps pruned weights at zero)."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.compress.distill import _soft, distill
from modelblocks.compress.layers import removal_candidates, remove_layers
from modelblocks.compress.unstructured import prune_weights, sparsity_of
from modelblocks.errors import InputError
from modelblocks.metrics import rel_l2
from modelblocks.models.tiny_vit import TinyViT


def _mlp():
    return nn.Sequential(nn.Linear(16, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 6)).eval()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.9])
def test_per_layer_pruning_zeroes_the_smallest_exactly(sparsity):
    torch.manual_seed(0)
    model = _mlp()
    result = prune_weights(model, sparsity)
    for path in ("0", "2", "4"):
        before = model.get_submodule(path).weight.detach()
        after = result.model.get_submodule(path).weight.detach()
        zeroed = after == 0
        assert int(zeroed.sum()) == round(sparsity * before.numel())
        assert torch.equal(after[~zeroed], before[~zeroed])  # kept weights unchanged
        if zeroed.any() and (~zeroed).any():
            assert before[zeroed].abs().max() <= before[~zeroed].abs().min()
        assert torch.equal(result.masks[f"{path}.weight"].bool(), ~zeroed)
    assert model[0].weight.ne(0).all()  # the original is untouched


def test_global_pruning_uses_one_threshold_and_breaks_ties_exactly():
    torch.manual_seed(1)
    model = _mlp()
    with torch.no_grad():
        model[2].weight[:5] = 0.01  # 200 tied magnitudes
        model[4].weight[:2] = -0.01
    result = prune_weights(model, 0.5, scope="global")
    weights = [(model.get_submodule(p).weight.detach(), result.model.get_submodule(p).weight.detach())
               for p in ("0", "2", "4")]
    total = sum(b.numel() for b, _ in weights)
    zeroed = sum(int((a == 0).sum()) for _, a in weights)
    assert zeroed == round(0.5 * total)
    pruned_max = max(float(b[a == 0].abs().max()) for b, a in weights if (a == 0).any())
    kept_min = min(float(b[a != 0].abs().min()) for b, a in weights if (a != 0).any())
    assert pruned_max <= kept_min
    assert sparsity_of(result.model) == pytest.approx(zeroed / total)


def test_pruning_options_are_checked():
    with pytest.raises(InputError, match="sparsity must be"):
        prune_weights(_mlp(), 1.0)
    with pytest.raises(InputError, match="scope must be"):
        prune_weights(_mlp(), 0.5, scope="row")


def test_pruned_model_compiles_to_matching_c():
    torch.manual_seed(2)
    pruned = prune_weights(_mlp(), 0.8).model
    compiled = modelblocks.compile(pruned, (torch.zeros(1, 16),))
    x = torch.randn(1, 16)
    with torch.no_grad():
        assert rel_l2(compiled.run_c([x.numpy()])[0], pruned(x).numpy()) < 1e-5


class _Residual(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        with torch.no_grad():
            self.fc.weight.mul_(scale)
            self.fc.bias.mul_(scale)

    def forward(self, x):
        return x + torch.tanh(self.fc(x))


class _Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_Residual(12, s) for s in (1.0, 0.05, 0.6, 0.3)])
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def test_layer_removal_takes_the_cheapest_measured_removal():
    torch.manual_seed(3)
    model = _Stack().eval()
    x = torch.randn(100, 12)
    assert removal_candidates(model, torch.zeros(1, 12)) == [f"blocks.{i}" for i in range(4)]
    with torch.no_grad():
        ref = model(x).numpy()
    costs = {}
    for i in range(4):
        trial = _Stack().eval()
        trial.load_state_dict(model.state_dict())
        trial.blocks[i] = nn.Identity()
        with torch.no_grad():
            costs[f"blocks.{i}"] = rel_l2(trial(x).numpy(), ref)
    result = remove_layers(model, torch.zeros(1, 12), count=1, data=x)
    assert result.changes[0].path == min(costs, key=costs.get) == "blocks.1"
    assert isinstance(result.model.blocks[1], nn.Identity)
    assert float(result.changes[0].detail.split()[5]) == pytest.approx(costs["blocks.1"], abs=1e-4)
    two = remove_layers(model, torch.zeros(1, 12), count=2, data=x)
    assert [c.path for c in two.changes][0] == "blocks.1" and len(two.changes) == 2
    with pytest.raises(InputError, match="pass data="):
        remove_layers(model, torch.zeros(1, 12))
    with pytest.raises(InputError, match="only 4 layer"):
        remove_layers(model, torch.zeros(1, 12), count=5, data=x)


def test_vit_blocks_are_removal_candidates():
    vit = TinyViT(image_size=16, patch=8, dim=32, depth=2, heads=2).eval()
    assert removal_candidates(vit, torch.zeros(1, 3, 16, 16)) == ["blocks.0", "blocks.1"]


def test_soft_loss_is_zero_for_equal_outputs_and_positive_otherwise():
    a = torch.randn(8, 5)
    assert float(_soft(a, a, 4.0, "kl")) == pytest.approx(0.0, abs=1e-6)
    assert float(_soft(a, a + torch.randn(8, 5), 4.0, "kl")) > 0


def test_distillation_is_deterministic_keeps_zeros_and_recovers():
    torch.manual_seed(4)
    teacher = _mlp()
    x = torch.randn(256, 16)
    with torch.no_grad():
        y = teacher(x).argmax(-1)
    pruned = prune_weights(teacher, 0.85)
    runs = [distill(pruned, teacher, x, y, epochs=4, lr=3e-3, seed=7) for _ in range(2)]
    for (k, a), (_, b) in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().items()):
        assert torch.equal(a, b), k
    tuned = runs[0]
    for name, mask in pruned.masks.items():
        assert torch.all(tuned.model.get_parameter(name)[mask == 0] == 0)
    assert tuned.log.losses[-1] < tuned.log.losses[0]

    def agreement(m):
        with torch.no_grad():
            return float((m(x).argmax(-1) == y).float().mean())
    assert agreement(tuned.model) > agreement(pruned.model)
    with pytest.raises(InputError, match="256 samples but y_train has 3"):
        distill(pruned, teacher, x, y[:3])


def test_int8_keeps_the_bias_of_a_pruned_row_precise():
    """A row whose weights are all pruned outputs its bias. Its weight scale is its neighbours'
    median (not 1.0), so its int32 bias at s_in * s_w is as fine as theirs."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(16, 12)).eval()
    with torch.no_grad():
        model[0].weight[3] = 0.0
        model[0].bias[3] = 0.3217
    calib = torch.randn(64, 16).numpy()
    q = modelblocks.compile(model, (torch.zeros(1, 16),), quantize="int8", calibration=calib)
    node = next(n for n in q.graph.nodes if n.op == "q_linear")
    x, w, bias = (q.graph.tensors[i] for i in node.inputs[:3])
    w_scales = np.asarray(w.quant.scale)
    live = np.abs(model[0].weight.detach().numpy()).max(axis=1) / 127
    assert w_scales[3] == np.float32(np.median(np.delete(live, 3)))
    step = x.quant.scale[0] * w_scales[3]
    assert abs(bias.data[3] * step - 0.3217) <= step / 2 * 1.001
    y = q.run_c([calib[:1]])[0]
    assert y[0, 3] == q.run_reference([calib[:1]])[0][0, 3]
