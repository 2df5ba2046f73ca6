"""The optimised float32 kernels (conv im2col / pointwise / depthwise3x3, linear gemm4x4 / matvec,
matmul tiled4x4) against the reference C kernels they replace (rel L2 < 1e-6) and against PyTorch
(< 1e-5, through check_model, which also runs the C under ASan + UBSan). Each case is a bank of
layers on one input whose outputs are all model outputs, so every layer is compared directly; the
shapes reach every tail path (positions, channels, rows and columns not multiples of 4 or 6, an
odd number of inner steps, padding on every side, strides, dilation, groups, batch > 1, no bias,
fused ReLU / ReLU6). Every case asserts which kernel each node runs, so that a case cannot
silently test the reference kernel. The last test runs on the Cortex-M7 in QEMU, where the kernels
are inline assembly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from helpers import check_model
from modelblocks.api import rel_l2

OPT_VS_REF = 1e-6


class Bank(nn.Module):
    """Applies each layer to the same input and returns all the results."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        return tuple(layer(x) for layer in self.layers)


class Banks(nn.Module):
    """One bank per input (one model compiles and checks them all: the C compilations dominate)."""

    def __init__(self, *banks: Bank):
        super().__init__()
        self.banks = nn.ModuleList(banks)

    def forward(self, *xs):
        return tuple(y for bank, x in zip(self.banks, xs) for y in bank(x))


def _randomized(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:  # biases away from zero, so that a bias bug shows
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model.eval()


def kernels(compiled, op: str) -> list[str]:
    return [n.kernel for n in compiled.graph.nodes if n.op == op]


def check_against_reference(model: nn.Module, inputs: tuple, op: str, expected: list[str]):
    """check_model (torch, ASan/UBSan), the kernels chosen, and the optimised C against the reference C."""
    res = check_model(model, inputs, sanitize=True)
    compiled = res["compiled"]
    assert kernels(compiled, op) == expected
    reference = modelblocks.compile(model, inputs, kernels="reference")
    assert all(k == "" for k in kernels(reference, op))
    arrays = [x.numpy() for x in inputs]
    for k, (o, r) in enumerate(zip(compiled.run_c(arrays), reference.run_c(arrays))):
        assert rel_l2(o, r) < OPT_VS_REF, f"output {k}: optimised vs reference C rel L2 {rel_l2(o, r):.2e}"
    return compiled


# -- conv --------------------------------------------------------------------------------------------

CONV_BANKS = {
    # few input channels (per-channel patch copy), stride 1 / 2, dilation, 'same' with an even kernel,
    # output channels not a multiple of 4, positions spanning rows, no bias, clamps
    "few_channels": (
        lambda: Bank(nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()),
                     nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.ReLU6()),
                     nn.Conv2d(3, 5, 3, padding=2, dilation=2),
                     nn.Conv2d(3, 4, (4, 2), padding="same", dilation=(1, 3)),
                     nn.Conv2d(3, 7, (2, 5), stride=(2, 1), padding=(0, 2))),
        (2, 3, 11, 9), ["im2col"] * 5),
    # many input channels (per-tap channel loop), groups with a partial last panel per group, 1x1 with
    # stride 2, 5x5, odd number of inner steps
    "many_channels": (
        lambda: Bank(nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU()),
                     nn.Conv2d(8, 10, 3, padding=1, groups=2),
                     nn.Conv2d(8, 4, 1, stride=2, bias=False),
                     nn.Sequential(nn.Conv2d(8, 9, 5, padding=2, stride=(1, 2)), nn.Hardtanh(-0.5, 0.25)),
                     nn.Conv2d(8, 16, 3)),
        (1, 8, 10, 13), ["im2col"] * 5),
    # first layers: one input channel with a tall kernel (DS-CNN), three channels with stride 2
    "first_layers": (
        lambda: Bank(nn.Sequential(nn.Conv2d(1, 16, (10, 4), stride=2, padding=(5, 1)), nn.ReLU()),
                     nn.Sequential(nn.Conv2d(1, 6, 3, stride=2, padding=1), nn.ReLU6())),
        (1, 1, 21, 10), ["im2col"] * 2),
    "conv1d": (
        lambda: Bank(nn.Conv1d(6, 8, 5, padding=2),
                     nn.Sequential(nn.Conv1d(6, 5, 3, stride=2, bias=False), nn.ReLU()),
                     nn.Conv1d(6, 4, 3, dilation=3, padding="same")),
        (2, 6, 37), ["im2col"] * 3),
    # 1x1: positions a multiple of 4 or not, channels a multiple of 4 or not, groups, batch 2
    "pointwise": (
        lambda: Bank(nn.Sequential(nn.Conv2d(12, 10, 1), nn.ReLU6()),
                     nn.Conv2d(12, 8, 1, groups=2, bias=False),
                     nn.Conv2d(12, 16, 1),
                     nn.Conv2d(12, 7, 1)),
        (2, 12, 7, 5), ["pointwise"] * 4),
    "pointwise_whole_blocks": (
        lambda: Bank(nn.Sequential(nn.Conv2d(16, 16, 1), nn.ReLU()), nn.Conv2d(16, 6, 1, bias=False)),
        (1, 16, 4, 6), ["pointwise"] * 2),
    # depthwise 3x3: stride 1 / 2 / (1, 2), padding 0, 1, 2, output widths leaving 0..5 outputs after
    # the steps of 6, batch 2, no bias, clamps
    "depthwise": (
        lambda: Bank(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6()),
                     nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),
                     nn.Sequential(nn.Conv2d(8, 8, 3, stride=(1, 2), padding=2, groups=8), nn.ReLU()),
                     nn.Conv2d(8, 8, 3, groups=8)),
        (2, 8, 13, 11), ["depthwise3x3"] * 4),
    "depthwise_narrow": (
        lambda: Bank(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU()),
                     nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16),
                     nn.Conv2d(16, 16, 3, padding=(0, 1), groups=16)),
        (1, 16, 25, 5), ["depthwise3x3"] * 3),
    "depthwise_rem": (
        lambda: Bank(nn.Conv2d(4, 4, 3, padding=1, groups=4),
                     nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.ReLU6())),
        (1, 4, 9, 10), ["depthwise3x3"] * 2),
    "depthwise_wide": (
        lambda: Bank(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU6()),
                     nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4)),
        (1, 4, 7, 24), ["depthwise3x3"] * 2),
}


