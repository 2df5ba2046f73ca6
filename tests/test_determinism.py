"""Deterministic output (issue 9): the same model and options give byte-identical files and --json
across Python processes with different PYTHONHASHSEED (set and dict orders, hashes of names).

Each process runs `modelblocks compile ... --json` (cli.main, the command's code path) for four
models: a float CNN, an int8 CNN calibrated on an .npy file, a small transformer and an LSTM."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

MODEL_PY = textwrap.dedent("""\
    import torch
    from torch import nn


    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 4 * 4, 3)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return self.fc(x.flatten(1))


    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))


    class RNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.fc(y[:, -1])
    """)

RUNS = {
    "cnn": ["model.py:CNN", "-s", "1,1,8,8"],
    "cnn_int8": ["model.py:CNN", "-s", "1,1,8,8", "-q", "int8", "--calibration", "calib.npy"],
    "transformer": ["model.py:Tiny", "-s", "1,5,16"],
    "lstm": ["model.py:RNN", "-s", "1,4,6"],
}

DRIVER = textwrap.dedent("""\
    import contextlib, json, sys
    import torch
    from modelblocks import cli
    runs = json.loads(sys.argv[1])
    for name, argv in runs.items():
        torch.manual_seed(0)  # the same fresh weights in every process
        with open(f"{name}.json", "w") as out, contextlib.redirect_stdout(out):
            code = cli.main(["compile", *argv, "-o", f"out_{name}", "--json", "--runs", "1"])
        assert code == 0, (name, code)
    """)


def _run(folder: Path, hashseed: str) -> None:
    import json  # noqa: PLC0415

    env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(RUNS)], cwd=folder, env=env,
                          capture_output=True, timeout=300, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folders = []
    procs = []
    for seed in ("1", "4242"):
        folder = tmp_path_factory.mktemp(f"seed{seed}")
        (folder / "model.py").write_text(MODEL_PY)
        np.save(folder / "calib.npy", np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32))
        folders.append(folder)
    import concurrent.futures  # noqa: PLC0415

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        procs = [pool.submit(_run, f, s) for f, s in zip(folders, ("1", "4242"))]
        for p in procs:
            p.result()
    return [_files(f) for f in folders]


def test_every_written_file_is_byte_identical(two_runs):
    a, b = two_runs
    assert sorted(a) == sorted(b)
    for name in RUNS:  # every model wrote its C, headers, IR and reports
        assert f"out_{name}/model.c" in a and f"out_{name}/report.json" in a and f"out_{name}/ir/model.json" in a
    assert "out_cnn_int8/quantization.json" in a
    differ = [path for path in a if a[path] != b[path]]
    assert differ == []


def test_the_json_output_names_no_run_specific_paths(two_runs):
    a, _ = two_runs
    for name in RUNS:
        text = a[f"{name}.json"].decode()
        assert "/tmp" not in text and "seed1" not in text
