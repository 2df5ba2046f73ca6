"""The optimised int8 depthwise kernel (ops/q_conv.py variant "depthwise", mb_q_depthwise_opt.c) against
the NumPy interpreter, bit for bit: on the host (the portable C twin of the Thumb-2, also under ASan and
UBSan) and on the Cortex-M7 in QEMU (the Thumb-2), where it must also stay fast.

The 3x3 kernels take six outputs of a row per step, then the row's other outputs (one, two to four of a
four-output step, five, or a row of six), so the cases run every output width 1..13 at both strides
across, on heights 1..6, with paddings 0, 1 and asymmetric, some clamped narrower than int8 (a clamp
pass after the steps on Armv7E-M). The other kernels (sizes, dilation, 1-D, channel multiplier 2,
stride 3 across) and the layers whose requantization does not fit the 3x3 steps (a shift outside
1..22) run the same plane one output at a time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.api import CompiledModel
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Graph, Node, Tensor
from modelblocks.ir.verify import verify
from modelblocks.ops.q_conv import _plane_scratch
from modelblocks.ops.registry import get_op
from modelblocks.passes import select_kernels
from modelblocks.quant import arith
from modelblocks.targets.qemu import have_toolchain

KERNELS = Path(modelblocks.__file__).parent / "backend" / "c" / "kernels"
NEEDS_M7 = pytest.mark.skipif(not have_toolchain() and not os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"),
                              reason="arm-none-eabi-gcc or qemu-system-arm missing")


def _layer(rng, ch, hw, kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), mult_per_ch=1,
           batch=1, reals=(1e-4, 5e-3), clamp=None, zps=None):
    """One q_conv depthwise node's inputs and attributes (random int8 weights, zero points, biases)."""
    cout = ch * mult_per_ch
    w = rng.integers(-128, 128, size=(cout, 1) + kernel, dtype=np.int8)
    bias = rng.integers(-20000, 20000, size=cout).astype(np.int32)
    mult, shift = arith.quantize_multipliers(rng.uniform(*reals, size=cout))
    in_zp, out_zp = zps if zps else (int(rng.integers(-128, 128)), int(rng.integers(-128, 128)))
    lo, hi = clamp if clamp else (-128, 127)
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": ch, "in_zp": in_zp,
             "out_zp": out_zp, "act_min": lo, "act_max": hi}
    return ("input", (batch, ch) + hw), [w, bias, mult, shift], attrs


def _graph(layers, rng):
    """One graph of independent depthwise nodes, and random int8 inputs for it."""
    g = Graph("dw")
    for k, (x, consts, attrs) in enumerate(layers):
        names = [f"x{k}"]
        g.add_tensor(Tensor(names[0], x[1], DType.int8))
        g.inputs.append(names[0])
        for j, value in enumerate(consts):
            names.append(f"c{k}_{j}")
            g.add_tensor(Tensor(names[-1], value.shape, DType.from_numpy(value.dtype), data=value))
        node = Node(f"dw{k}", "q_conv", tuple(names), (f"y{k}",), attrs)
        ins = [g.tensors[n] for n in names]
        ((shape, dtype),) = get_op("q_conv").infer(node, ins)
        g.add_tensor(Tensor(f"y{k}", shape, dtype))
        g.nodes.append(node)
        g.outputs.append(f"y{k}")
    verify(g)
    feeds = [rng.integers(-128, 128, size=g.tensors[n].shape, dtype=np.int8) for n in g.inputs]
    return select_kernels.run(g), feeds


def _tails_graph():
    """3x3 at stride 1 and 2 across: every output width 1..13 (every tail, with and without steps before
    it), heights 1..6, paddings 1, 0 and asymmetric, stride 2 or 1 down; every third layer clamped."""
    rng = np.random.default_rng(7)
    layers = []
    for sw in (1, 2):
        for p, padding in enumerate([(1, 1, 1, 1), (0, 0, 0, 0), (0, 1, 2, 0), (2, 0, 0, 1)]):
            for ow in range(1, 14):
                w, h = (ow - 1) * sw + 3 - padding[1] - padding[3], 1 + (ow + p) % 6
                if w < 1 or h + padding[0] + padding[2] < 3:
                    continue
                clamp = (-100 + ow, 90 - 3 * p) if (ow + p) % 3 == 0 else None
                layers.append(_layer(rng, 3, (h, w), stride=((ow + p) % 2 + 1, sw), padding=padding, clamp=clamp,
                                     batch=1 + (ow == 7)))
    return _graph(layers, rng)


