"""The optimised int8 elementwise kernels and the lowering choices that feed them:

- q_add "table" (mb_q_elementwise_opt.c) against the reference mb_q_add_s8 on every operand pair for
  thousands of random parameter sets (host, ASan/UBSan), and on the Cortex-M7 in QEMU against the NumPy
  interpreter, in fewer instructions than "flat";
- a residual ReLU fused into the float add / sub (Prop.FUSED_CLAMP): the float model stays within 1e-5
  of PyTorch, the int8 block is q_conv, q_conv, q_add with the clamp, calibrated after the clamp;
- x * c, x / c, c - x for a constant scalar c lower to a q_lut rounded once from the float result;
- quantize "fpv5" (mb_quantize_opt.c) against mb_quantize_f32_s8 on every special float32 and rounding tie.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.api import CompiledModel
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Graph, Node, QuantParams, Tensor
from modelblocks.ir.verify import verify
from modelblocks.ops.q_elementwise import LUT_MIN_ELEMENTS, TABLE_MIN_ELEMENTS
from modelblocks.ops.registry import get_op
from modelblocks.passes import select_kernels
from modelblocks.quant import arith
from modelblocks.targets.qemu import have_toolchain

from helpers import FLOAT_TOL, op_model

KERNELS = Path(modelblocks.__file__).parent / "backend" / "c" / "kernels"
needs_qemu = pytest.mark.skipif(not have_toolchain() and not os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"),
                                reason="arm-none-eabi-gcc or qemu-system-arm missing")


def _mismatches(tmp_path, name: str, source: str, files: tuple[str, ...]) -> int:
    """Build `source` with the kernel files under ASan/UBSan, run it (a sanitizer report fails the run)
    and return the N of the "mismatches N" it prints."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{KERNELS}", str(src),
                    *(str(KERNELS / f) for f in files), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    found = re.search(r"mismatches (\d+)", out.stdout)
    assert out.returncode == 0 and found, out.stdout + out.stderr
    return int(found.group(1))


# -- q_add "table" -------------------------------------------------------------------------------------

def test_table_add_equals_the_reference_kernel_on_every_pair(tmp_path):
    """2,000 random parameter sets, each on all 65536 operand pairs: zero points, multipliers (either operand
    rescaled by exactly +-1/2 or neither, negative b for sub, zero), left shifts, every output shift the
    variant takes, clamps, counts with a tail, and y written over a or b."""
    assert _mismatches(tmp_path, "add_table", r'''
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "mb_q_elementwise.h"
#include "mb_q_elementwise_opt.h"
static uint64_t s = 88172645463325252ull;
static uint32_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
static int8_t a[65536], b[65536], want[65536], got[65536];
static int32_t tables[512];
int main(void) {
    const int32_t dims[1] = {65536}, unit[1] = {1};
    long bad = 0;
    for (int i = 0; i < 65536; ++i) { a[i] = (int8_t)(i & 255); b[i] = (int8_t)(i >> 8); }
    for (int trial = 0; trial < 2000; ++trial) {
        int32_t azp = (int32_t)(next() % 256) - 128, bzp = (int32_t)(next() % 256) - 128;
        int32_t ozp = (int32_t)(next() % 256) - 128;
        int32_t am = (int32_t)((1u << 30) + (next() >> 2)), bm = (int32_t)((1u << 30) + (next() >> 2));
        int32_t ash = -(int32_t)(next() % 32), bsh = -(int32_t)(next() % 32);
        uint32_t linear = next() % 4; /* 1: a, 2: b, 3: both rescaled by 1/2 */
        if (linear & 1) { am = 1 << 30; ash = 0; }
        if (linear & 2) { bm = 1 << 30; bsh = 0; }
        if (next() % 3 == 0) bm = -bm;
        if (next() % 16 == 0) am = 0;
        int32_t ls = next() % 8 == 0 ? (int32_t)(next() % 21) : 20;
        int32_t om = next() % 16 == 0 ? 0 : (int32_t)(next() >> 1), osh = -1 - (int32_t)(next() % 23);
        int32_t lo = -128, hi = 127;
        if (next() % 2) { lo = -128 + (int32_t)(next() % 128); hi = lo + (int32_t)(next() % (128 - lo)); }
        int32_t n = trial % 5 == 0 ? 65536 - (int32_t)(next() % 13) : 65536;
        int in_place = (int)(next() % 3); /* 0: y separate, 1: y is a, 2: y is b */
        mb_q_add_s8(a, b, want, dims, unit, unit, 1, azp, am, ash, bzp, bm, bsh, ls, ozp, om, osh, lo, hi);
        int8_t *y = got;
        if (in_place) { memcpy(got, in_place == 1 ? a : b, sizeof got); }
        mb_q_add_s8_table(in_place == 1 ? got : a, in_place == 2 ? got : b, y, n, azp, am, ash, bzp, bm, bsh, ls,
                          ozp, om, osh, lo, hi, tables);
        for (int i = 0; i < n; ++i) {
            if (got[i] != want[i] && bad++ < 5) {
                printf("trial %d element %d: %d, want %d\n", trial, i, got[i], want[i]);
            }
        }
    }
    printf("mismatches %ld\n", bad);
    return bad != 0;
}
''', ("mb_q_elementwise.c", "mb_q_elementwise_opt.c")) == 0


