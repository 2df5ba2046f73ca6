"""Deterministic output (issue 9): the same model and options give byte-identical files and --json
across Python processes with different PYTHONHASHSEED (set and dict orders, hashes of names).

Each process runs `modelblocks compile ... --json` (cli.main, the command's code path) for four
models: a float CNN, an int8 CNN calibrated on an .npy file, a small transformer and an LSTM.
The target builds (`--target stm32h723zg`: the firmware project, its objects, ELF, map, .bin and
.hex; `--target cortex-m7`: the QEMU harness ELF) are also built twice, in folders of different
names and depths, and must be byte-identical too: no build path or time stamp in any file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

FIRMWARE_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "make")
APT = "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi make"

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


# the target builds: a float and an int8 firmware project, and the Cortex-M7 simulation ELF
TARGET_RUNS = {
    "fw_cnn": [*RUNS["cnn"], "--target", "stm32h723zg"],
    "fw_cnn_int8": [*RUNS["cnn_int8"], "--target", "stm32h723zg"],
    "m7_cnn": [*RUNS["cnn"], "--target", "cortex-m7"],
}


def _run(folder: Path, hashseed: str, runs: dict | None = None) -> None:
    import json  # noqa: PLC0415

    env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs or RUNS)], cwd=folder, env=env,
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


@pytest.fixture(scope="module")
def two_target_builds(tmp_path_factory):
    missing = [t for t in FIRMWARE_TOOLS if not shutil.which(t)]
    if missing:
        message = f"{', '.join(missing)} missing: {APT}"
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)
    # different names and depths: a path in the debug information would change string offsets and sizes
    folders = [tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("builds") / "somewhere" / "else_entirely"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.py").write_text(MODEL_PY)
        np.save(folder / "calib.npy", np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32))
    import concurrent.futures  # noqa: PLC0415

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for p in [pool.submit(_run, f, s, TARGET_RUNS) for f, s in zip(folders, ("1", "4242"))]:
            p.result()
    return folders, [_files(f) for f in folders]


def test_target_builds_are_byte_identical_in_any_folder(two_target_builds):
    folders, (a, b) = two_target_builds
    assert sorted(a) == sorted(b)
    for name in ("fw_cnn", "fw_cnn_int8"):  # the whole firmware, built: objects, ELF, map, flash images
        fw = f"out_{name}/stm32h723zg"
        for path in ("Makefile", "link.ld", "fw_startup.c", "main.c", "model/model.c", "build/obj/main.o",
                     "build/model.elf", "build/model.map", "build/model.bin", "build/model.hex"):
            assert f"{fw}/{path}" in a, path
    assert "out_m7_cnn/cortex-m7/model.elf" in a
    assert a["out_fw_cnn/stm32h723zg/build/model.bin"] != a["out_fw_cnn_int8/stm32h723zg/build/model.bin"]
    differ = [path for path in a if a[path] != b[path]]
    assert differ == []
    for path, data in a.items():  # the cause, named: no file holds the folder it was built in
        for folder in folders:
            assert str(folder).encode() not in data, f"{path} names its build folder {folder}"