def _others_graph():
    """Kernels other than the 3x3 steps, and 3x3 layers whose requantization the steps do not take."""
    rng = np.random.default_rng(8)
    layers = [
        _layer(rng, 3, (7, 8), mult_per_ch=2),  # channel multiplier 2: one plane, two output channels
        _layer(rng, 2, (9, 9), kernel=(5, 5), dilation=(2, 2), padding=(4, 4, 4, 4)),
        _layer(rng, 3, (6, 9), kernel=(3, 4), stride=(2, 1), padding=(0, 2, 1, 0), mult_per_ch=2),
        _layer(rng, 2, (5, 11), kernel=(1, 1), padding=(0, 0, 0, 0)),
        _layer(rng, 3, (8, 13), stride=(3, 3)),  # 3x3 at stride 3 across: one output at a time
        _layer(rng, 2, (6, 7), kernel=(3, 3), dilation=(1, 2), padding=(1, 2, 1, 2)),
        _layer(rng, 4, (7, 9), reals=(1e-9, 3e-9)),  # shifts below -22
        _layer(rng, 4, (7, 9), stride=(2, 2), reals=(0.5, 0.99)),  # shift 0
        _layer(rng, 3, (17,), kernel=(3,), stride=(2,), padding=(1, 1), dilation=(1,)),  # 1-D: h = 1
        _layer(rng, 3, (6, 20), zps=(-128, 127), batch=2),
        _layer(rng, 3, (5, 14), stride=(2, 2), zps=(127, -128), clamp=(-128, 0), batch=2),
        _layer(rng, 3, (6, 11), zps=(4, -20), clamp=(-20, 127)),  # a fused ReLU whose zero is not -128
    ]
    return _graph(layers, rng)


def _assert_exact(graph, feeds, runs):
    want = CompiledModel(graph).run_reference(feeds)
    for run in runs:
        for k, (got, ref) in enumerate(zip(run, want)):
            np.testing.assert_array_equal(got, ref, err_msg=graph.nodes[k].name)


@pytest.mark.parametrize("make", [_tails_graph, _others_graph], ids=["tails", "others"])
def test_depthwise_bit_exact_on_the_host(make):
    graph, feeds = make()
    assert {n.kernel for n in graph.nodes} == {"depthwise"}
    compiled = CompiledModel(graph)
    _assert_exact(graph, feeds, [compiled.run_c(feeds), compiled.run_sanitized(feeds)])


