"""Memory analysis: live bytes per step against hand counts and an independent recount over the
plan's buffers, totals that add up, the fit verdict against built-in and custom boards, the
`modelblocks analyze` command (exit codes, JSON, compiled folders) and the arena plot."""

from __future__ import annotations

import json
import struct

import pytest
import torch
import torch.nn as nn

from bank_models import BANK
from helpers import MLP_PY

import modelblocks
from modelblocks import cli
from modelblocks.errors import InputError
from modelblocks.reports.analyze import STACK_MARGIN, analyze_fit, estimate_code_and_stack, format_verdict, memory_report
from modelblocks.reports.plot import plot_arena
from modelblocks.targets.boards import BOARDS, KB, Board, Region, board_from_dict, get_board, parse_size
from modelblocks.targets.qemu import have_toolchain


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32 * 16 * 16, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(x.flatten(1))


MODEL_PY = MLP_PY


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    # the reference kernels: the sizes below are the tensors' alone (the optimised convolutions add scratch)
    return modelblocks.compile(CNN().eval(), (torch.randn(1, 3, 32, 32),), kernels="reference")


@pytest.fixture(scope="module")
def cnn_report(cnn):
    return memory_report(cnn)


def recount(buffers, steps):
    """Independent of the report: walk the steps, adding a buffer when it is born and dropping it
    after its last use (an event sweep, not the report's per-buffer loop)."""
    born = {}
    dies = {}
    for b in buffers:
        born.setdefault(b.first_use, []).append(b.size)
        dies.setdefault(b.last_use, []).append(b.size)
    live, current = [], 0
    for t in range(steps):
        current += sum(born.get(t, []))
        live.append(current)
        current -= sum(dies.get(t, []))
    return live


def test_live_bytes_of_a_cnn_by_hand(cnn_report):
    # c1 out 16x32x32 f32 = 65,536 B (alive steps 0-1), c2 out 32x16x16 = 32,768 B (steps 1-3: flatten
    # aliases it, fc reads it); fc's output goes straight to the caller's buffer.
    assert [r["live_bytes"] for r in cnn_report["layers"]] == [65536, 98304, 32768, 32768]
    assert [r["activation_bytes"] for r in cnn_report["layers"]] == [65536, 32768, 0, 40]
    assert [r["weight_bytes"] for r in cnn_report["layers"]] == [(448) * 4, 4640 * 4, 0, 81930 * 4]
    assert cnn_report["arena_lower_bound"] == 98304


@pytest.mark.parametrize("row", ["08_complex_1000", "12_vit_6_outputs", "13_lstm_classifier", "14_gru"])
def test_live_bytes_match_an_independent_recount(row):
    model, inputs, _ = BANK[row]()
    compiled = modelblocks.compile(model, inputs)
    report = compiled.report
    buffers = compiled.source.plan.buffers
    live = recount(buffers, len(report["live_bytes_per_step"]))
    assert report["live_bytes_per_step"] == live
    assert [r["live_bytes"] for r in report["layers"]] == live[:len(report["layers"])]
    assert report["arena_lower_bound"] == max(live) <= report["arena_bytes"]
    # at each step the placed buffers alive there fit inside the arena, so the arena covers the bound
    for t, total in enumerate(live):
        alive = [b for b in buffers if b.first_use <= t <= b.last_use]
        assert sum(b.size for b in alive) == total
        assert all(compiled.source.offsets[b.name] + b.size <= report["arena_bytes"] for b in alive)
    assert report["plan_over_bound"] == pytest.approx(report["arena_bytes"] / max(live))
    assert report["arena_naive_bytes"] >= sum(b.size for b in buffers)


