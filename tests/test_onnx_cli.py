"""ONNX files on the command line (compile, verify, simulate, analyze) and the reference they are
verified against: onnxruntime, or onnx's own evaluator when onnxruntime is absent. Plus the
progress callback the API gives the CLI's progress bars."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from modelblocks import api, cli
from modelblocks.frontend import onnx_reference
from modelblocks.frontend.loader import load_model
from modelblocks.metrics import rel_l2
from modelblocks.targets.qemu import have_toolchain

NEEDS_M7 = pytest.mark.skipif(not have_toolchain() and not os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"),
                              reason="arm-none-eabi-gcc / qemu-system-arm not installed")


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def _export(tmp_path, name="net.onnx", dynamic_batch=True) -> tuple[nn.Module, str]:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with torch.no_grad():  # BN with non-trivial statistics, so folding it is really tested
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / name
    torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}} if dynamic_batch else None)
    return model, str(path)


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_an_onnx_file_against_onnxruntime(tmp_path, capsys):
    model, path = _export(tmp_path)
    code, out, err = run(["verify", path, "--input-shape", "2,3,8,8", "--runs", "3", "--json"], capsys)
    assert code == cli.EXIT_OK, err
    doc = json.loads(out)
    assert doc["reference"] == "onnxruntime" and doc["ok"] is True
    (row,) = doc["outputs"]
    assert row["rel_l2_c"] < 1e-5 and row["rel_l2_ref"] < 1e-5
    # the same numbers against PyTorch, the model the ONNX file came from
    compiled = api.compile(path, (torch.randn(2, 3, 8, 8),))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    assert rel_l2(compiled.run_c([x.numpy()])[0], expected) < 1e-5


def test_compile_an_onnx_file_writes_c_that_matches_onnxruntime(tmp_path, capsys):
    _model, path = _export(tmp_path, dynamic_batch=False)
    out_dir = tmp_path / "out"
    code, out, err = run(["compile", path, "-o", out_dir, "--json"], capsys)
    assert code == cli.EXIT_OK, err
    doc = json.loads(out)
    assert doc["ok"] is True and "model.c" in doc["files"]
    report = json.loads((out_dir / "report.json").read_text())
    assert [layer["op"] for layer in report["layers"]][:1] == ["conv"]  # BN folded into the conv
    assert report["params"] == 3 * 8 * 9 + 8 + 8 * 16 * 5 + 5


def test_onnx_cli_errors_name_the_input_and_the_fix(tmp_path, capsys):
    _model, path = _export(tmp_path)
    code, _, err = run(["verify", path], capsys)  # dynamic batch, no --input-shape
    assert code == cli.EXIT_USER_ERROR
    assert "input 'image'" in err and "dynamic" in err and "--input-shape 1,3,8,8" in err
    code, _, err = run(["verify", path, "--input-shape", "1,3,9,8"], capsys)
    assert code == cli.EXIT_USER_ERROR and "does not match input 'image'" in err and "[batch, 3, 8, 8]" in err
    code, _, err = run(["verify", path, "-s", "1,3,8,8", "-s", "1,3,8,8"], capsys)
    assert code == cli.EXIT_USER_ERROR and "2 --input-shape given" in err and "1 input(s) (image)" in err
    code, _, err = run(["compile", path, "--weights", "w.pth", "-o", tmp_path / "o"], capsys)
    assert code == cli.EXIT_USER_ERROR and "already holds its weights" in err
    code, _, err = run(["verify", path, "-s", "1,3,8,8", "--input-dtype", "int64"], capsys)
    assert code == cli.EXIT_USER_ERROR and "which is float32" in err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(open(path, "rb").read()[:200])
    code, _, err = run(["verify", broken, "-s", "1,3,8,8"], capsys)
    assert code == cli.EXIT_USER_ERROR and "broken.onnx" in err and "not a readable ONNX model" in err
    code, _, err = run(["study", path, "--data", tmp_path / "none.npz", "-o", tmp_path / "s"], capsys)
    assert code == cli.EXIT_USER_ERROR


def test_loader_gives_example_inputs_of_the_declared_shapes_and_types(tmp_path):
    _model, path = _export(tmp_path)
    loaded = load_model(path, input_shapes=["4,3,8,8"])
    assert loaded.model == path
    (x,) = loaded.example_inputs
    assert tuple(x.shape) == (4, 3, 8, 8) and x.dtype == torch.float32
    (spec,) = onnx_reference.graph_inputs(__import__("onnx").load(path))
    assert spec.name == "image" and spec.dims == ["batch", 3, 8, 8] and spec.dtype == np.float32


def test_both_reference_engines_agree_with_pytorch(tmp_path, monkeypatch):
    model, path = _export(tmp_path)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    ort = onnx_reference.OnnxReference(path)
    assert ort.engine == "onnxruntime"
    (got_ort,) = ort(x)
    monkeypatch.setattr(onnx_reference, "_have_onnxruntime", lambda: False)
    fallback = onnx_reference.OnnxReference(path)
    assert fallback.engine == "onnx.reference"
    (got_ref,) = fallback(x.numpy())
    assert rel_l2(got_ort.numpy(), expected) < 1e-5
    assert rel_l2(got_ref.numpy(), expected) < 1e-5
    # verify() with the fallback engine still holds the C to 1e-5
    compiled = api.compile(path, (x,))
    compiled.torch_model = fallback
    (result,) = api.verify(compiled, (x,), runs=2, print_table=False)
    assert compiled.reference_name == "onnx.reference"
    assert result.rel_l2_c < 1e-5 and result.rel_l2_ref < 1e-5


def test_progress_hears_every_calibration_set_and_verify_run():
    torch.manual_seed(1)
    model = SmallCNN().eval()
    x = torch.randn(1, 3, 8, 8)
    calls = []
    compiled = api.compile(model, (x,), quantize="int8", calibration=np.random.randn(7, 3, 8, 8).astype(np.float32),
                           progress=lambda step, done, total: calls.append((step, done, total)))
    calibrating = [(d, t) for s, d, t in calls if s == "calibrating"]
    assert calibrating == [(k, 7) for k in range(7)]
    steps = [s for s, _, _ in calls]
    assert steps.index("capturing the model (torch.export)") < steps.index("calibrating") \
        < steps.index("quantizing to int8") < steps.index("planning memory and generating C")
    assert all(0 <= d <= t for _, d, t in calls)
    runs = []
    api.verify(model, (x,), runs=4, compiled=compiled, print_table=False,
               progress=lambda step, done, total: runs.append((done, total)))
    assert runs == [(k, 4) for k in range(4)]


@NEEDS_M7
def test_simulate_an_onnx_file_on_the_m7(tmp_path, capsys):
    _model, path = _export(tmp_path, dynamic_batch=False)
    code, out, err = run(["simulate", path, "--runs", "2", "--json"], capsys)
    assert code == cli.EXIT_OK, err
    doc = json.loads(out)
    (target,) = doc["targets"]
    assert target["cpu"] == "cortex-m7"
    # every output of QEMU within 1e-5 of onnxruntime and of the interpreter
    assert all(check["ok"] for check in target["checks"]), target["checks"]
    macs = 8 * 64 * 27 + 8 * 16 * 4 + 5 * 128  # conv, the 2x2 max-pool's window reads, linear
    assert doc["macs"] == macs
    assert 1.0 < target["instructions"] / macs < 10.0


def test_the_html_report_of_an_onnx_file_compares_with_onnxruntime(tmp_path, capsys):
    _model, path = _export(tmp_path, dynamic_batch=False)
    code, out, err = run(["report", path, "-o", tmp_path / "r.html", "--runs", "2", "--json"], capsys)
    assert code == cli.EXIT_OK, err
    verification = json.loads(out)["verification"]
    assert verification["stages"][0] == "onnxruntime" and verification["ok"]
    (row,) = verification["outputs"]
    assert row["cells"]["host_vs_torch"]["rel_l2"] < 1e-5 and row["cells"]["ref_vs_torch"]["rel_l2"] < 1e-5
    assert "host C (gcc) vs onnxruntime" in (tmp_path / "r.html").read_text()
