"""`modelblocks compile|verify --quantize ...` on model files: the written int8 C equals the int8
reference bit for bit, the quantization report is printed and saved, and bad options are named."""

from __future__ import annotations

import ctypes
import json
import subprocess
import textwrap

import numpy as np
import pytest
import torch

import modelblocks
from modelblocks import cli
from modelblocks.frontend.loader import import_file
from modelblocks.targets.host import CFLAGS, compiler

MODEL_PY = textwrap.dedent("""\
    import torch
    from torch import nn


    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 6, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
    """)


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_PY)
    module = import_file(tmp_path / "model.py")
    torch.manual_seed(0)
    cnn = module.CNN().eval()
    torch.save(cnn.state_dict(), tmp_path / "cnn.pth")
    calib = torch.randn(40, 1, 8, 8).numpy()
    np.savez(tmp_path / "calib.npz", calib)
    (tmp_path / "calib_fn.py").write_text("import numpy as np\n\ndef batches():\n"
                                          "    rng = np.random.default_rng(0)\n"
                                          "    return [rng.normal(size=(8, 1, 8, 8)).astype(np.float32) for _ in range(3)]\n")
    return tmp_path, cnn, calib


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _run_written_c(out, x, n_out):
    c_files = sorted(p.name for p in out.glob("*.c"))
    lib = out / "libq_test.so"
    subprocess.run([compiler(), *CFLAGS, "-fPIC", "-shared", "-o", lib.name, *c_files, "-lm"], cwd=out, check=True)
    fn = ctypes.CDLL(str(lib)).model_run
    y = np.zeros((1, n_out), np.float32)
    fn(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data))
    lib.unlink()
    return y


def test_compile_int8_writes_bit_exact_c_and_a_report(files, capsys):
    d, cnn, calib = files
    out = d / "out"
    code, stdout, err = run(["compile", f"{d}/model.py:CNN", "-w", d / "cnn.pth", "-s", "1,1,8,8", "-o", out,
                             "--quantize", "int8", "--calibration", d / "calib.npz"], capsys)
    assert code == 0, err
    assert "bit for bit" in stdout and "top-1 agreement" in stdout and "SQNR" in stdout
    report = json.loads((out / "quantization.json").read_text())
    assert report["mode"] == "int8" and report["samples"] == 40
    assert report["weights_bytes"] * 3 < report["weights_bytes_float"]
    x = calib[:1].copy()
    compiled = modelblocks.load(out)
    assert {"q_conv", "q_linear"} <= set(compiled.graph.ops_count())
    np.testing.assert_array_equal(_run_written_c(out, x, 5), compiled.run_reference([x])[0])


def test_verify_int8_with_a_calibration_function_and_keep_float(files, capsys):
    d, cnn, calib = files
    code, stdout, err = run(["verify", f"{d}/model.py:CNN", "-w", d / "cnn.pth", "-s", "1,1,8,8", "--quantize",
                             "int8", "--calibration", f"{d}/calib_fn.py:batches", "--keep-float", "fc",
                             "--observer", "minmax"], capsys)
    assert code == 0, err
    assert "verification passed" in stdout


def test_compile_int8_weights(files, capsys):
    d, cnn, calib = files
    out = d / "w8"
    code, stdout, err = run(["compile", f"{d}/model.py:CNN", "-w", d / "cnn.pth", "-s", "1,1,8,8", "-o", out,
                             "--quantize", "int8-weights"], capsys)
    assert code == 0, err
    assert "int8-weights reference" in stdout
    report = json.loads((out / "quantization.json").read_text())
    assert report["mode"] == "int8-weights" and report["output_sqnr_db"][0] > 30


@pytest.mark.parametrize("extra, message", [
    (["--quantize", "int8"], "needs --calibration"),
    (["--calibration", "x.npz"], "need --quantize"),
    (["--quantize", "int8", "--calibration", "nothere.npz"], "does not exist"),
    (["--quantize", "int8", "--calibration", "CALIB", "--keep-float", "blocks.*"], "matches no layer"),
])
def test_bad_quantize_options_exit_2_with_the_cause(files, capsys, extra, message):
    d, cnn, calib = files
    extra = [str(d / "calib.npz") if e == "CALIB" else e for e in extra]
    code, stdout, err = run(["verify", f"{d}/model.py:CNN", "-w", d / "cnn.pth", "-s", "1,1,8,8", *extra], capsys)
    assert code == 2
    assert message in err + stdout