def _add_node(attrs: dict, shape, kernel=""):
    node = Node("n", "q_add", ("a", "b"), ("y",), attrs, kernel=kernel)
    ins = [Tensor("a", shape, DType.int8), Tensor("b", shape, DType.int8)]
    return node, ins, [Tensor("y", shape, DType.int8)]


def _add_attrs(sa: float, sb: float, so: float, sub: bool = False, act=(-128, 127)) -> dict:
    """q_add's attributes as the lowering builds them (TFLite's scheme)."""
    twice = 2 * max(sa, sb)
    am, ash = arith.quantize_multiplier(sa / twice)
    bm, bsh = arith.quantize_multiplier(sb / twice)
    om, osh = arith.quantize_multiplier(twice / ((1 << 20) * so))
    return {"a_zp": -3, "a_mult": am, "a_shift": ash, "b_zp": 17, "b_mult": -bm if sub else bm, "b_shift": bsh,
            "left_shift": 20, "out_zp": -9, "out_mult": om, "out_shift": osh, "act_min": act[0], "act_max": act[1]}


def test_table_add_applies_and_scratch():
    """From TABLE_MIN_ELEMENTS same-shape elements; 1 KiB of tables when an operand is rescaled by 1/2 (as
    every lowered add's larger-scale operand is), 2 KiB otherwise; not for broadcasts, an output shift of 0
    or below -23, or a negative output multiplier (those run "flat" or the reference kernel)."""
    op = get_op("q_add")
    lowered = _add_attrs(0.05, 0.02, 0.06)
    for count, want in ((TABLE_MIN_ELEMENTS, "table"), (TABLE_MIN_ELEMENTS - 1, "flat")):
        node, ins, outs = _add_node(lowered, (count,))
        assert next(v.name for v in op.variants if v.applies(node, ins, outs)) == want
    node, ins, outs = _add_node(lowered, (4, 64), kernel="table")
    assert op.node_scratch_bytes(node, ins, outs) == 1024
    neither = {**lowered, "a_mult": lowered["a_mult"] - 1}
    node, ins, outs = _add_node(neither, (4, 64), kernel="table")
    assert op.node_scratch_bytes(node, ins, outs) == 2048
    for bad in ({"out_shift": 0}, {"out_shift": -24}, {"out_mult": -5}):
        node, ins, outs = _add_node({**lowered, **bad}, (4, 64))
        assert [v.name for v in op.variants if v.applies(node, ins, outs)] == ["flat"]
    node = Node("n", "q_add", ("a", "b"), ("y",), lowered)
    broadcast = [Tensor("a", (4, 64), DType.int8), Tensor("b", (1, 64), DType.int8)]
    assert not any(v.applies(node, broadcast, [Tensor("y", (4, 64), DType.int8)]) for v in op.variants)


def _int8_add_graph(cases: list[dict], shape) -> Graph:
    """One q_add node per attribute set, each on its own pair of int8 inputs, every node on "table"."""
    g = Graph("adds")
    for k, attrs in enumerate(cases):
        for name in (f"a{k}", f"b{k}"):
            g.add_tensor(Tensor(name, shape, DType.int8, QuantParams((0.05,), (0,))))
            g.inputs.append(name)
        g.add_tensor(Tensor(f"y{k}", shape, DType.int8, QuantParams((0.05,), (attrs["out_zp"],))))
        g.nodes.append(Node(f"add{k}", "q_add", (f"a{k}", f"b{k}"), (f"y{k}",), attrs, kernel="table"))
        g.outputs.append(f"y{k}")
    verify(g)
    return g


