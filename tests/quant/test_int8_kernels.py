"""The optimised int8 kernels (SMLAD GEMM cores, rows convolution, depthwise, mat-vec) against the
NumPy interpreter, bit for bit: on the host (portable DSP instructions of mb_arm.h, also under
ASan/UBSan) and on the Cortex-M7 in QEMU (the real instructions), where they must also take fewer
instructions than the reference kernels. The fast requantization is checked against the reference
one on every edge and on random inputs."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.errors import GraphError
from modelblocks.ir.serialize import load_graph, save_graph
from modelblocks.ir.verify import verify
from modelblocks.ops.q_conv import conv_weight_matrix
from modelblocks.ops.q_linear import pack_gemm_stream, pack_weights, padded8
from modelblocks.passes import select_kernels
from modelblocks.targets.qemu import have_toolchain

KERNELS = Path(modelblocks.__file__).parent / "backend" / "c" / "kernels"


def _int8(model, x, **kw):
    gen = torch.Generator().manual_seed(1)
    calibration = torch.randn((16 * x.shape[0],) + tuple(x.shape[1:]), generator=gen)
    return modelblocks.compile(model.eval(), (x,), quantize="int8", calibration=calibration, **kw)


def _compare(model, x, op: str, sanitize: bool = True):
    """Compile with the optimised and the reference kernels: (the variant `op`'s node got, the number of
    output values where the optimised C (also sanitized) or the reference C differs from the
    interpreter, the optimised and reference compiled models)."""
    opt = _int8(model, x)
    ref = _int8(model, x, kernels="reference")
    assert all(not n.kernel for n in ref.graph.nodes)
    arrays = [x.numpy()]
    want = opt.run_reference(arrays)
    runs = [opt.run_c(arrays), ref.run_c(arrays)] + ([opt.run_sanitized(arrays)] if sanitize else [])
    wrong = sum(int(np.count_nonzero(g != w)) for got in runs for g, w in zip(got, want))
    return next(n.kernel for n in opt.graph.nodes if n.op == op), wrong, opt, ref


CONV_CASES = [
    # cin, cout, kernel, stride, padding, dilation, groups, (h, w), expected variant
    (3, 16, 3, 1, 1, 1, 1, (12, 11), "rows"),
    (16, 16, 3, 1, 1, 1, 1, (8, 8), "rows"),
    (5, 7, 3, 2, 1, 1, 1, (9, 10), "rows"),
    (4, 6, 3, 1, 2, 2, 1, (9, 7), "rows"),  # dilation: one segment per tap
    (1, 8, (10, 4), 2, (4, 1), 1, 1, (49, 10), "rows"),  # DS-CNN's first layer
    (16, 33, 1, 1, 0, 1, 1, (5, 5), "rows"),  # pointwise, odd channel count
    (6, 5, (2, 3), (1, 2), (1, 0), 1, 1, (6, 7), "rows"),
    (8, 8, 3, 1, 1, 1, 8, (7, 6), "depthwise"),
    (8, 8, 3, 2, 1, 1, 8, (9, 9), "depthwise"),
    (4, 8, 5, 1, 2, 2, 4, (9, 9), "depthwise"),  # channel multiplier 2, dilation
    (6, 6, (3, 4), (2, 1), (0, 2), 1, 6, (8, 9), "depthwise"),  # even kernel width
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv_variants_bit_exact(case):
    cin, cout, k, s, p, d, g, hw, variant = case
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(cin, cout, k, s, p, d, g), nn.ReLU())
    kernel, wrong, opt, ref = _compare(model, torch.randn(2, cin, *hw), "q_conv")
    assert (kernel, wrong) == (variant, 0)
    assert opt.source.arena_bytes >= ref.source.arena_bytes  # the arena holds the variant's scratch


def test_conv1d_runs_on_the_rows_kernel():
    torch.manual_seed(0)
    kernel, wrong, *_ = _compare(nn.Conv1d(4, 6, 3, 2, 1), torch.randn(1, 4, 21), "q_conv")
    assert (kernel, wrong) == ("rows", 0)


@pytest.mark.parametrize("rows,inf,outf,variant", [(1, 64, 32, "matvec"), (1, 37, 13, "matvec"),
                                                   (1, 9, 2, "matvec"), (3, 50, 7, "gemm"),
                                                   (4, 33, 6, "gemm"), (2, 8, 1, "gemm")])
def test_linear_variants_bit_exact(rows, inf, outf, variant):
    torch.manual_seed(0)
    kernel, wrong, *_ = _compare(nn.Sequential(nn.Linear(inf, outf), nn.ReLU6()), torch.randn(rows, inf), "q_linear")
    assert (kernel, wrong) == (variant, 0)


class MatMul(nn.Module):
    def __init__(self, transpose: bool):
        super().__init__()
        self.transpose = transpose

    def forward(self, a, b):
        return torch.relu(a @ (b.transpose(-2, -1) if self.transpose else b))


@pytest.mark.parametrize("a_shape,b_shape,transpose", [((2, 5, 7), (2, 6, 7), True), ((4, 17, 16), (4, 17, 16), True),
                                                       ((3, 9, 9), (3, 9, 4), False), ((2, 1, 3, 8), (4, 8, 5), False)])
def test_matmul_variant_bit_exact(a_shape, b_shape, transpose):
    """Odd K (padded with zeros), odd rows and columns (tails of the 2 x 2 tiles), broadcast batches."""
    torch.manual_seed(0)
    a, b = torch.randn(*a_shape), torch.randn(*b_shape)
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(*a_shape, generator=gen).numpy(), torch.randn(*b_shape, generator=gen).numpy())
               for _ in range(8)]
    compiled = modelblocks.compile(MatMul(transpose).eval(), (a, b), quantize="int8", calibration=lambda: batches)
    assert select_kernels.kernel_counts(compiled.graph) == {"q_matmul/dsp": 1, "quantize/fpv5": 2}
    arrays = [a.numpy(), b.numpy()]
    for got, want in zip(compiled.run_sanitized(arrays), compiled.run_reference(arrays)):
        np.testing.assert_array_equal(got, want)


class Residual(nn.Module):
    def __init__(self, sub: bool):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.sub = sub

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(x - y if self.sub else x + y) + x[:, :1]  # the last add broadcasts: reference kernel


@pytest.mark.parametrize("sub", [False, True])
def test_residual_add_variant_bit_exact(sub):
    torch.manual_seed(0)
    kernel, wrong, compiled, _ = _compare(Residual(sub), torch.randn(2, 4, 6, 5), "q_conv")
    assert (kernel, wrong) == ("rows", 0)
    adds = [n.kernel for n in compiled.graph.nodes if n.op == "q_add"]
    assert sorted(adds) == ["", "table"], adds


def test_packed_weights_are_a_permutation_of_the_padded_weights():
    """Independent decoding of the layout mb_q_gemm.c streams: words of 4 bytes (w0, w2, w1, w3),
    channel blocks interleaved group by group."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(7, 13), dtype=np.int8)
    for block in (2, 4):
        words = pack_weights(w, block)
        assert words.dtype == np.int32 and words.size == 7 * 16 // 4
        raw = words.astype("<i4").view(np.int8).reshape(-1, 4)[:, [0, 2, 1, 3]]  # undo the byte order
        decoded, pos, o = np.zeros((7, 16), np.int8), 0, 0
        for size in [block] * (7 // block) + ([2] if 7 % block >= 2 else []) + ([1] if 7 % 2 else []):
            for grp in range(4):
                for r in range(size):
                    decoded[o + r, 4 * grp:4 * grp + 4] = raw[pos]
                    pos += 1
            o += size
        np.testing.assert_array_equal(decoded[:, :13], w)
        assert not decoded[:, 13:].any()


def test_gemm_stream_carries_each_blocks_biases_weights_and_rescales():
    """Independent decoding of mb_q_gemm_s8's stream: per block of 2 channels (the last alone) its
    biases, its `pack_weights` words, its multipliers, one word of the shifts' negations as bytes."""
    rng = np.random.default_rng(1)
    cout, k = 5, 11
    w = rng.integers(-128, 128, size=(cout, k), dtype=np.int8)
    bias = rng.integers(-2**20, 2**20, size=cout).astype(np.int32)
    mult = rng.integers(2**30, 2**31 - 1, size=cout).astype(np.int32)
    shift = -rng.integers(0, 31, size=cout).astype(np.int8)
    stream, words = pack_gemm_stream(w, bias, mult, shift), pack_weights(w, 2)
    per = padded8(k) // 4
    pos = 0
    for o, size in ((0, 2), (2, 2), (4, 1)):
        np.testing.assert_array_equal(stream[pos:pos + size], bias[o:o + size])
        np.testing.assert_array_equal(stream[pos + size:pos + size + size * per], words[o * per:(o + size) * per])
        pos += size + size * per
        np.testing.assert_array_equal(stream[pos:pos + size], mult[o:o + size])
        e = [(int(stream[pos + size]) >> (8 * i)) & 0xFF for i in range(size)]
        assert e == [-int(v) for v in shift[o:o + size]]
        pos += size + 1
    assert pos == stream.size


def test_conv_weight_matrix_orders_rows_taps_channels():
    w = np.arange(2 * 3 * 2 * 2, dtype=np.int8).reshape(2, 3, 2, 2)  # cout, cin, kh, kw
    m = conv_weight_matrix(w, dw=1)  # segments per kernel row: kw * cin = 6, padded to 8
    assert m.shape == (2, 16)
    np.testing.assert_array_equal(m[0, :6], [w[0, c, 0, j] for j in range(2) for c in range(3)])
    assert not m[:, 6:8].any()
    m = conv_weight_matrix(w, dw=2)  # one segment per tap: cin = 3, padded to 4
    assert m.shape == (2, 16)
    np.testing.assert_array_equal(m[1, 4:7], w[1, :, 0, 1])


def test_fast_requantization_equals_the_reference(tmp_path):
    """mb_q_output_fast against mb_q_output on the edges of every shift and 2 million random inputs, for
    every accumulator and shift the optimised kernels take (|acc| < 2^30, shift <= 0)."""
    src = tmp_path / "requant.c"
    src.write_text(r'''
#include <stdio.h>
#include <stdint.h>
#include "mb_q_gemm.h"
static uint64_t s = 88172645463325252ull;
static uint32_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
static int check(int32_t acc, int32_t m, int32_t sh, int32_t zp, int32_t lo, int32_t hi) {
    if (mb_q_output(acc, m, sh, zp, lo, hi) != mb_q_output_fast(acc, m, sh, zp, lo, hi)) {
        printf("%d %d %d %d\n", acc, m, sh, zp); return 1; }
    return 0;
}
int main(void) {
    const int32_t accs[] = {-MB_Q_FAST_ACC_LIMIT + 1, -MB_Q_FAST_ACC_LIMIT + 4, -65536, -257, -256, -129, -128, -1, 0,
                            1, 127, 255, 256, 65535, MB_Q_FAST_ACC_LIMIT - 4, MB_Q_FAST_ACC_LIMIT - 1};
    const int32_t mults[] = {0, 1, 1 << 30, 1518500250, INT32_MAX - 1, INT32_MAX};
    int bad = 0;
    for (int32_t sh = -31; sh <= 0; ++sh)
        for (unsigned a = 0; a < sizeof accs / 4; ++a)
            for (unsigned m = 0; m < sizeof mults / 4; ++m)
                for (int32_t e = -3; e <= 3; ++e) {
                    /* around every rounding tie of this shift */
                    int64_t acc = (int64_t)accs[a] + (sh < 0 ? (int64_t)e * ((int64_t)1 << (-sh - 1)) : e);
                    if (acc <= -MB_Q_FAST_ACC_LIMIT || acc >= MB_Q_FAST_ACC_LIMIT) continue;
                    bad += check((int32_t)acc, mults[m], sh, -5, -128, 127);
                }
    for (long i = 0; i < 2000000; ++i) {
        int32_t sh = -(int32_t)(next() % 32);
        int32_t acc = (int32_t)next() >> (2 + next() % 24);
        int32_t m = (int32_t)(next() >> 1);
        int32_t zp = (int32_t)(next() % 256) - 128;
        int32_t lo = -128 + (int32_t)(next() % 64), hi = 127 - (int32_t)(next() % 64);
        bad += check(acc, m, sh, zp, lo, hi);
    }
    printf("mismatches %d\n", bad);
    return bad != 0;
}
''')
    exe = tmp_path / "requant"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", f"-I{KERNELS}", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "mismatches 0" in out.stdout, out.stdout + out.stderr


def test_kernel_choice_is_verified_and_saved(tmp_path):
    torch.manual_seed(0)
    compiled = _int8(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)), torch.randn(1, 3, 6, 6))
    graph = compiled.graph
    assert select_kernels.kernel_counts(graph) == {"q_conv/rows": 1, "q_linear/matvec": 1, "quantize/fpv5": 1}
    save_graph(graph, tmp_path)
    assert [n.kernel for n in load_graph(tmp_path / "model.json").nodes] == [n.kernel for n in graph.nodes]
    conv = next(i for i, n in enumerate(graph.nodes) if n.op == "q_conv")
    graph.nodes[conv] = graph.nodes[conv].replace(kernel="winograd")
    with pytest.raises(GraphError, match="no kernel variant 'winograd'"):
        verify(graph)
    graph.nodes[conv] = graph.nodes[conv].replace(kernel="depthwise")
    with pytest.raises(GraphError, match="does not apply"):
        verify(graph)
    assert all(not n.kernel for n in select_kernels.run(graph, "reference").nodes)