CONV_GROUPS = {
    "im2col": ["few_channels", "many_channels", "first_layers", "conv1d"],
    "pointwise": ["pointwise", "pointwise_whole_blocks"],
    "depthwise3x3": ["depthwise", "depthwise_narrow", "depthwise_rem", "depthwise_wide"],
}


@pytest.mark.parametrize("variant", sorted(CONV_GROUPS))
def test_conv_kernels(variant):
    names = CONV_GROUPS[variant]
    model = _randomized(Banks(*(CONV_BANKS[name][0]() for name in names)))
    inputs = tuple(torch.randn(CONV_BANKS[name][1]) for name in names)
    expected = [k for name in names for k in CONV_BANKS[name][2]]
    check_against_reference(model, inputs, "conv", expected)


def test_small_layers_keep_the_reference_kernel():
    compiled = modelblocks.compile(nn.Conv2d(2, 3, 3, padding=1).eval(), (torch.randn(1, 2, 4, 4),))
    assert kernels(compiled, "conv") == [""]  # 864 MACs
    compiled = modelblocks.compile(nn.Linear(30, 20).eval(), (torch.randn(1, 30),))
    assert kernels(compiled, "linear") == [""]  # 600 MACs


def test_weights_keep_their_size():
    """The panels hold exactly the weights (no padding in flash); the bias is read as it is."""
    model = nn.Sequential(nn.Conv2d(3, 10, 3), nn.Flatten(), nn.Linear(10 * 6 * 6, 7)).eval()
    compiled = modelblocks.compile(model, (torch.randn(1, 3, 8, 8),))
    assert kernels(compiled, "conv") == ["im2col"] and kernels(compiled, "linear") == ["matvec"]
    assert compiled.report["weights_bytes"] == 4 * compiled.report["params"]
    assert "panels4" in compiled.source.files["model_weights.c"]


# -- linear and matmul --------------------------------------------------------------------------------

def test_linear_kernels():
    """matvec: 1 and 3 rows, outputs leaving 0..3 after the panels of 4, inputs not a multiple of 8.
    gemm4x4: rows in tiles of 4 plus 2 more (batch dims), outputs not a multiple of 4. No bias, clamps."""
    model = Banks(Bank(nn.Sequential(nn.Linear(70, 10), nn.ReLU()), nn.Linear(70, 32, bias=False),
                       nn.Sequential(nn.Linear(70, 17), nn.ReLU6()), nn.Linear(70, 19)),
                  Bank(nn.Linear(128, 8), nn.Sequential(nn.Linear(128, 13), nn.ReLU())),
                  Bank(nn.Linear(33, 16), nn.Sequential(nn.Linear(33, 13, bias=False), nn.ReLU()),
                       nn.Sequential(nn.Linear(33, 6), nn.Hardtanh(-0.3, 0.3))))
    inputs = (torch.randn(3, 70), torch.randn(1, 128), torch.randn(2, 9, 33))
    check_against_reference(_randomized(model), inputs, "linear", ["matvec"] * 6 + ["gemm4x4"] * 3)


