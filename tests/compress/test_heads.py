"""Attention-head pruning: the heads found on the IR (fused qkv, separate q/k/v, hand-written or
scaled_dot_product_attention), that the pruned model equals the original with the removed heads'
output-projection columns zeroed, the bias folding of a constant head, the errors for attention code
that cannot shrink, and C that matches the pruned model."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.compress.heads import head_groups, prune_heads
from modelblocks.errors import InputError
from modelblocks.metrics import rel_l2
from modelblocks.models.tiny_vit import TinyViT


class SplitAttention(nn.Module):
    """Separate q/k/v projections, the head count in `num_heads`, and an option to shape the output
    from the model width (which head pruning cannot change) or to mix the heads."""

    def __init__(self, dim=24, num_heads=4, width_reshape=False, mix=False):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.width_reshape, self.mix = width_reshape, mix

    def forward(self, x):
        b, n, c = x.shape

        def heads(t):
            return t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = q @ k.transpose(-2, -1) / self.head_dim ** 0.5
        attn = scores.softmax(dim=1 if self.mix else -1)  # dim=1 runs across the heads
        y = (attn @ v).transpose(1, 2)
        return self.out(y.reshape(b, n, c if self.width_reshape else self.num_heads * self.head_dim))


class Wrapped(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.attn = SplitAttention(**kw)
        self.head = nn.Linear(24, 3)

    def forward(self, x):
        return self.head(x + self.attn(x))


def _vit():
    torch.manual_seed(0)
    return TinyViT(image_size=16, patch=4, dim=32, depth=2, heads=4).eval()  # block 1 uses SDPA


def test_heads_are_found_for_fused_and_separate_projections():
    groups, refused = head_groups(_vit(), torch.zeros(1, 3, 16, 16))
    assert [(g.module, g.producers, g.consumer, g.heads, g.head_dim, g.segments) for g in groups] == [
        (f"blocks.{i}.attn", [f"blocks.{i}.attn.qkv"], f"blocks.{i}.attn.proj", 4, 8, {f"blocks.{i}.attn.qkv": 3})
        for i in range(2)]
    groups, _ = head_groups(Wrapped().eval(), torch.zeros(1, 5, 24))
    assert len(groups) == 1 and groups[0].producers == ["attn.q", "attn.k", "attn.v"]
    assert groups[0].segments == {"attn.q": 1, "attn.k": 1, "attn.v": 1} and groups[0].consumer == "attn.out"
    _, refused = head_groups(Wrapped(mix=True).eval(), torch.zeros(1, 5, 24))
    assert "runs across the heads" in refused["attn.q"]


def _kept(change) -> list[int]:
    return [int(h) for h in change.after.split("kept ")[1].rstrip(")").split(", ")]


def _columns(kept, dh) -> list[int]:
    return [c for h in range(4) if h not in kept for c in range(h * dh, (h + 1) * dh)]


@pytest.mark.parametrize("which", ["vit", "split"])
def test_pruned_heads_equal_the_original_with_their_outputs_zeroed(which):
    torch.manual_seed(1)
    if which == "vit":
        model, x0, x = _vit(), torch.zeros(1, 3, 16, 16), torch.randn(4, 3, 16, 16)
        keep, consumer, dh = {"blocks.*": 2}, "blocks.0.attn.proj", 8
    else:
        model, x0, x = Wrapped().eval(), torch.zeros(1, 5, 24), torch.randn(4, 5, 24)
        keep, consumer, dh = {"attn": 1}, "attn.out", 6
    result = prune_heads(model, x0, keep=keep)
    changes = [c for c in result.changes if c.kind == "heads"]
    reference = _vit() if which == "vit" else Wrapped().eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():  # every pruned attention: its removed heads' projection columns zeroed
        for change in changes:
            projection = reference.get_submodule(consumer.replace("blocks.0", change.path.rsplit(".", 1)[0]))
            projection.weight[:, _columns(_kept(change), dh)] = 0.0
        want = reference(x).numpy()
    if which == "vit":
        assert len(changes) == 2
        assert result.model.blocks[0].attn.heads == 2 and result.model.blocks[0].attn.qkv.out_features == 3 * 2 * dh
    else:
        assert result.model.attn.num_heads == 1 and result.model.attn.q.out_features == dh
    with torch.no_grad():
        got = result.model(x).numpy()
    assert rel_l2(got, want) < 1e-5
    assert isinstance(model, TinyViT) or model.attn.num_heads == 4  # the original is untouched


def test_a_constant_head_is_folded_into_the_projection_bias():
    """A head whose values are constant outputs that constant (softmax weights sum to 1): with data
    it carries no spread, goes first, and its constant lands in the projection's bias: exact."""
    torch.manual_seed(2)
    model = Wrapped().eval()
    with torch.no_grad():
        model.attn.v.weight[12:18] = 0.0  # head 2's values: v = bias
    x = torch.randn(64, 5, 24)
    result = prune_heads(model, torch.zeros(1, 5, 24), keep={"attn": 3}, data=x)
    assert "kept 0, 1, 3" in result.changes[-1].after
    with torch.no_grad():
        assert rel_l2(result.model(x).numpy(), model(x).numpy()) < 1e-5


def test_attention_that_cannot_shrink_is_refused_with_the_reason():
    with pytest.raises(InputError, match=r"no longer runs.*self.heads \* self.head_dim"):
        prune_heads(Wrapped(width_reshape=True).eval(), torch.zeros(1, 5, 24), amount=0.5)
    with pytest.raises(InputError, match="matches no attention whose heads can be pruned.*runs across the heads"):
        prune_heads(Wrapped(mix=True).eval(), torch.zeros(1, 5, 24), keep={"attn": 2})
    with pytest.raises(InputError, match="exactly one"):
        prune_heads(_vit(), torch.zeros(1, 3, 16, 16))


def test_pruned_vit_compiles_to_matching_c():
    torch.manual_seed(3)
    model = _vit()
    x = torch.randn(1, 3, 16, 16)
    pruned = prune_heads(model, torch.zeros(1, 3, 16, 16), amount=0.5, data=torch.randn(16, 3, 16, 16)).model
    compiled = modelblocks.compile(pruned, (x,))
    assert compiled.report["macs"] < modelblocks.compile(model, (x,)).report["macs"]
    with torch.no_grad():
        assert rel_l2(compiled.run_c([x.numpy()])[0], pruned(x).numpy()) < 1e-5
    q = modelblocks.compile(pruned, (x,), quantize="int8", calibration=torch.randn(16, 3, 16, 16).numpy())
    np.testing.assert_array_equal(q.run_c([x.numpy()])[0], q.run_reference([x.numpy()])[0])