def test_totals_add_up(cnn, cnn_report):
    t = cnn_report["totals"]
    assert t["weights_bytes"] == cnn.source.weights_bytes == sum(r["weight_bytes"] for r in cnn_report["layers"])
    assert t["weights_bytes"] == (448 + 4640 + 81930) * 4
    assert t["code_bytes"] > 500 and t["stack_bytes"] > 0  # measured on a Cortex-M7 build (or the host gcc)
    assert t["flash_bytes"] == t["weights_bytes"] + t["code_bytes"]
    assert t["ram_bytes"] == t["arena_bytes"] + t["stack_bytes"] == cnn.source.arena_bytes + t["stack_bytes"]
    if have_toolchain():
        assert t["code_method"].startswith("measured: cortex-m7 ELF") and "stack painting" in t["stack_method"]
    host = estimate_code_and_stack(cnn.source)  # the fallback without the Arm toolchain
    assert "host estimate" in host["code_method"] and "host estimate" in host["stack_method"]
    assert host["code_bytes"] > 500 and host["stack_bytes"] > STACK_MARGIN
    plain = cnn.report["totals"]  # compile's report: no estimates, flash = weights, RAM = arena
    assert plain["code_bytes"] is None and plain["flash_bytes"] == t["weights_bytes"]
    assert plain["ram_bytes"] == cnn.source.arena_bytes


def test_built_in_boards():
    h7 = get_board("stm32h723zg")
    assert h7.flash == 1024 * KB
    assert {r.name: r.size // KB for r in h7.regions} == {"DTCM": 128, "AXI SRAM": 320, "SRAM1+SRAM2": 32,
                                                          "SRAM4": 16, "ITCM": 64}
    assert h7.ram == 496 * KB  # data regions (ITCM holds code); + ITCM 64 KB + 4 KB backup SRAM = 564 KB
    assert get_board("STM32H723") is h7
    assert {b: BOARDS[b].ram // KB for b in BOARDS} == {"stm32h723zg": 496, "stm32f746ng": 320, "stm32l476rg": 128,
                                                         "nrf52840": 256, "rp2040": 264}
    assert parse_size("1M") == 1 << 20 and parse_size("320KB") == 320 * KB and parse_size(4096) == 4096
    custom = get_board("mcu=512K,96K")
    assert (custom.flash, custom.ram) == (512 * KB, 96 * KB)
    for bad in ("nosuchboard", "mcu=512K", "mcu=lots,96K"):
        with pytest.raises(InputError):
            get_board(bad)


def test_verdict_fits_in_dtcm(cnn_report):
    t = cnn_report["totals"]
    v = analyze_fit(cnn_report, BOARDS["stm32h723zg"])
    assert v.fits and v.arena_region == "DTCM" and v.stack_region == "DTCM"  # 96 KB + stack < 128 KB
    assert v.flash_free == 1024 * KB - t["flash_bytes"]
    assert v.ram_free == 496 * KB - t["arena_bytes"] - t["stack_bytes"]
    assert v.text.startswith(f"fits stm32h723zg, {v.flash_free / KB:,.1f} KB flash free")
    assert v.linker_section == ".dtcm_arena" and "> DTCMRAM" in v.linker_snippet


def test_verdict_picks_the_first_region_that_holds_the_arena(cnn_report):
    board = Board("two", 1024 * KB, (Region("FAST", 64 * KB, linker_region="FAST"), Region("BIG", 100 * KB)))
    v = analyze_fit(cnn_report, board)
    assert v.fits and v.arena_region == "BIG" and v.stack_region == "FAST"
    assert v.linker_section == ".big_arena" and v.linker_snippet is None


