"""The int8 scheme's integer arithmetic: NumPy (quant/arith.py) against the C in mb_quant.h, and both
against exact rational arithmetic."""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelblocks.backend.c.emitter import KERNEL_DIR
from modelblocks.quant import arith
from modelblocks.targets.host import CFLAGS, SANITIZE, compiler

_PROGRAM = r"""
#include <stdio.h>
#include "mb_quant.h"
int main(void)
{
    long acc, mult, shift;
    while (scanf("%ld %ld %ld", &acc, &mult, &shift) == 3) {
        printf("%ld\n", (long)mb_requantize((int32_t)acc, (int32_t)mult, (int32_t)shift));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_requantize(tmp_path_factory):
    work = tmp_path_factory.mktemp("requant")
    (work / "main.c").write_text(_PROGRAM)
    exe = work / "requant"
    flags = [f for f in CFLAGS if f != "-O2"] + SANITIZE
    subprocess.run([compiler(), *flags, f"-I{KERNEL_DIR}", "main.c", "-o", str(exe)], cwd=work, check=True)

    def run(triples):
        text = "".join(f"{a} {m} {s}\n" for a, m, s in triples)
        out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
        return np.array([int(v) for v in out.split()], dtype=np.int64)

    return run


def _edge_triples():
    rng = np.random.default_rng(1)
    accs = [0, 1, -1, 2, -2, 3, -3, 127, -128, 2**15, -(2**15), 2**30, -(2**30), 2**31 - 1, -(2**31)]
    accs += rng.integers(-(2**31), 2**31, 200).tolist() + rng.integers(-5000, 5000, 200).tolist()
    mults = [0, 2**30, 2**30 + 1, 2**31 - 1, 1518500250, 1 << 30 | 12345]
    mults += rng.integers(2**30, 2**31, 10).tolist()
    shifts = [-31, -20, -9, -8, -1, 0, 1, 5, 20]
    return [(a, m, s) for a in accs for m in mults for s in shifts]


def test_requantize_numpy_equals_c(c_requantize):
    triples = _edge_triples()
    a, m, s = (np.array(v, dtype=np.int64) for v in zip(*triples))
    np.testing.assert_array_equal(arith.requantize(a, m, s), c_requantize(triples))


def _exact_requantize(acc: int, mult: int, shift: int) -> int:
    """The definition, in exact rationals: high = round_half_up(acc' * mult / 2^31) with acc' the
    saturated pre-shifted accumulator, then divide by 2^right rounding half away from zero."""
    left, right = max(shift, 0), max(-shift, 0)
    v = max(min(acc * (1 << left), arith.INT32_MAX), arith.INT32_MIN)
    high = math.floor(Fraction(v * mult, 1 << 31) + Fraction(1, 2))
    q = Fraction(high, 1 << right)
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q))


@settings(max_examples=400, deadline=None)
@given(st.integers(arith.INT32_MIN, arith.INT32_MAX), st.integers(2**30, 2**31 - 1), st.integers(-31, 20))
def test_requantize_matches_exact_rounding(acc, mult, shift):
    assert int(arith.requantize(acc, mult, shift)) == _exact_requantize(acc, mult, shift)


@pytest.mark.parametrize("real", [1e-9, 3.1e-6, 0.000123, 0.0078125, 0.25, 0.4999999, 0.5, 0.75, 0.999999999, 1.0,
                                  1.5, 3.0, 1000.5])
def test_quantize_multiplier_represents_the_real(real):
    mult, shift = arith.quantize_multiplier(real)
    assert 2**30 <= mult < 2**31
    assert abs(mult * 2.0 ** (shift - 31) - real) <= real * 2.0**-31


def test_quantize_multiplier_zero_and_tiny():
    assert arith.quantize_multiplier(0.0) == (0, 0)
    assert arith.quantize_multiplier(2.0**-40) == (0, 0)
    with pytest.raises(ValueError):
        arith.quantize_multiplier(-1.0)


def test_requantized_product_is_within_one_lsb_of_the_real_product():
    rng = np.random.default_rng(2)
    for real in [0.0123, 0.731, 0.000456, 2.5]:
        mult, shift = arith.quantize_multiplier(real)
        acc = rng.integers(-(2**20), 2**20, 5000)
        got = arith.requantize(acc, mult, shift)
        assert np.max(np.abs(got - acc * real)) <= 0.5 + 1e-6 * np.max(np.abs(acc * real)) + 1e-9


def test_params_from_range_keeps_zero_exact_and_covers_the_range():
    for lo, hi in [(-1.0, 1.0), (0.0, 6.0), (-3.2, 0.5), (0.2, 0.9), (-5.0, -1.0), (-1e-3, 1e-3)]:
        p = arith.params_from_range(lo, hi)
        s, zp = p.scale[0], p.zero_point[0]
        assert s == float(np.float32(s)) and -128 <= zp <= 127
        assert arith.dequantize_values(arith.quantize_values(np.float32(0.0), s, zp), s, zp) == 0.0
        q = arith.quantize_values(np.array([min(lo, 0), max(hi, 0)], np.float32), s, zp)
        deq = arith.dequantize_values(q, s, zp)
        assert abs(deq[0] - min(lo, 0)) <= s and abs(deq[1] - max(hi, 0)) <= s
    assert arith.params_from_range(0.0, 0.0).scale == (1.0,)


def test_round_half_away_is_c_roundf():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, -0.49999997, 8388607.5, 1e30], dtype=np.float32)
    np.testing.assert_array_equal(arith.round_half_away(x), np.array([1, 2, 3, -1, -2, 0, 0, 8388608, 1e30], np.float32).astype(np.float64))


def test_symmetric_weights_round_trip_within_half_a_step():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 5, 3)).astype(np.float32)
    w[2] = 0.0
    scales = arith.symmetric_scales(w, axis=0)
    q = arith.quantize_symmetric(w, scales, axis=0)
    live = [np.abs(w[c]).max() / 127 for c in range(6) if c != 2]
    assert scales[2] == np.float32(np.median(live)) and not q[2].any()  # a pruned channel: its neighbours' scale
    assert arith.symmetric_scales(np.zeros((3, 4)), axis=0).tolist() == [1.0, 1.0, 1.0]
    err = np.abs(q * scales[:, None, None] - w)
    assert np.all(err <= scales[:, None, None] / 2 + 1e-7)
    assert np.abs(q).max() == 127


def test_sqnr_db():
    x = np.array([3.0, 4.0])
    assert arith.sqnr_db(x, x) == math.inf
    assert arith.sqnr_db(x, x + np.array([0.3, 0.4])) == pytest.approx(20.0)
