"""The generated C: its API, comments, macros, kernel selection and edge cases of storage."""

import re
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
import modelblocks.errors
from helpers import check_model, op_model
from modelblocks.targets.host import CFLAGS, compiler


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.conv = nn.Conv1d(2, 5, 3)

    def forward(self, a, b):
        return self.conv(b).relu(), torch.tanh(self.fc(a))


def test_api_macros_and_comments():
    torch.manual_seed(0)
    a, b = torch.randn(2, 4), torch.randn(1, 2, 9)
    res = check_model(TwoInTwoOut(), (a, b), sanitize=False)
    files = res["compiled"].source.files
    header, body = files["model.h"], files["model.c"]
    assert "int model_run(const float *a, const float *b, float *out0, float *out1);" in header
    assert f"#define MODEL_ARENA_BYTES {res['compiled'].source.arena_bytes}" in header
    assert "#define MODEL_INPUT1_SHAPE {1, 2, 9}" in header
    assert "#define MODEL_OUTPUT0_SIZE 35" in header
    assert "#define MODEL_OUTPUT1_RANK 2" in header
    # one commented call per layer: op, module path, shapes, source line
    assert re.search(r"/\* \[\d+\] conv  conv  \(1,2,9\), \(5,2,3\), \(5\) -> \(1,5,7\)  test_backend\.py:\d+ \*/", body)
    assert re.search(r"/\* \[\d+\] linear  fc  \(2,4\), \(3,4\), \(3\) -> \(2,3\)  test_backend\.py:\d+ \*/", body)
    # only the kernels used are shipped
    kernels = sorted(n for n in files if n.startswith("mb_"))
    assert kernels == ["mb_common.h", "mb_conv.c", "mb_conv.h", "mb_linear.c", "mb_linear.h", "mb_unary.c", "mb_unary.h"]
    assert "malloc" not in "".join(files.values())


def test_weights_are_const_and_exact():
    model = nn.Linear(3, 2).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1e-7, -0.0, 3.4028235e38], [0.1, 1 / 3, -2.5]]))
        model.bias.copy_(torch.tensor([1e-45, 7.0]))
    compiled = modelblocks.compile(model, (torch.zeros(1, 3),))
    weights = compiled.source.files["model_weights.c"]
    assert "const float model_weight[6] MODEL_WEIGHT_ALIGN = {" in weights
    assert "1e-07f" in weights and "-0.0f" in weights and "3.4028235e+38f" in weights and "1e-45f" in weights


def test_model_without_input_dependence_compiles():
    res = check_model(op_model(lambda x: torch.ones_like(x) * 2.0), torch.randn(2, 3), sanitize=True)
    assert re.search(r"\(void\)xs_0;", res["compiled"].source.files["model.c"])


def test_arena_section_and_strict_flags(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    compiled = modelblocks.compile(model, (torch.randn(1, 8),), name="net", arena_section=".dtcm_bss")
    compiled.source.write(tmp_path)
    assert '#define NET_ARENA_ATTR __attribute__((section(".dtcm_bss")))' in compiled.source.files["net.c"]
    obj = tmp_path / "net.o"
    subprocess.run([compiler(), *CFLAGS, "-c", "net.c", "-o", str(obj)], cwd=tmp_path, check=True)
    sections = subprocess.run(["objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    assert ".dtcm_bss" in sections
    x = torch.randn(1, 8)
    np.testing.assert_allclose(compiled.run_c([x.numpy()])[0], model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_outputs_are_written_in_place_and_views_share_storage():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    res = check_model(model, torch.randn(1, 1, 6, 6), sanitize=False)
    compiled = res["compiled"]
    body = compiled.source.files["model.c"]
    assert "mb_linear_f32(" in body and ", out0, 1, 64, 3," in body  # the last layer writes the caller's buffer
    assert "memcpy" not in body
    # conv output (64 floats) is the only arena buffer: the flatten view shares it
    assert compiled.source.arena_bytes == 256


def test_rank_limit_is_the_same_in_python_and_c():
    from pathlib import Path

    from modelblocks.backend.c.emitter import KERNEL_DIR
    from modelblocks.ops.registry import MAX_RANK

    common = Path(KERNEL_DIR, "mb_common.h").read_text()
    assert f"#define MB_MAX_RANK {MAX_RANK}\n" in common
    with pytest.raises(modelblocks.errors.UnsupportedOpError, match="exceeds 8"):
        modelblocks.compile(op_model(lambda a, b: a + b), (torch.randn([2] * 9), torch.randn([2] * 9)))


def test_arena_alignment_is_selectable(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 7), nn.Sigmoid(), nn.Linear(7, 2)).eval()
    compiled = modelblocks.compile(model, (torch.randn(1, 8),), arena_alignment=64)
    offsets = compiled.source.offsets
    assert offsets and all(off % 64 == 0 for off in offsets.values())
    assert "MB_ALIGNED(64)" in compiled.source.files["model.c"]
    check_model(model, (torch.randn(1, 8),), compiled=compiled, sanitize=False)
    compiled.source.write(tmp_path)
    subprocess.run([compiler(), *CFLAGS, "-c", "model.c", "-o", "model.o"], cwd=tmp_path, check=True)
    headers = subprocess.run(["objdump", "-h", "model.o"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    bss = next(line for line in headers.splitlines() if " .bss " in line)
    assert bss.split()[-1] == "2**6"  # the arena's section is 64-byte aligned
    with pytest.raises(modelblocks.errors.InputError, match="power of two"):
        modelblocks.compile(model, (torch.randn(1, 8),), arena_alignment=24)