class Attention(nn.Module):
    def forward(self, q, k, v):
        s = torch.relu(q @ k.transpose(-1, -2))
        return s, s @ v


class Products(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.randn(9, 10))

    def forward(self, a, b):
        return a @ b, torch.addmm(self.c, a[0, 0], b[0, 0], beta=0.5, alpha=2.0), torch.baddbmm(
            self.c, a[0], b[0].expand(3, 12, 10))


class MatmulBank(nn.Module):
    """q @ k^T and attn @ v with 17 rows and columns (tails in both), a fused ReLU, 3 heads;
    broadcast batch dims; addmm / baddbmm (alpha, beta, c) through the kernel's general store."""

    def __init__(self):
        super().__init__()
        self.attention, self.products = Attention(), Products()

    def forward(self, q, k, v, a, b):
        return self.attention(q, k, v) + self.products(a, b)


def test_matmul_kernels():
    inputs = (torch.randn(3, 17, 16), torch.randn(3, 17, 16), torch.randn(3, 17, 8), torch.randn(2, 3, 9, 12),
              torch.randn(1, 3, 12, 10))
    check_against_reference(MatmulBank().eval(), inputs, "matmul", ["tiled4x4"] * 5)


def test_nan_propagates_through_fused_clamps():
    """A NaN input gives NaN outputs where the reference kernel gives them (the quick max/min clamp
    would turn them into a bound); the other outputs agree."""
    model = Bank(nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()),
                 nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU6()),
                 nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU()),
                 nn.Sequential(nn.Flatten(), nn.Linear(4 * 9 * 8, 12), nn.ReLU())).eval()
    x = torch.randn(1, 4, 9, 8)
    x[0, 1, 4, 3] = float("nan")
    opt = modelblocks.compile(model, (x,))
    ref = modelblocks.compile(model, (x,), kernels="reference")
    assert kernels(opt, "conv") == ["im2col", "depthwise3x3", "pointwise"] and kernels(opt, "linear") == ["matvec"]
    for o, r in zip(opt.run_c([x.numpy()]), ref.run_c([x.numpy()])):
        assert np.isnan(r).any()
        np.testing.assert_array_equal(np.isnan(o), np.isnan(r))
        np.testing.assert_allclose(o[~np.isnan(o)], r[~np.isnan(r)], rtol=1e-5, atol=1e-6)


# -- Cortex-M7 ------------------------------------------------------------------------------------------

def test_cortex_m7_instructions_per_mac_and_host_bits():
    """In QEMU (exact instruction counts): each optimised layer executes at most a fifth of the
    instructions per MAC of its reference kernel, under 1.8 on the GEMM layers, and the M7 computes
    what the host C computes (the same fmaf sums: the assembly and the portable C agree)."""
    from modelblocks.targets.qemu import have_toolchain

    if not have_toolchain():
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm missing")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),           # im2col
                          nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6(),  # depthwise3x3
                          nn.Conv2d(16, 16, 1), nn.ReLU(),                     # pointwise
                          nn.Flatten(), nn.Linear(16 * 10 * 10, 32), nn.ReLU(),  # matvec
                          nn.Linear(32, 10))
    model = _randomized(model)
    x = torch.randn(1, 8, 10, 10)
    per_mac = {}
    for mode in ("reference", "optimized"):
        compiled = modelblocks.compile(model, (x,), kernels=mode)
        sim = compiled.simulate([x.numpy()], target="cortex-m7")
        macs = {layer["index"]: layer["macs"] for layer in compiled.report["layers"]}
        per_mac[mode] = [(compiled.graph.nodes[c.index].kernel, c.instructions / macs[c.index])
                         for c in sim.layers if macs.get(c.index)]
        host = compiled.run_c([x.numpy()])
        for m7, h in zip(sim.outputs[0], host):
            assert rel_l2(m7, h) < 1e-6
    assert [k for k, _ in per_mac["optimized"]] == ["im2col", "depthwise3x3", "pointwise", "matvec", ""]
    for (kernel, o), (_, r) in zip(per_mac["optimized"], per_mac["reference"]):
        if kernel:
            assert o < r / 5, (kernel, o, r)
    opt = dict(per_mac["optimized"])
    assert opt["im2col"] < 1.8 and opt["pointwise"] < 1.8 and opt["matvec"] < 1.8
