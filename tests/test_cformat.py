"""Floats in generated C must read back bit for bit (the field's classic bug: '%f' turns 1e-7 into 0)."""

import subprocess

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from modelblocks.backend.c.cformat import array_body, c_identifier, float_literal, int_literal
from modelblocks.targets.host import CFLAGS, compiler

EDGE = [0.0, -0.0, 1e-7, -1e-7, 1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38, 0.1, 1 / 3, np.pi,
        16777217.0, 2.0**-126, 2.0**-149, 123456.789, 1.0, -1.0, 65504.0]


def _finite_float32(rng, n):
    bits = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    return values[np.isfinite(values)]


def test_float_literals_round_trip_through_gcc(tmp_path):
    rng = np.random.default_rng(0)
    values = np.concatenate([np.array(EDGE, dtype=np.float32), _finite_float32(rng, 3000)])
    src = tmp_path / "floats.c"
    src.write_text(
        "#include <stdio.h>\n#include <stdint.h>\n#include <string.h>\n#include <math.h>\n"
        f"static const float v[{values.size}] = {{\n{array_body(values)}\n}};\n"
        "int main(void) { for (unsigned i = 0; i < sizeof v / sizeof v[0]; ++i) { uint32_t b; "
        "memcpy(&b, &v[i], 4); printf(\"%08x\\n\", (unsigned)b); } return 0; }\n")
    exe = tmp_path / "floats"
    subprocess.run([compiler(), *CFLAGS, "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    got = np.array([int(h, 16) for h in out], dtype=np.uint32)
    np.testing.assert_array_equal(got, values.view(np.uint32))


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float_literal_parses_back_in_python(x):
    text = float_literal(x)
    assert text.endswith("f")
    assert np.float32(float(text[:-1])).tobytes() == np.float32(x).tobytes()


def test_special_values_and_identifiers():
    assert float_literal(float("inf")) == "INFINITY"
    assert float_literal(float("-inf")) == "-INFINITY"
    assert float_literal(float("nan")) == "NAN"
    assert float_literal(1.0) == "1.0f"
    assert float_literal(1e-7) == "1e-07f"
    assert int_literal(-(2**31)) == "(-2147483647 - 1)"
    assert c_identifier("blocks.0.attn/qkv") == "blocks_0_attn_qkv"
    assert c_identifier("0weight") == "t_0weight"