def test_verdict_does_not_fit(cnn_report):
    t = cnn_report["totals"]
    tiny = Board("tiny", 64 * KB, (Region("RAM", 16 * KB),))
    v = analyze_fit(cnn_report, tiny)
    assert not v.fits and v.arena_region is None and v.linker_section is None
    more_flash = (t["flash_bytes"] - 64 * KB) / KB
    more_ram = (t["arena_bytes"] - 16 * KB) / KB  # 96 KB arena, 16 KB region: 80 KB more
    assert more_ram == 80.0
    assert v.text == (f"does not fit tiny: needs {more_flash:,.1f} KB more flash ({t['flash_bytes'] / KB:,.1f} KB > "
                      f"64.0 KB); needs 80.0 KB more RAM: the arena (96.0 KB) must sit in one contiguous region "
                      f"and the largest is RAM (16.0 KB)")
    text = format_verdict(v)
    assert "weights of layer 3 linear fc: 320.0 KB" in text  # the biggest weights
    assert "largest live step: layer 1 conv c2 with 96.0 KB" in text
    # the total would do but no single region holds the arena
    split = Board("split", 2048 * KB, (Region("A", 64 * KB), Region("B", 64 * KB)))
    v = analyze_fit(cnn_report, split)
    assert not v.fits and "needs 32.0 KB more RAM" in v.text and any("splitting" in n for n in v.notes)


def test_board_files(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"name": "j", "flash": "256K",
                                                  "regions": [{"name": "SRAM", "size": "64K", "linker_region": "RAM"}]}))
    (tmp_path / "b.toml").write_text('name = "t"\nflash = 262144\nram = "32K"\n')
    from modelblocks.targets.boards import load_board_file  # noqa: PLC0415

    j, t = load_board_file(tmp_path / "b.json"), load_board_file(tmp_path / "b.toml")
    assert (j.name, j.flash, j.ram, j.regions[0].linker_region) == ("j", 256 * KB, 64 * KB, "RAM")
    assert (t.name, t.flash, t.ram) == ("t", 256 * KB, 32 * KB)
    with pytest.raises(InputError):
        board_from_dict({"name": "x"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError):
        load_board_file(tmp_path / "bad.json")


def test_plot_is_a_png(cnn_report, tmp_path):
    path = plot_arena(cnn_report, tmp_path / "arena.png", ("DTCM", 128 * KB))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_analyze(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(MODEL_PY)
    png = tmp_path / "out.png"
    code, out, err = run(["analyze", f"{model}:MLP", "-s", "1,8", "--plot", png], capsys)
    assert code == 0, err
    assert "fits stm32h723zg" in out and "--arena-section .dtcm_arena" in out
    assert "live B" in out and "weights 848 B" in out  # (8*16+16 + 16*4+4) floats
    assert png.read_bytes()[:4] == b"\x89PNG"

    code, out, err = run(["analyze", f"{model}:MLP", "-s", "1,8", "--target", "mini=1K,32", "--json"], capsys)
    assert code == 1, err
    data = json.loads(out)
    assert data["verdict"]["fits"] is False and data["board"]["flash"] == 1024
    assert data["report"]["arena_bytes"] == 64 and [r["live_bytes"] for r in data["report"]["layers"]] == [64, 64]
    assert data["verdict"]["text"].startswith("does not fit mini: needs")

    code, _, err = run(["analyze", f"{model}:MLP", "-s", "1,8", "--target", "nosuch"], capsys)
    assert code == 2 and "unknown target" in err
    code, _, err = run(["analyze", f"{model}:MLP", "-s", "1,8", "--plot", tmp_path / "x.jpg"], capsys)
    assert code == 2 and "PNG" in err

    # a compiled output folder, and a board file
    torch.manual_seed(0)
    modelblocks.compile(CNN().eval(), (torch.randn(1, 3, 32, 32),), kernels="reference").save(tmp_path / "cnn")
    (tmp_path / "board.json").write_text(json.dumps({"name": "small", "flash": "512K", "ram": "64K"}))
    code, out, err = run(["analyze", tmp_path / "cnn", "--target-file", tmp_path / "board.json", "--no-estimate"],
                         capsys)
    assert code == 1, err
    assert "does not fit small: needs 32.0 KB more RAM" in out
    code, out, err = run(["analyze", tmp_path / "cnn", "--no-estimate"], capsys)
    assert code == 0 and "arena plan 98,304 B, liveness lower bound 98,304 B" in out
