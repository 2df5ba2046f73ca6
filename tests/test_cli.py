"""The `modelblocks` command line: compile and verify real model files, check the written C against
PyTorch, and check exit codes and messages (in-process through cli.main, and as a subprocess)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import modelblocks
from modelblocks import cli
from modelblocks.api import rel_l2
from modelblocks.frontend.loader import import_file
from modelblocks.targets.host import CFLAGS, compiler

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"

MODEL_PY = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, n_in=8, n_hidden=16, num_classes=4):
            super().__init__()
            self.fc1 = nn.Linear(n_in, n_hidden)
            self.fc2 = nn.Linear(n_hidden, num_classes)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class CNN(nn.Module):
        def __init__(self, num_classes=3):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 6 * 6, num_classes)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            return self.fc(x.flatten(1))
    """)


@pytest.fixture()
def files(tmp_path):
    """model.py with MLP and CNN, an MLP state_dict (6 classes) and a CNN checkpoint dict."""
    (tmp_path / "model.py").write_text(MODEL_PY)
    module = import_file(tmp_path / "model.py")
    torch.manual_seed(0)
    mlp = module.MLP(num_classes=6)
    torch.save(mlp.state_dict(), tmp_path / "mlp.pth")
    cnn = module.CNN()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is exercised
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
    torch.save({"epoch": 7, "model_state_dict": cnn.state_dict()}, tmp_path / "cnn.pth")
    return {"dir": tmp_path, "module": module, "mlp": mlp.eval(), "cnn": cnn.eval()}


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_written_c(out: Path, prefix: str, inputs: list[np.ndarray], out_shapes: list[tuple]) -> list[np.ndarray]:
    """Build the C files written to `out` (as they are) into a shared library and run `<prefix>_run`."""
    c_files = sorted(p.name for p in out.glob("*.c"))
    lib = out / f"lib{prefix}_test.so"
    proc = subprocess.run([compiler(), *CFLAGS, "-fPIC", "-shared", "-o", lib.name, *c_files, "-lm"],
                          cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fn = getattr(ctypes.CDLL(str(lib)), f"{prefix}_run")
    fn.restype = ctypes.c_int
    ins = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
    outs = [np.zeros(s, np.float32) for s in out_shapes]
    assert fn(*[ctypes.c_void_p(a.ctypes.data) for a in ins + outs]) == 0
    lib.unlink()
    return outs


def test_compile_mlp_writes_c_that_matches_torch(files, capsys):
    d = files["dir"]
    out = d / "out"
    code, stdout, err = run(["compile", f"{d}/model.py:MLP", "--weights", d / "mlp.pth", "--init-args",
                             '{"num_classes": 6}', "--input-shape", "1,8", "-o", out], capsys)
    assert code == 0, err
    assert "verification passed" in stdout and "linear" in stdout and "fc1" in stdout
    assert "model.c" in stdout and "model.h" in stdout and "report.json" in stdout
    assert {"model.c", "model.h", "model_weights.c", "report.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "report.json").read_text())["inputs"]
    x = torch.randn(1, 8)
    expected = files["mlp"](x).detach().numpy()
    [got] = run_written_c(out, "model", [x.numpy()], [expected.shape])
    assert rel_l2(got, expected) < 1e-5
    [got_ir] = modelblocks.load(out).run_reference([x.numpy()])
    assert rel_l2(got_ir, expected) < 1e-5


def test_compile_cnn_checkpoint_prefix_and_section(files, capsys):
    d = files["dir"]
    out = d / "build" / "cnn"
    code, stdout, err = run(["compile", f"{d}/model.py:CNN", "--weights", d / "cnn.pth", "--input-shape",
                             "2,3,6,6", "-o", out, "--prefix", "net", "--arena-section", ".axisram",
                             "--no-verify"], capsys)
    assert code == 0, err
    assert "model_state_dict" in stdout  # tells which checkpoint entry it used
    assert "verification" not in stdout
    assert (out / "net.h").is_file() and "net_run" in (out / "net.h").read_text()
    assert ".axisram" in (out / "net.c").read_text()
    x = torch.randn(2, 3, 6, 6)
    expected = files["cnn"](x).detach().numpy()
    [got] = run_written_c(out, "net", [x.numpy()], [expected.shape])
    assert rel_l2(got, expected) < 1e-5
    [got_c] = modelblocks.load(out, prefix="net").run_c([x.numpy()])
    assert rel_l2(got_c, expected) < 1e-5


def test_compile_exported_program(tmp_path, files, capsys):
    cnn = files["cnn"]
    ep = torch.export.export(cnn, (torch.randn(1, 3, 6, 6),))
    torch.export.save(ep, tmp_path / "cnn.pt2")
    out = tmp_path / "out_ep"
    code, stdout, err = run(["compile", tmp_path / "cnn.pt2", "-o", out, "--runs", "2"], capsys)
    assert code == 0, err
    assert "verification passed" in stdout
    x = torch.randn(1, 3, 6, 6)
    [got] = run_written_c(out, "model", [x.numpy()], [(1, 3)])
    assert rel_l2(got, cnn(x).detach().numpy()) < 1e-5
    # --input-shape is optional for a .pt2, and checked when given
    code, _, err = run(["compile", tmp_path / "cnn.pt2", "-o", tmp_path / "bad", "--input-shape", "1,3,8,8"],
                       capsys)
    assert code == 2 and "[1, 3, 6, 6]" in err and "does not match" in err
    assert not (tmp_path / "bad").exists()


def test_verify_command_and_tolerance_exit_code(files, capsys):
    d = files["dir"]
    base = ["verify", f"{d}/model.py:MLP", "--weights", d / "mlp.pth", "--init-args", '{"num_classes": 6}',
            "--input-shape", "3,8", "--runs", "2", "--seed", "4"]
    code, stdout, err = run(base, capsys)
    assert code == 0, err
    assert "C rel L2" in stdout and "ref rel L2" in stdout and "output" in stdout and "ok" in stdout
    code, stdout, err = run(base + ["--tol", "1e-13"], capsys)
    assert code == 1
    assert "FAIL" in stdout and "verification FAILED" in stdout


def test_pickled_whole_model_needs_trust_pickle(tmp_path, capsys):
    (tmp_path / "pickled_net.py").write_text(MODEL_PY)
    module = import_file(tmp_path / "pickled_net.py")
    torch.manual_seed(1)
    model = module.MLP().eval()
    torch.save(model, tmp_path / "whole.pth")
    argv = ["compile", f"{tmp_path}/pickled_net.py:MLP", "--weights", tmp_path / "whole.pth",
            "--input-shape", "1,8", "-o", tmp_path / "out", "--no-verify"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "--trust-pickle" in err and "state_dict" in err
    assert not (tmp_path / "out").exists()
    code, stdout, err = run(argv + ["--trust-pickle"], capsys)
    assert code == 0, err
    x = torch.randn(1, 8)
    [got] = run_written_c(tmp_path / "out", "model", [x.numpy()], [(1, 4)])
    assert rel_l2(got, model(x).detach().numpy()) < 1e-5


def test_model_without_class_name_uses_the_only_class(tmp_path, capsys):
    (tmp_path / "single.py").write_text("import torch\n\nclass Net(torch.nn.Module):\n"
                                        "    def __init__(self):\n        super().__init__()\n"
                                        "        self.fc = torch.nn.Linear(4, 2)\n\n"
                                        "    def forward(self, x):\n        return torch.tanh(self.fc(x))\n")
    code, stdout, err = run(["compile", tmp_path / "single.py", "--input-shape", "1,4", "-o", tmp_path / "o",
                             "--runs", "1"], capsys)
    assert code == 0, err
    assert "freshly initialised" in stdout and "verification passed" in stdout


@pytest.mark.parametrize("argv, needle", [
    (["compile", "{d}/model.py:MLP", "--input-shape", "1,8", "-o", "{d}/o", "--prefix", "9bad"], "--prefix"),
    (["compile", "{d}/model.py:MLP", "--input-shape", "1,8", "--input-dtype", "float16", "-o", "{d}/o"],
     "float16"),
    (["compile", "{d}/model.py:MLP", "--input-shape", "1,8", "--input-shape", "1,8", "--input-dtype", "float32",
      "--input-dtype", "int64", "--input-dtype", "float32", "-o", "{d}/o"], "3 --input-dtype given for 2"),
    (["compile", "{d}/model.py:MLP", "-o", "{d}/o"], "--input-shape is required"),
    (["compile", "{d}/model.py:MLP", "--input-shape", "1,0", "-o", "{d}/o"], "positive"),
    (["verify", "{d}/model.py:MLP", "--input-shape", "1,8", "--runs", "0"], "--runs"),
    (["compile", "{d}/mlp.pth", "--input-shape", "1,8", "-o", "{d}/o"], "not a model definition"),
], ids=["bad-prefix", "bad-dtype", "dtype-count", "no-shape", "zero-dim", "zero-runs", "weights-as-model"])
def test_option_errors_exit_2(files, capsys, argv, needle):
    d = files["dir"]
    code, _, err = run([a.format(d=d) for a in argv], capsys)
    assert code == 2
    assert err.startswith("error: ") and needle in err and "Traceback" not in err
    assert not (d / "o").exists()


def test_refuses_to_replace_a_foreign_folder(files, capsys):
    d = files["dir"]
    folder = d / "project"
    folder.mkdir()
    (folder / "main.c").write_text("int main(void) { return 0; }\n")
    argv = ["compile", f"{d}/model.py:MLP", "--input-shape", "1,8", "-o", folder, "--no-verify"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "--force" in err
    assert (folder / "main.c").read_text() == "int main(void) { return 0; }\n"
    code, _, err = run(argv + ["--force"], capsys)
    assert code == 0, err
    assert not (folder / "main.c").exists() and (folder / "model.c").exists()


def test_internal_error_exit_3_with_traceback(monkeypatch, capsys):
    def boom(args):
        raise ZeroDivisionError("something deep")

    monkeypatch.setattr(cli, "cmd_verify", boom)
    code, _, err = run(["verify", "x.py:Net", "--input-shape", "1"], capsys)
    assert code == 3
    assert "internal error: ZeroDivisionError: something deep" in err
    assert "Traceback" in err and "report" in err


def test_usage_help_and_version(capsys):
    assert run(["--help"], capsys)[0] == 0
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and modelblocks.__version__ in out
    assert run([], capsys)[0] == 2
    code, _, err = run(["compile", "--bogus"], capsys)
    assert code == 2 and "usage" in err


def test_demo_calls_models_demo_run(tmp_path, monkeypatch, capsys):
    from modelblocks.models import demo

    calls = []
    monkeypatch.setattr(demo, "run", lambda out_dir: calls.append(out_dir) or 0)
    assert run(["demo", "--out", tmp_path / "demo"], capsys)[0] == 0
    assert calls == [str(tmp_path / "demo")]


def _subprocess(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([str(PYTHON if PYTHON.exists() else sys.executable), "-m", "modelblocks", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_subprocess_compile(files):
    d = files["dir"]
    proc = _subprocess(["compile", "model.py:CNN", "--weights", "cnn.pth", "--input-shape", "1,3,6,6",
                        "-o", "sub_out", "--runs", "1"], cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "verification passed" in proc.stdout and "wrote sub_out" in proc.stdout
    x = torch.randn(1, 3, 6, 6)
    [got] = run_written_c(d / "sub_out", "model", [x.numpy()], [(1, 3)])
    assert rel_l2(got, files["cnn"](x).detach().numpy()) < 1e-5