TABLE_CASES = [
    _add_attrs(0.05, 0.02, 0.06),  # a rescaled by 1/2: one table
    _add_attrs(0.01, 0.03, 0.02, sub=True),  # b by -1/2
    {**_add_attrs(0.05, 0.02, 0.3, act=(-20, 90)), "a_mult": (1 << 30) + 12345},  # two tables, a clamp
    {**_add_attrs(0.02, 0.02, 0.001), "a_zp": 127, "b_zp": -128, "out_zp": 100},  # saturating, extreme zps
]


def _all_pairs() -> list[np.ndarray]:
    v = np.arange(-128, 128, dtype=np.int8)
    return [np.repeat(v, 256).reshape(256, 256), np.tile(v, 256).reshape(256, 256)] * len(TABLE_CASES)


def test_table_add_graph_on_the_host_equals_the_interpreter():
    c = CompiledModel(_int8_add_graph(TABLE_CASES, (256, 256)))
    arrays = _all_pairs()
    for got, want in zip(c.run_sanitized(arrays), c.run_reference(arrays)):
        np.testing.assert_array_equal(got, want)


@needs_qemu
def test_table_add_on_the_cortex_m7_bit_exact_and_faster():
    """The SMMLAR and SSAT of the real instructions on every operand pair of each case, and the per-element
    cost of a 1024-element add against "flat" (the tables' build included)."""
    c = CompiledModel(_int8_add_graph(TABLE_CASES, (256, 256)))
    arrays = _all_pairs()
    sim = c.simulate([arrays], target="cortex-m7")
    for got, want in zip(sim.outputs[0], c.run_reference(arrays)):
        np.testing.assert_array_equal(got, want)
    rng = np.random.default_rng(0)
    pair = [rng.integers(-128, 128, (4, 256), dtype=np.int8) for _ in range(2)]
    per_element = {}
    for kernel in ("table", "flat"):
        g = _int8_add_graph(TABLE_CASES[:1], (4, 256))
        g.nodes[0] = g.nodes[0].replace(kernel=kernel)
        compiled = CompiledModel(g)
        sim = compiled.simulate([pair], target="cortex-m7")
        np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference(pair)[0])
        per_element[kernel] = sim.layers[0].instructions / 1024
    assert per_element["table"] < 12.5 and per_element["table"] < per_element["flat"] / 3, per_element


# -- a ReLU fused into the residual add -----------------------------------------------------------------

class ResidualBlock(nn.Module):
    """ResNet-8's block: conv, ReLU, conv, then the shortcut added (or subtracted) and a ReLU (or ReLU6)."""

    def __init__(self, channels: int = 8, sub: bool = False, act=torch.relu):
        super().__init__()
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.sub, self.act = sub, act

    def forward(self, x):
        y = self.c2(torch.relu(self.c1(x)))
        return self.act(x - y if self.sub else x + y)


@pytest.mark.parametrize("sub", [False, True], ids=["add", "sub"])
def test_relu_fuses_into_the_float_add(sub):
    torch.manual_seed(0)
    model, x = ResidualBlock(sub=sub).eval(), torch.randn(2, 8, 6, 5)
    compiled = modelblocks.compile(model, (x,))
    assert compiled.graph.ops_count() == {"conv": 2, "sub" if sub else "add": 1}
    (add,) = [n for n in compiled.graph.nodes if n.op in ("add", "sub")]
    assert (add.attrs["act_min"], add.attrs["act_max"]) == (0.0, None)
    with torch.no_grad():
        want = model(x).numpy()
    for got in (compiled.run_reference([x.numpy()])[0], compiled.run_c([x.numpy()])[0],
                compiled.run_sanitized([x.numpy()])[0]):
        assert np.abs(got - want).max() <= FLOAT_TOL * max(1.0, np.abs(want).max())
        assert got.min() >= 0.0


@pytest.mark.parametrize("sub,act", [(False, torch.relu), (True, torch.relu), (False, nn.functional.relu6)],
                         ids=["add_relu", "sub_relu", "add_relu6"])
