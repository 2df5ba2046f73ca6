"""Low-rank factorization: the SVD identity at full rank, the Eckart-Young error at lower ranks,
the rank rules (energy, budget, break-even), and that factored models compile to C that matches
the factored PyTorch model."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import modelblocks
from modelblocks.compress import low_rank
from modelblocks.compress.lowrank import LowRank, energy_rank, factored_layer, factorize, spectrum
from modelblocks.errors import InputError
from modelblocks.metrics import rel_l2


def _matrix(seed: int, out: int, inp: int, rank: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if rank is None:
        return rng.standard_normal((out, inp))
    return rng.standard_normal((out, rank)) @ rng.standard_normal((rank, inp))


@settings(max_examples=40, deadline=None)
@given(out=st.integers(1, 40), inp=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_full_rank_factorization_reproduces_the_matrix(out, inp, seed):
    w = _matrix(seed, out, inp)
    down, up = factorize(w, min(out, inp))
    assert down.shape == (min(out, inp), inp) and up.shape == (out, min(out, inp))
    assert np.linalg.norm(up @ down - w) <= 1e-12 * max(np.linalg.norm(w), 1.0) * 10


@settings(max_examples=40, deadline=None)
@given(out=st.integers(2, 40), inp=st.integers(2, 40), seed=st.integers(0, 2**31), frac=st.floats(0.0, 0.99))
def test_truncated_error_is_the_next_singular_value(out, inp, seed, frac):
    """Eckart-Young: ||W - W_d||_2 = s_{d+1}, ||W - W_d||_F^2 = sum_{i>d} s_i^2, and for every x
    ||Wx - W_d x|| <= s_{d+1} ||x||."""
    w = _matrix(seed, out, inp)
    s = np.linalg.svd(w, compute_uv=False)
    d = 1 + int(frac * (len(s) - 1))
    down, up = factorize(w, d)
    err = w - up @ down
    tail = s[d] if d < len(s) else 0.0
    assert np.linalg.norm(err, 2) == pytest.approx(tail, rel=1e-9, abs=1e-9)
    assert np.linalg.norm(err) ** 2 == pytest.approx(float((s[d:] ** 2).sum()), rel=1e-9, abs=1e-9)
    x = np.random.default_rng(seed + 1).standard_normal((inp, 16))
    assert np.all(np.linalg.norm(err @ x, axis=0) <= tail * np.linalg.norm(x, axis=0) * (1 + 1e-9) + 1e-12)
    # the two factors share the singular values evenly
    assert np.allclose(np.linalg.norm(up, axis=0), np.linalg.norm(down, axis=1))


def test_exact_rank_is_recovered_exactly():
    w = _matrix(3, 48, 32, rank=5)
    assert energy_rank(np.linalg.svd(w, compute_uv=False), 1.0) == 5
    down, up = factorize(w, 5)
    assert np.linalg.norm(up @ down - w) / np.linalg.norm(w) < 1e-12


@pytest.mark.parametrize("layer", [
    nn.Linear(24, 40),
    nn.Conv2d(6, 20, 3, stride=2, padding=1, dilation=1),
    nn.Conv2d(6, 20, 3, stride=1, padding=2, dilation=2, bias=False),
    nn.Conv2d(8, 16, 1),
    nn.Conv1d(5, 12, 5, stride=2, padding=2),
])
def test_factored_layer_at_full_rank_computes_the_same(layer):
    layer = layer.double().eval()
    d = min(layer.weight.shape[0], layer.weight[0].numel())
    factored = factored_layer(layer, d)
    x = torch.randn((3, 24) if isinstance(layer, nn.Linear) else
                    ((2, layer.in_channels, 11, 9) if isinstance(layer, nn.Conv2d) else (2, layer.in_channels, 17)),
                    dtype=torch.float64)
    with torch.no_grad():
        assert rel_l2(factored(x).numpy(), layer(x).numpy()) < 1e-12


def test_factored_conv_error_follows_the_bound():
    conv = nn.Conv2d(8, 32, 3, padding=1).double().eval()
    spec = spectrum("conv", conv)
    for d in (2, 5, 8):
        fac = factored_layer(conv, d)
        # per output pixel, the conv is W [32, 72] applied to a 72-long patch: the bound holds per patch
        x = torch.randn(1, 8, 6, 6, dtype=torch.float64)
        with torch.no_grad():
            err = (fac(x) - conv(x)).numpy()[0].reshape(32, -1)
        patches = torch.nn.functional.unfold(x, 3, padding=1).numpy()[0]
        bound = spec.singular_values[d] * np.linalg.norm(patches, axis=0)
        assert np.all(np.linalg.norm(err, axis=0) <= bound * (1 + 1e-9))


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, x):
        return self.net(x)


def test_energy_rule_takes_the_smallest_rank_that_keeps_the_energy():
    model = _MLP().eval()
    result = low_rank(model, energy=0.7)
    for path in ("net.0", "net.2"):
        s = spectrum(path, model.get_submodule(path)).singular_values
        kept = np.cumsum(s ** 2) / (s ** 2).sum()
        d = result.model.get_submodule(path).rank
        assert kept[d - 1] >= 0.7 and (d == 1 or kept[d - 2] < 0.7)
    # the 4x64 head cannot save anything at any rank >= 4*64/68: it is kept, and says why
    head = next(c for c in result.changes if c.path == "net.4")
    assert head.kind == "kept" and "too small" in head.detail
    assert isinstance(model.net[0], nn.Linear)  # the user's model is untouched


def test_budget_picks_the_highest_energy_level_that_fits():
    model = _MLP().eval()
    layers = ["net.0", "net.2"]
    spectra = [spectrum(p, model.get_submodule(p)) for p in layers]
    dense = sum(s.dense_weights() for s in spectra)
    result = low_rank(model, budget=0.5, layers=layers)
    ranks = [result.model.get_submodule(p).rank for p in layers]
    weights = sum(m.weight.numel() for p in layers for m in result.model.get_submodule(p).modules()
                  if isinstance(m, nn.Linear))
    assert weights == sum(s.factored_weights(d) for s, d in zip(spectra, ranks)) <= 0.5 * dense
    # brute force over every energy level at which some layer's rank changes: the highest that fits
    levels = sorted({s.energy_kept(d) for s in spectra for d in range(1, s.max_rank + 1)})
    fitting = [lv for lv in levels if sum(s.weights_after(s.energy_rank(lv)) for s in spectra) <= 0.5 * dense]
    assert ranks == [s.energy_rank(max(fitting)) for s in spectra]


def test_rank_per_layer_and_break_even():
    model = _MLP().eval()
    result = low_rank(model, rank={"net.0": 8, "net.2": 40}, min_features=2)
    assert result.model.get_submodule("net.0").rank == 8
    kept = {c.path: c for c in result.changes if c.kind == "kept"}
    assert "net.2" in kept and "saves nothing" in kept["net.2"].detail  # 40 > 64*64/128 = 32
    assert "no pattern" in kept["net.4"].detail


def test_bad_options_name_the_cause():
    model = _MLP().eval()
    with pytest.raises(InputError, match="exactly one"):
        low_rank(model, rank=4, energy=0.9)
    with pytest.raises(InputError, match="matches no Linear.*net.0"):
        low_rank(model, rank=4, layers=["blocks.*"])
    with pytest.raises(InputError, match="energy must be in"):
        low_rank(model, energy=1.5)
    with pytest.raises(InputError, match="below what rank 1"):
        low_rank(model, budget=10)


def test_factored_models_compile_to_c_that_matches_them():
    torch.manual_seed(0)
    mlp = _MLP().eval()
    cnn = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 5)).eval()
    with torch.no_grad():
        cnn[1].running_mean.uniform_(-0.5, 0.5)
        cnn[1].running_var.uniform_(0.5, 2.0)
    for model, x in ((mlp, torch.randn(1, 32)), (cnn, torch.randn(1, 3, 10, 10))):
        small = low_rank(model, energy=0.8, min_features=3).model
        assert any(isinstance(m, LowRank) for m in small.modules())
        compiled = modelblocks.compile(small, (x,))
        for _ in range(3):
            xi = torch.randn_like(x)
            with torch.no_grad():
                ref = small(xi).numpy()
            assert rel_l2(compiled.run_c([xi.numpy()])[0], ref) < 1e-5
        q = modelblocks.compile(small, (x,), quantize="int8", calibration=torch.randn(32, *x.shape[1:]).numpy())
        xi = torch.randn_like(x).numpy()
        np.testing.assert_array_equal(q.run_c([xi])[0], q.run_reference([xi])[0])


def test_data_aware_factorization_is_optimal_on_the_data():
    """With inputs X, the data-aware factors minimise ||(W - W_d) X||_F: the error equals the tail
    of the singular values of W R^T (R^T R = X X^T / n), and is never above plain truncation's."""
    rng = np.random.default_rng(8)
    w = rng.standard_normal((24, 32))
    x = rng.standard_normal((32, 500)) * np.linspace(0.05, 3.0, 32)[:, None]  # very unequal input scales
    moment = x @ x.T / x.shape[1]
    from modelblocks.compress.lowrank import input_root

    s = np.linalg.svd(w @ input_root(moment).T, compute_uv=False)
    for d in (2, 6, 12):
        down, up = factorize(w, d, moment)
        err = np.linalg.norm((w - up @ down) @ x) ** 2 / x.shape[1]
        assert err == pytest.approx(float((s[d:] ** 2).sum()), rel=1e-5)
        plain_down, plain_up = factorize(w, d)
        assert err <= np.linalg.norm((w - plain_up @ plain_down) @ x) ** 2 / x.shape[1]
    down, up = factorize(w, 24, moment)
    assert np.linalg.norm(up @ down - w) / np.linalg.norm(w) < 1e-9


def test_data_aware_low_rank_on_a_conv_collects_patches():
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(4, 24, 3, padding=1, stride=2), nn.ReLU(), nn.Conv1d(1, 1, 1)).eval()
    conv = model[0].double()
    x = torch.randn(50, 4, 9, 9, dtype=torch.float64)
    from modelblocks.compress.lowrank import layer_inputs

    moment = layer_inputs(nn.Sequential(conv), ["0"], x)["0"]
    patches = torch.nn.functional.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 36).numpy()
    np.testing.assert_allclose(moment, patches.T @ patches / len(patches), rtol=1e-10)
    fac = factored_layer(conv, 8, moment)
    with torch.no_grad():
        err = ((fac(x) - conv(x)) ** 2).sum().item() / len(patches)
    s = spectrum("0", conv, moment).singular_values
    assert err == pytest.approx(float((s[8:] ** 2).sum()), rel=1e-5)