def test_plane_scratch_is_what_the_kernel_reads(tmp_path):
    """The kernel against mb_q_depthwise_conv_s8 (mb_q_conv.c) in a C program under ASan and UBSan, with
    its plane in a buffer of exactly `_plane_scratch` bytes, on 400 random shapes and parameters."""
    rng = np.random.default_rng(3)
    rows = []
    while len(rows) < 400:
        k = (3, 3) if rng.random() < 0.7 else tuple(int(v) for v in rng.integers(1, 6, size=2))
        d = (1, 1) if k == (3, 3) or rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 3, size=2))
        s = tuple(int(v) for v in rng.integers(1, 3, size=2))
        pad = (1, 1, 1, 1) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(0, 3, size=4))
        hw = (int(rng.integers(1, 10)), int(rng.integers(1, 31)))
        out = [(hw[i] + pad[i] + pad[i + 2] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
        if min(out) < 1 or any(hw[i] + pad[i] + pad[i + 2] < d[i] * (k[i] - 1) + 1 for i in range(2)):
            continue
        cin, mpc, n = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        node = Node("n", "q_conv", ("x", "w"), ("y",), {"stride": s, "padding": pad, "dilation": d, "groups": cin})
        ins = [Tensor("x", (n, cin) + hw, DType.int8), Tensor("w", (cin * mpc, 1) + k, DType.int8)]
        scratch = _plane_scratch(node, ins, [Tensor("y", (n, cin * mpc, *out), DType.int8)])
        clamp = rng.random() < 0.25
        # n cin h w cout oh ow kh kw sh sw pt pl dh dw, scratch bytes, clamped, shifts 0..31 (else 6..13)
        rows.append([n, cin, *hw, cin * mpc, *out, *k, *s, pad[0], pad[1], *d, scratch, int(clamp),
                     int(rng.random() < 0.1)])
    table = ",\n".join("{" + ", ".join(map(str, r)) + "}" for r in rows)
    src = tmp_path / "dw.c"
    src.write_text(r'''
#include <stdio.h>
#include <stdlib.h>
#include "mb_q_conv.h"
#include "mb_q_depthwise_opt.h"
static const int32_t cases[][18] = {
''' + table + r'''};
static uint64_t s = 88172645463325252ull;
static uint32_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
int main(void) {
    int bad = 0;
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        const int32_t *d = cases[c];
        const int32_t n = d[0], cin = d[1], h = d[2], wd = d[3], cout = d[4], oh = d[5], ow = d[6];
        const size_t nx = (size_t)n * cin * h * wd, ny = (size_t)n * cout * oh * ow, nw = (size_t)cout * d[7] * d[8];
        int8_t *x = malloc(nx), *w = malloc(nw), *y0 = malloc(ny), *y1 = malloc(ny), *shift = malloc(cout);
        int32_t *bias = malloc(4 * cout), *mult = malloc(4 * cout);
        int16_t *buf = malloc(d[15]);
        for (size_t i = 0; i < nx; ++i) x[i] = (int8_t)next();
        for (size_t i = 0; i < nw; ++i) w[i] = (int8_t)next();
        for (int32_t i = 0; i < d[15] / 2; ++i) buf[i] = (int16_t)next(); /* no zeros to rely on */
        for (int32_t o = 0; o < cout; ++o) {
            bias[o] = (int32_t)(next() % 200001) - 100000;
            mult[o] = (int32_t)(next() >> 2) | (1 << 30);
            shift[o] = (int8_t)(d[17] ? -(int32_t)(next() % 32) : -(int32_t)(6 + next() % 8));
        }
        const int32_t in_zp = (int32_t)(next() % 256) - 128, out_zp = (int32_t)(next() % 256) - 128;
        const int32_t lo = d[16] ? -100 + (int32_t)(next() % 50) : -128;
        const int32_t hi = d[16] ? 100 - (int32_t)(next() % 50) : 127;
        mb_q_depthwise_conv_s8(x, w, bias, mult, shift, y0, n, cin, h, wd, cout, oh, ow, d[7], d[8], d[9], d[10],
                               d[11], d[12], d[13], d[14], in_zp, out_zp, lo, hi);
        mb_q_depthwise_conv_s8_rows(x, w, bias, mult, shift, y1, n, cin, h, wd, cout, oh, ow, d[7], d[8], d[9],
                                    d[10], d[11], d[12], d[13], d[14], in_zp, out_zp, lo, hi, buf);
        for (size_t i = 0; i < ny; ++i) {
            if (y0[i] != y1[i]) { printf("case %u: output %zu\n", c, i); ++bad; break; }
        }
        free(x); free(w); free(y0); free(y1); free(shift); free(bias); free(mult); free(buf);
    }
    printf("mismatches %d\n", bad);
    return bad != 0;
}
''')
    exe = tmp_path / "dw"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{KERNELS}", str(src), str(KERNELS / "mb_q_conv.c"),
                    str(KERNELS / "mb_q_depthwise_opt.c"), str(KERNELS / "mb_q_gemm.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "mismatches 0" in out.stdout, out.stdout + out.stderr


@NEEDS_M7
def test_cortex_m7_depthwise_bit_exact():
    """The Thumb-2 on every tail and the clamp pass, with the real instructions."""
    for make in (_tails_graph, _others_graph):
        graph, feeds = make()
        _assert_exact(graph, feeds, CompiledModel(graph).simulate([feeds], target="cortex-m7").outputs)


def _instructions_per_mac(channels, hw, stride, activation):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(channels, channels, 3, stride, 1, groups=channels), activation()).eval()
    x = torch.randn(1, channels, *hw)
    calibration = torch.randn(16, channels, *hw, generator=torch.Generator().manual_seed(1))
    compiled = modelblocks.compile(model, (x,), quantize="int8", calibration=calibration)
    sim = compiled.simulate([[x.numpy()]], target="cortex-m7")
    np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference([x.numpy()])[0])
    index = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == "q_conv")
    assert compiled.graph.nodes[index].kernel == "depthwise"
    macs = next(r["macs"] for r in compiled.report["layers"] if r["index"] == index)
    return next(layer.instructions for layer in sim.layers if layer.index == index) / macs


@NEEDS_M7
@pytest.mark.parametrize("channels,hw,stride,activation,bound", [
    (64, (25, 5), 1, nn.ReLU, 2.5), (32, (24, 24), 1, nn.ReLU6, 2.1), (16, (48, 48), 2, nn.ReLU, 2.85),
    (128, (6, 6), 1, nn.ReLU6, 2.6)])
def test_cortex_m7_depthwise_instructions_per_mac(channels, hw, stride, activation, bound):
    """Measured 2.39 (DS-CNN's 64 x 25x5), 2.02, 2.75 and 2.49 (MobileNetV1's): bounds a little above."""
    assert _instructions_per_mac(channels, hw, stride, activation) <= bound