def test_residual_block_is_conv_conv_add_with_the_clamp(sub, act):
    """No q_lut for the ReLU: the add clamps; its output parameters are the clamped tensor's (a ReLU's range
    starts at 0, so zero point -128 and act_min -128); bit-exact, also under the sanitizers."""
    torch.manual_seed(0)
    model, x = ResidualBlock(sub=sub, act=act).eval(), torch.randn(1, 8, 16, 16)
    gen = torch.Generator().manual_seed(1)
    compiled = modelblocks.compile(model, (x,), quantize="int8", calibration=torch.randn(16, 8, 16, 16, generator=gen))
    ops = [n.op for n in compiled.graph.nodes]
    assert ops == ["quantize", "q_conv", "q_conv", "q_add", "dequantize"], ops
    add = compiled.graph.nodes[3]
    out = compiled.graph.tensors[add.outputs[0]].quant
    assert out.zero_point[0] == -128 and add.attrs["act_min"] == -128
    six = int(arith.quantize_values(np.float32(6.0), out.scale[0], -128))
    assert add.attrs["act_max"] == (127 if act is torch.relu else six)
    assert add.kernel == "table"
    arrays = [x.numpy()]
    want = compiled.run_reference(arrays)[0]
    np.testing.assert_array_equal(compiled.run_c(arrays)[0], want)
    np.testing.assert_array_equal(compiled.run_sanitized(arrays)[0], want)
    with torch.no_grad():
        assert arith.sqnr_db(model(x).numpy(), want) > 25.0


# -- a constant scalar operand: a table ----------------------------------------------------------------

class Scores(nn.Module):
    """TinyViT's attention scores: (q @ k^T) * scale."""

    def forward(self, q, k):
        return (q @ k.transpose(-2, -1)) * 0.125


SCALAR_CASES = {
    "mul": (lambda x: x * 0.37, {}),
    "div": (lambda x: x / 3.0, {}),
    "rsub": (lambda x: 1.0 - x, {}),
    "add_relu": (lambda x: torch.relu(x + 0.25), {}),
    "mul_one_element": (lambda m, x: x * m.c, {"c": torch.tensor([[[-1.5]]])}),
}


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_scalar_operand_lowers_to_a_table_rounded_once(case):
    """The int8 result is the float op (and its fused clamp) on the value each int8 input represents,
    rounded once to the output grid: equal everywhere, not just within a step."""
    torch.manual_seed(0)
    fn, buffers = SCALAR_CASES[case]
    model, x = op_model(fn, **buffers), torch.randn(2, 16, 8)
    compiled = modelblocks.compile(model, (x,), quantize="int8", calibration=torch.randn(32, 16, 8))
    assert [n.op for n in compiled.graph.nodes] == ["quantize", "q_lut", "dequantize"]
    quantize, lut, _ = compiled.graph.nodes
    s_in, zp_in = (compiled.graph.tensors[quantize.outputs[0]].quant.scale[0],
                   compiled.graph.tensors[quantize.outputs[0]].quant.zero_point[0])
    p = compiled.graph.tensors[lut.outputs[0]].quant
    grid = torch.from_numpy(arith.dequantize_values(np.arange(-128, 128), s_in, zp_in))
    with torch.no_grad():
        want = arith.quantize_values(model(grid).numpy(), p.scale[0], p.zero_point[0]).reshape(-1)
    np.testing.assert_array_equal(compiled.graph.tensors[lut.inputs[1]].data, want)
    arrays = [x.numpy()]
    np.testing.assert_array_equal(compiled.run_c(arrays)[0], compiled.run_reference(arrays)[0])


def test_attention_scale_is_a_table_after_the_matmul():
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(1, 4, 17, 16, generator=gen).numpy(), torch.randn(1, 4, 17, 16, generator=gen).numpy())
               for _ in range(8)]
    q, k = (torch.from_numpy(v) for v in batches[0])
    compiled = modelblocks.compile(Scores().eval(), (q, k), quantize="int8", calibration=lambda: batches)
    ops = compiled.graph.ops_count()
    assert ops.get("q_lut") == 1 and "q_mul" not in ops and ops.get("q_matmul") == 1, ops
    arrays = [q.numpy(), k.numpy()]
    np.testing.assert_array_equal(compiled.run_sanitized(arrays)[0], compiled.run_reference(arrays)[0])


def test_small_tensors_and_scalar_graph_inputs_still_multiply():
    """Below LUT_MIN_ELEMENTS the table's 256 bytes outweigh the tensor: q_mul; and only constants make
    tables: a one-element activation operand keeps q_mul."""
    small = modelblocks.compile(op_model(lambda x: x * 0.37), (torch.randn(1, LUT_MIN_ELEMENTS - 1),), quantize="int8",
                                calibration=torch.randn(4, LUT_MIN_ELEMENTS - 1))
    assert "q_mul" in small.graph.ops_count()
    compiled = modelblocks.compile(op_model(torch.mul).eval(), (torch.randn(64, 7), torch.randn(1)), quantize="int8",
                                   calibration=[torch.randn(32 * 64, 7), torch.randn(32)])
    assert "q_mul" in compiled.graph.ops_count()


