"""Every bank model's generated C, float32 and int8, under strict flags (-std=c99 -Wall -Wextra -Werror
-pedantic) with gcc and clang at -O2 (and -O0 for a few): float32 within 1e-5 of PyTorch, int8 bit-exact
with the NumPy interpreter, the two compilers within 1e-6 of each other (int8: identical), and ASan+UBSan
clean (-fno-sanitize-recover=all: any report fails the run)."""

import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import modelblocks
from bank_models import BANK
from helpers import outputs_of
from modelblocks.api import rel_l2
from modelblocks.targets.host import CFLAGS, SANITIZE, HostLibrary, run_sanitized

# Every bank row in float32 and in int8 (all 16 rows quantize). gcc -O2 and clang -O2 everywhere, clang
# ASan+UBSan everywhere; the -O0 builds only for a CNN and an RNN in both dtypes and a transformer in
# float32, the kernel families, to stay within the time budget (gcc's own ASan run of every float row is
# in test_model_bank.py).
ROWS = [(row, q) for row in sorted(BANK) for q in (None, "int8")]
FULL_MATRIX = {("04_conv_relu_bn_linear", None), ("04_conv_relu_bn_linear", "int8"), ("13_lstm_classifier", None),
               ("13_lstm_classifier", "int8"), ("12_vit_6_outputs", None)}
CLANG_MISSING = "clang missing: apt-get install --no-install-recommends clang libclang-rt-14-dev (make install does)"


def _compilers() -> list[str]:
    if shutil.which("clang"):
        return ["gcc", "clang"]
    if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
        pytest.fail(CLANG_MISSING)
    return ["gcc"]


def _float_only(graph, name: str) -> bool:
    """True when tensor `name` and everything it is computed from are float32 (no int8 on its path)."""
    producers = graph.producers()
    todo, seen = [name], set()
    while todo:
        t = todo.pop()
        if t in seen or t not in graph.tensors:
            continue
        seen.add(t)
        if not graph.tensors[t].dtype.is_float:
            return False
        if t in producers:
            todo.extend(producers[t].inputs)
    return True


def test_host_flags_are_strict():
    for flag in ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"):
        assert flag in CFLAGS
    assert "-fno-sanitize-recover=all" in SANITIZE


@pytest.mark.parametrize("row, quantize", ROWS, ids=[f"{r}-{q or 'float32'}" for r, q in ROWS])
def test_gcc_and_clang_agree(row, quantize):
    model, inputs, _ = BANK[row]()
    arrays = [x.numpy() for x in inputs]
    options = {"quantize": "int8", "calibration": inputs[0]} if quantize else {}
    compiled = modelblocks.compile(model, inputs, **options)
    reference = compiled.run_reference(arrays)
    expected = outputs_of(model, inputs)
    compilers = _compilers()
    builds = {(cc, opt): HostLibrary(compiled.source, compiled.graph, cc=cc, extra_flags=[opt]).run(arrays)
              for cc in compilers for opt in (("-O0", "-O2") if (row, quantize) in FULL_MATRIX else ("-O2",))}
    first = builds["gcc", "-O2"]
    # int8 outputs are the interpreter's, bit for bit, whatever the compiler; an output computed in
    # float32 only (in an int8 model: the GRU's hidden state, no int8 kernel on its path) is checked
    # as a float output, because libm and NumPy may round tanh/exp differently in the last bit
    exact = [bool(quantize) and not _float_only(compiled.graph, name) for name in compiled.graph.outputs]
    assert any(exact) or not quantize, "int8 requested but no output is computed in int8"
    for (cc, opt), got in builds.items():
        for k, (g, f, r, e) in enumerate(zip(got, first, reference, expected)):
            if exact[k]:
                np.testing.assert_array_equal(g, r, err_msg=f"{cc} {opt} output {k}")
            else:
                assert rel_l2(g, e) < 1e-5, f"{cc} {opt} output {k}: rel L2 to PyTorch {rel_l2(g, e):.2e}"
                assert rel_l2(g, f) < 1e-6, f"{cc} {opt} output {k} differs from gcc -O2: {rel_l2(g, f):.2e}"
    sanitized = run_sanitized(compiled.source, compiled.graph, arrays, cc=compilers[-1])
    for k, (s, r, e) in enumerate(zip(sanitized, reference, expected)):
        if exact[k]:
            np.testing.assert_array_equal(s, r, err_msg=f"sanitized output {k}")
        else:
            assert rel_l2(s, e) < 1e-5, f"sanitized output {k}: rel L2 to PyTorch {rel_l2(s, e):.2e}"
    if len(compilers) == 1:
        pytest.skip(f"gcc checked; {CLANG_MISSING}")


def test_sanitizer_report_fails_the_run():
    """The sanitized build really stops on undefined behaviour: the run function patched to overflow a
    signed int must raise with UBSan's report (-fno-sanitize-recover), not return numbers."""
    model, inputs, _ = BANK["01_linear"]()
    compiled = modelblocks.compile(model, inputs)
    source = compiled.source
    c_name = f"{source.prefix}.c"
    marker = "return 0;\n}"
    assert source.files[c_name].count(marker) == 1
    overflow = "{ volatile int32_t big = INT32_MAX; big += (int32_t)(input[0] > -1e30f); (void)big; }\n    "
    bad = dataclasses.replace(source, files={**source.files, c_name: source.files[c_name].replace(marker, overflow + marker)})
    with pytest.raises(RuntimeError, match="signed integer overflow"):
        run_sanitized(bad, compiled.graph, [x.numpy() for x in inputs], cc=_compilers()[-1])


# Regression: a constant output of 16 bytes or more is copied from the weights with memcpy, which clang
# -O2 inlines with aligned SSE loads (movaps) when the declaration in weights.h promises the x86-64 ABI's
# 16-byte alignment of global arrays; the definitions are aligned(8), so the declarations now say so too.
# Found by running tests/ops with CC=clang (test_int64_index_input crashed its worker).
CONSTANT_OUTPUT = """
import sys
import numpy as np
import torch
import modelblocks
from modelblocks.targets.host import HostLibrary

class Net(torch.nn.Module):
    def forward(self, x):
        return x * 2, torch.zeros_like(x)

x = torch.randn(2, 5)
compiled = modelblocks.compile(Net(), (x,))
got = HostLibrary(compiled.source, compiled.graph, cc="clang", extra_flags=["-O2"]).run([x.numpy()])
np.save(sys.argv[1], np.stack([x.numpy(), *got]))
"""


def test_clang_copies_a_constant_output(tmp_path):
    if "clang" not in _compilers():
        pytest.skip(CLANG_MISSING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", CONSTANT_OUTPUT, str(tmp_path / "out.npy")], env=env,
                          capture_output=True, text=True, timeout=120)  # a crash must not take pytest down
    assert done.returncode == 0, f"clang -O2 build crashed (exit {done.returncode}): {done.stderr[-2000:]}"
    x, doubled, zeros = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(doubled, 2 * x)  # exact: doubling a float does not round
    np.testing.assert_array_equal(zeros, np.zeros((2, 5), np.float32))
