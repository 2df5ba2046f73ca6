"""int8 C on the Cortex-M7 in QEMU: the same bits as the int8 interpreter (and the host build), with
exact instruction counts, and the smaller int8 arena."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.targets.qemu import have_toolchain


@pytest.fixture(autouse=True)
def toolchain():
    if not have_toolchain():
        message = "arm-none-eabi-gcc or qemu-system-arm missing (see README)"
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)


class SmallNet(nn.Module):
    """conv (depthwise too), pools, LayerNorm, GELU, softmax, add: one of each int8 kernel family."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 16)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = self.pool(y + self.dw(y))
        t = self.norm(y.flatten(2).transpose(1, 2))
        t = nn.functional.gelu(self.fc(t)).mean(1)
        return torch.softmax(self.head(t), dim=-1)


def test_int8_on_cortex_m7_is_bit_exact_with_the_interpreter():
    torch.manual_seed(0)
    model = SmallNet().eval()
    calib = torch.randn(32, 1, 8, 8)
    c = modelblocks.compile(model, (calib[:1],), quantize="int8", calibration=calib)
    f = modelblocks.compile(model, (calib[:1],))
    assert c.quantization.float_nodes == {} or all("input is float32" in w for w in c.quantization.float_nodes.values())
    inputs = [[calib[i:i + 1].numpy()] for i in range(3)]
    sim = c.simulate(inputs, target="cortex-m7")
    for run, (x,) in enumerate(inputs):
        ref = c.run_reference([x])[0]
        np.testing.assert_array_equal(sim.outputs[run][0], ref)
        np.testing.assert_array_equal(c.run_c([x])[0], ref)
    assert sum(layer.instructions for layer in sim.layers) + sim.epilogue == sim.instructions[0]
    # the arena is a union with a double (C99 alignment), so its size rounds up to 8 bytes
    assert sim.build.sizes.arena == -(-c.source.arena_bytes // 8) * 8
    assert c.source.arena_bytes < f.source.arena_bytes