# -- quantize "fpv5" -------------------------------------------------------------------------------------

def test_fpv5_quantize_equals_the_reference_kernel(tmp_path):
    """Every rounding tie of the int8 range (k + 0.5 and its float neighbours), the clamp edges, huge values,
    infinities, NaNs, signed zeros, subnormals and 4 million random floats, for many scales and zero points."""
    assert _mismatches(tmp_path, "quantize_fpv5", r'''
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "mb_quantize.h"
#include "mb_quantize_opt.h"
static uint64_t s = 88172645463325252ull;
static uint32_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
#define N 4096
static float x[N];
static int8_t want[N], got[N];
int main(void) {
    long bad = 0;
    const float scales[] = {1.0f, 0.5f, 0.0078125f, 0.1f, 0.0235294f, 3.0f, 1e-6f, 1e6f};
    for (unsigned sc = 0; sc < sizeof scales / sizeof scales[0]; ++sc) {
        for (int32_t zp = -128; zp <= 127; zp += 17) {
            for (int round = 0; round < 8; ++round) {
                int32_t n = 0;
                for (int32_t k = -300; k <= 300 && round == 0; ++k) {
                    float t = ((float)k + 0.5f) * scales[sc];
                    x[n++] = t; x[n++] = nextafterf(t, INFINITY); x[n++] = nextafterf(t, -INFINITY);
                    x[n++] = (float)k * scales[sc];
                }
                if (round == 0) {
                    const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-45f, -1e-45f,
                                             3.4e38f, -3.4e38f, 2147483648.0f, -2147483904.0f};
                    for (unsigned j = 0; j < sizeof special / sizeof special[0]; ++j) x[n++] = special[j];
                }
                while (n < N - 3) {
                    uint32_t bits = next();
                    float f;
                    memcpy(&f, &bits, sizeof f);
                    x[n++] = round % 2 ? f : ((float)(int32_t)next() / 2147483648.0f) * 300.0f * scales[sc];
                }
                mb_quantize_f32_s8(x, want, n, scales[sc], zp);
                mb_quantize_f32_s8_fpv5(x, got, n, scales[sc], zp);
                for (int32_t i = 0; i < n; ++i) {
                    if (got[i] != want[i] && bad++ < 5)
                        printf("%.9g / %g + %d: %d, want %d\n", x[i], scales[sc], zp, got[i], want[i]);
                }
            }
        }
    }
    printf("mismatches %ld\n", bad);
    return bad != 0;
}
''', ("mb_quantize.c", "mb_quantize_opt.c")) == 0


def test_quantize_runs_fpv5_and_keeps_the_interpreters_bits():
    x = torch.randn(1, 3, 9, 7) * 4
    x.view(-1)[:4] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30])
    compiled = modelblocks.compile(op_model(torch.relu), (x,), quantize="int8", calibration=torch.randn(8, 3, 9, 7))
    assert select_kernels.kernel_counts(compiled.graph) == {"quantize/fpv5": 1}
    arrays = [x.numpy()]
    np.testing.assert_array_equal(compiled.run_sanitized(arrays)[0], compiled.run_reference(arrays)[0])


@needs_qemu
def test_fpv5_quantize_on_the_cortex_m7():
    """VMAXNM / VMINNM / VCVTA on the M7 give the interpreter's int8 values, in fewer instructions."""
    x = torch.randn(1, 3, 32, 32) * 4
    x.view(-1)[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, 2.5, -2.5])
    counts = {}
    for kernels in ("reference", "optimized"):
        compiled = modelblocks.compile(op_model(torch.relu), (x,), quantize="int8",
                                       calibration=torch.randn(8, 3, 32, 32), kernels=kernels)
        index = next(i for i, n in enumerate(compiled.graph.nodes) if n.op == "quantize")
        sim = compiled.simulate([x.numpy()], target="cortex-m7")
        np.testing.assert_array_equal(sim.outputs[0][0], compiled.run_reference([x.numpy()])[0])
        counts[kernels] = next(layer.instructions for layer in sim.layers if layer.index == index) / x.numel()
    assert counts["optimized"] < 11 and counts["optimized"] < counts["reference"] * 0.7, counts