@pytest.mark.skipif(not have_toolchain() and not os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"),
                    reason="arm-none-eabi-gcc or qemu-system-arm missing")
def test_cortex_m7_runs_the_dsp_kernels_bit_exact_and_faster():
    """One model with every variant: conv rows, depthwise, pointwise, mat-vec; the real SMLAD/SXTB16
    on the M7 give the interpreter's bits, in fewer instructions per layer than the plain loops."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.ReLU(),
                          nn.Conv2d(16, 32, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    x = torch.randn(1, 3, 12, 12)
    counts = {}
    for kernels in ("reference", "optimized"):
        compiled = _int8(model, x, kernels=kernels)
        sim = compiled.simulate([x.numpy()], target="cortex-m7")
        np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference([x.numpy()])[0])
        by_index = {layer.index: layer.instructions for layer in sim.layers}
        counts[kernels] = {(n.op, n.scope): by_index[i] for i, n in enumerate(compiled.graph.nodes)
                           if n.op in ("q_conv", "q_linear")}
        if kernels == "optimized":
            assert select_kernels.kernel_counts(compiled.graph) == {"q_conv/rows": 2, "q_conv/depthwise": 1,
                                                                    "q_linear/matvec": 1, "quantize/fpv5": 1}
    assert counts["reference"].keys() == counts["optimized"].keys()
    for layer, ref in counts["reference"].items():
        assert counts["optimized"][layer] < ref, (layer, counts)
    # a residual subtraction (negative multiplier) on the SMMULR requantization
    x = torch.randn(1, 4, 6, 5)
    adds = {}
    for kernels in ("reference", "optimized"):
        compiled = _int8(Residual(sub=True), x, kernels=kernels)
        sim = compiled.simulate([x.numpy()], target="cortex-m7")
        np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference([x.numpy()])[0])
        index = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == "q_add"
                     and compiled.graph.tensors[n.inputs[0]].shape == compiled.graph.tensors[n.inputs[1]].shape)
        adds[kernels] = next(layer.instructions for layer in sim.layers if layer.index == index)
    assert adds["optimized"] < adds["reference"], adds
    # attention scores q @ k^T on the int16 SMLAD tiles
    q, k = torch.randn(2, 9, 8), torch.randn(2, 9, 8)
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(2, 9, 8, generator=gen).numpy(), torch.randn(2, 9, 8, generator=gen).numpy())
               for _ in range(8)]
    insns = {}
    for kernels in ("reference", "optimized"):
        compiled = modelblocks.compile(MatMul(True).eval(), (q, k), quantize="int8", calibration=lambda: batches,
                                       kernels=kernels)
        sim = compiled.simulate([[q.numpy(), k.numpy()]], target="cortex-m7")
        np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference([q.numpy(), k.numpy()])[0])
        index = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == "q_matmul")
        insns[kernels] = next(layer.instructions for layer in sim.layers if layer.index == index)
    assert insns["optimized"] < insns["reference"], insns
