"""The README's five-minute walk-through, run as written: the commands are read from the README, so
the page cannot drift from the tool, and the numbers it quotes are checked against what the
commands print now."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelblocks import cli
from modelblocks.targets.qemu import have_toolchain

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Five minutes: from a PyTorch model to firmware"

# what the README says the commands print (shapes fix the first three exactly; the rest depend on
# the trained weights, which may differ in the last bits from one machine's float arithmetic to another)
WEIGHTS_BYTES, ARENA_BYTES, ARENA_NO_REUSE = 6_612, 10_240, 21_492
INSTRUCTIONS, OUTPUT_SQNR_DB, FIRMWARE_FLASH = 1_589_678, 37.0, 26_192


def walkthrough_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                commands.append(shlex.split(line))
    return commands


def test_the_readme_quotes_the_numbers_this_test_checks():
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION):]
    for number in (f"{WEIGHTS_BYTES:,} B", f"{ARENA_BYTES:,} B", f"{ARENA_NO_REUSE:,} B", f"{INSTRUCTIONS:,}",
                   f"{OUTPUT_SQNR_DB:.1f} dB", f"{FIRMWARE_FLASH:,} B"):
        assert number in section, number
    programs = [c[0] for c in walkthrough_commands()]
    assert programs == ["python", "modelblocks", "modelblocks", "modelblocks", "modelblocks", "make", "modelblocks"]


@pytest.mark.skipif(not have_toolchain() and not os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"),
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_the_walkthrough_runs_and_prints_what_the_readme_says(tmp_path, monkeypatch, capsys):
    for name in ("net.py", "train.py"):
        shutil.copy(REPO / "examples" / "quickstart" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    results = {}
    for argv in walkthrough_commands():
        if argv[0] == "python":
            proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
            accuracy = float(re.search(r"accuracy ([\d.]+) %", proc.stdout).group(1))
            assert accuracy > 90.0, proc.stdout
        elif argv[0] == "modelblocks":
            code = cli.main([*argv[1:], "--json"])
            out, err = capsys.readouterr()
            assert code == cli.EXIT_OK, err
            results[argv[1]] = json.loads(out)
        # `make -C out/stm32h723zg flash` needs the board: the firmware build itself is checked below

    verify = results["verify"]
    assert verify["ok"] and verify["outputs"][0]["rel_l2_c"] < 1e-5 and verify["outputs"][0]["rel_l2_ref"] < 1e-5

    analyze = results["analyze"]["report"]
    assert (analyze["weights_bytes"], analyze["arena_bytes"], analyze["arena_naive_bytes"]) == \
        (WEIGHTS_BYTES, ARENA_BYTES, ARENA_NO_REUSE)
    assert analyze["arena_bytes"] == analyze["arena_lower_bound"]
    assert results["analyze"]["verdict"]["fits"] and results["analyze"]["verdict"]["arena_region"] == "DTCM"

    (m7,) = results["simulate"]["targets"]
    assert m7["ok"] and all(check["exact_ref"] and check["exact_host"] for check in m7["checks"])
    assert abs(m7["instructions"] / INSTRUCTIONS - 1) < 0.01

    compiled = results["compile"]
    quantization = compiled["quantization"]
    assert abs(quantization["output_sqnr_db"][0] - OUTPUT_SQNR_DB) < 3.0
    assert quantization["top1_agreement"] > 0.97
    assert compiled["verification"]["outputs"][0]["exact_c_ref"]
    firmware = compiled["target"]
    assert abs(firmware["sizes"]["flash"] / FIRMWARE_FLASH - 1) < 0.02
    for produced in ("model.c", "model.h", "model_weights.c", "report.json", "quantization.json"):
        assert (tmp_path / "out" / produced).is_file(), produced
    assert Path(firmware["elf"]).is_file() and Path(firmware["bin"]).stat().st_size > WEIGHTS_BYTES

    page = results["report"]
    assert page["fit"]["flash"]["weights"] == WEIGHTS_BYTES and page["timeline"]["peak_bytes"] == ARENA_BYTES
    assert page["verification"]["ok"] and page["fit"]["fits"]
    assert abs(page["totals"]["instructions"] / INSTRUCTIONS - 1) < 0.01
    assert [q["precision"] for q in page["quantization"]["layers"]].count("int8") == len(page["quantization"]["layers"])
    assert (tmp_path / "report.html").stat().st_size > 20_000
