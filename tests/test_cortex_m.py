"""Cortex-M targets: the test bank cross-compiled and run in QEMU, checked against PyTorch; exact
instruction counting checked on code with a known count; flash, RAM and stack from the ELF checked
against independent measures (the weights and arena the emitter laid out, arm-none-eabi-size,
-fstack-usage)."""

import json
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks as mb
from bank_models import BANK
from modelblocks.errors import InputError, ToolchainError
from modelblocks.reports.simulation import expand_targets, format_simulation
from modelblocks.targets.cpus import CPUS, CortexM
from modelblocks.targets.cross import build_for_cpu
from modelblocks.targets.estimates import Assumptions, estimate
from modelblocks.targets.qemu import have_toolchain, plugin_path

RESULTS = os.environ.get("MODELBLOCKS_QEMU_RESULTS")  # file to append measured figures to


@pytest.fixture(autouse=True)
def toolchain():
    if not have_toolchain():
        message = ("arm-none-eabi-gcc or qemu-system-arm missing: apt-get install --no-install-recommends "
                   "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)


def _accounting(sim):
    """Per-layer counts plus the tail add up to the whole call, exactly."""
    return sum(layer.instructions for layer in sim.layers) + sim.epilogue == sim.instructions[0]


@pytest.mark.parametrize("name", sorted(BANK))
def test_bank_row_in_qemu_cortex_m7(name):
    model, inputs, _ = BANK[name]()
    report = mb.simulate(model, inputs, target="cortex-m7", runs=2, print_table=False)
    (t,) = report.targets
    for c in t.checks:
        assert c.rel_l2_torch < 1e-5, (name, c)
        assert c.rel_l2_ref < 1e-5, (name, c)
    assert t.ok
    sim = t.simulation
    assert _accounting(sim)
    assert all(layer.instructions > 0 for layer in sim.layers)
    compiled = mb.compile(model, inputs)
    s = sim.build.sizes
    assert s.weights == compiled.source.weights_bytes  # every weight array, nothing else, in flash
    assert s.arena == compiled.source.arena_bytes  # the planned arena (no symbol when nothing is planned)
    assert s.flash == s.model_code + s.weights + s.library_code + s.harness_flash
    if RESULTS:
        e = t.estimate
        with open(RESULTS, "a") as f:
            f.write(json.dumps({"row": name, "macs": report.macs, "instructions": t.instructions,
                                "flash": s.flash, "model_code": s.model_code, "weights": s.weights,
                                "library_code": s.library_code, "arena": s.arena, "stack": sim.stack_bytes,
                                "ram": s.ram_static + sim.stack_bytes, "latency_ms": e.latency_ms,
                                "energy_uj": e.energy_uj,
                                "rel_l2_torch": max(c.rel_l2_torch for c in t.checks),
                                "host_bits": all(c.exact_host for c in t.checks)}) + "\n")


def test_every_core_runs_the_same_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4), nn.Tanh()).eval()
    x = torch.randn(1, 3, 12, 12)
    report = mb.simulate(model, (x,), target="all", runs=2, print_table=False)
    assert [t.cpu for t in report.targets] == list(CPUS)
    assert report.ok
    for t in report.targets:
        assert max(c.rel_l2_torch for c in t.checks) < 1e-5
        assert _accounting(t.simulation)
    # One comparison table row per core, with that core's instruction count.
    table = format_simulation(report)
    for t in report.targets:
        assert f"{t.instructions:,}" in table
    # M7 (FPv5-D16) libm and -ffp-contract=off: same bits as the host build here.
    m7 = next(t for t in report.targets if t.cpu == "cortex-m7")
    assert all(c.exact_host for c in m7.checks)


def test_instruction_count_is_exact_on_known_code(tmp_path):
    """A hand-written loop with a known instruction count, counted through the same marks as layers."""
    graph_model = nn.Linear(4, 2).eval()
    compiled = mb.compile(graph_model, (torch.randn(1, 4),))
    build = compiled.build_for("cortex-m7", workdir=tmp_path)
    iterations = 1000
    # Replace the model call with: mark; loop (subs + bne per iteration); mark. 2*N + 1 (movw) instructions.
    (tmp_path / "known.c").write_text(f"""
#include "sim_semihost.h"
void sim_mark(void);
int main(void)
{{
    sim_mark();
    sim_mark();
    sim_mark();
    __asm__ volatile("movw r0, #{iterations}\\n1: subs r0, r0, #1\\n bne 1b" ::: "r0", "cc");
    sim_mark();
    return 0;
}}
__attribute__((noinline, noipa)) void sim_mark(void) {{ __asm__ volatile("" ::: "memory"); }}
""")
    cc = ["arm-none-eabi-gcc", "-O2", *CPUS["cortex-m7"].flags, "-I.", "-nostartfiles", "--specs=nosys.specs",
          "-T", "link.ld", "-o", "known.elf", "startup.c", "known.c"]
    subprocess.run(cc, cwd=tmp_path, check=True)
    out = subprocess.run(["qemu-system-arm", "-M", "mps2-an500", "-nographic", "-monitor", "none", "-serial", "null",
                          "-semihosting-config", "enable=on,target=native", "-plugin",
                          f"{plugin_path()},mark={_symbol(tmp_path / 'known.elf', 'sim_mark'):#x},out=c.txt",
                          "-kernel", "known.elf"], cwd=tmp_path, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    counts = [int(v) for v in (tmp_path / "c.txt").read_text().split()]
    snaps = counts[1:]
    mark_cost = snaps[1] - snaps[0]
    assert snaps[2] - snaps[1] == mark_cost  # a mark costs the same every time
    assert snaps[3] - snaps[2] - mark_cost == 2 * iterations + 1
    assert build.elf.exists()


def _symbol(elf, name):
    from modelblocks.targets.qemu import symbol_address

    return symbol_address(elf, name)


def test_sizes_agree_with_arm_size_and_stack_with_stack_usage(tmp_path):
    model, inputs, _ = BANK["04_conv_relu_bn_linear"]()
    compiled = mb.compile(model, inputs)
    sim = compiled.simulate([x.numpy() for x in inputs], target="cortex-m7", workdir=tmp_path)
    sizes = sim.build.sizes
    berkeley = subprocess.run(["arm-none-eabi-size", str(sim.build.elf)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()
    text, data, bss = (int(v) for v in berkeley[:3])
    assert sizes.flash == text + data  # text includes the vector table and constants
    assert sizes.ram_static == data + bss
    # Stack: at least the model function's own frame, at most every frame of the model's code at once.
    frames = {}
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", *CPUS["cortex-m7"].flags, "-ffp-contract=off",
                    "-fstack-usage", "-c", *compiled.source.c_files], cwd=tmp_path, check=True)
    for su in tmp_path.glob("*.su"):
        for line in su.read_text().splitlines():
            fn, size = line.split("\t")[0].rsplit(":", 1)[-1], int(line.split("\t")[1])
            frames[fn] = size
    run_frame = frames[f"{compiled.prefix}_run"]
    assert run_frame <= sim.stack_bytes <= sum(frames.values()) + 64


def test_outputs_are_deterministic_and_counts_repeat():
    model, inputs, _ = BANK["16_conv1d_timeseries"]()
    compiled = mb.compile(model, inputs)
    x = [t.numpy() for t in inputs]
    a = compiled.simulate([x, x], target="cortex-m7")
    assert a.instructions[0] == a.instructions[1]
    assert all(np.array_equal(p, q) for p, q in zip(a.outputs[0], a.outputs[1]))
    b = compiled.simulate(x, target="cortex-m7")  # one input set: same build, same result
    assert b.instructions[0] == a.instructions[0]
    assert all(np.array_equal(p, q) for p, q in zip(a.outputs[0], b.outputs[0]))
    # The host build of the same C gives the same bits on the Cortex-M7 (FPv5-D16, no FMA contraction).
    assert all(np.array_equal(p, q) for p, q in zip(a.outputs[0], compiled.run_c(x)))


def test_model_too_big_for_the_board_is_named(tmp_path):
    model = nn.Linear(256, 256).eval()
    compiled = mb.compile(model, (torch.randn(1, 256),))
    tiny = CortexM("cortex-m7", "mps2-an500", CPUS["cortex-m7"].cflags, 0, 64 * 1024, 0x20000000, 64 * 1024, "FPv5")
    with pytest.raises(InputError, match="does not fit the simulated cortex-m7 board"):
        build_for_cpu(compiled.source, compiled.graph, tiny, tmp_path)


def test_missing_toolchain_is_a_clear_error(monkeypatch):
    compiled = mb.compile(nn.Linear(3, 2).eval(), (torch.randn(1, 3),))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolchainError, match="apt-get install --no-install-recommends gcc-arm-none-eabi"):
        compiled.simulate(np.zeros((1, 3), np.float32), target="cortex-m4")


def test_target_names():
    assert expand_targets("all") == ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
    assert expand_targets("cortex-m7,cortex-m4,cortex-m7") == ["cortex-m7", "cortex-m4"]
    with pytest.raises(InputError, match="unknown Cortex-M target 'cortex-m3'"):
        expand_targets("cortex-m3")


def test_estimates_follow_their_assumptions():
    a = Assumptions(clock_mhz=500.0, cpi=1.5, nj_per_cycle=0.5)
    e = estimate(1_000_000, a)
    assert e.cycles == 1_500_000
    assert e.latency_ms == pytest.approx(3.0)
    assert e.energy_uj == pytest.approx(750.0)
    with pytest.raises(InputError, match="cpi must be a positive number"):
        Assumptions(cpi=0)
    assert "ESTIMATES" in a.describe() and "1.5 CPI" in a.describe()


def test_integer_outputs_must_be_bit_exact():
    class ArgMax(nn.Module):
        def forward(self, x):
            return torch.argmax(x, dim=-1).to(torch.int32)

    model = ArgMax().eval()
    report = mb.simulate(model, (torch.randn(3, 7),), target="cortex-m33", runs=3, print_table=False)
    (t,) = report.targets
    (check,) = t.checks
    assert check.exact_ref and check.ok
    assert t.simulation.outputs[0][0].dtype == np.int32


CLI_MODEL = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5, padding=2)
        self.fc = nn.Linear(4 * 16, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))
"""


def test_cli_simulate_json_and_compile_target(tmp_path, capsys):
    from modelblocks import cli

    (tmp_path / "net.py").write_text(CLI_MODEL)
    torch.manual_seed(3)
    from modelblocks.frontend.loader import import_file

    net = import_file(tmp_path / "net.py").Net()
    torch.save(net.state_dict(), tmp_path / "net.pth")
    model_args = [f"{tmp_path}/net.py:Net", "--weights", str(tmp_path / "net.pth"), "--input-shape", "1,2,16"]

    rc = cli.main(["simulate", *model_args, "--target", "cortex-m7,cortex-m55", "--runs", "2", "--cpi", "1.25",
                   "--json", "--keep", str(tmp_path / "builds")])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["ok"]
    assert [t["cpu"] for t in data["targets"]] == ["cortex-m7", "cortex-m55"]
    m7 = data["targets"][0]
    assert m7["checks"][0]["rel_l2_torch"] < 1e-5
    assert sum(r["instructions"] for r in m7["layers"]) + m7["epilogue_instructions"] == m7["instructions_per_run"][0]
    assert m7["estimate"]["cycles"] == pytest.approx(1.25 * m7["instructions"])
    assert data["assumptions"]["cpi"] == 1.25
    assert (tmp_path / "builds" / "cortex-m7" / "model.elf").is_file()
    # The kept build re-runs by hand and counts the same instructions, snapshot for snapshot.
    counts = tmp_path / "builds" / "cortex-m7" / "counts.txt"
    first = counts.read_text()
    counts.unlink()
    rerun = subprocess.run(["sh", str(tmp_path / "builds" / "cortex-m7" / "run.sh")], capture_output=True, timeout=60)
    assert rerun.returncode == 0
    assert counts.read_text() == first

    rc = cli.main(["compile", *model_args, "-o", str(tmp_path / "out"), "--target", "cortex-m4", "--runs", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "cortex-m4: built" in text
    assert (tmp_path / "out" / "cortex-m4" / "model.elf").is_file()
    # A compiled folder simulates without the torch model: checked against the reference.
    assert cli.main(["simulate", str(tmp_path / "out"), "--runs", "2"]) == 0
    text = capsys.readouterr().out
    assert "simulation passed" in text and "cortex-m7 on QEMU mps2-an500" in text

    assert cli.main(["simulate", *model_args, "--target", "cortex-m3"]) == 2
    assert "unknown Cortex-M target 'cortex-m3'" in capsys.readouterr().err
    assert cli.main(["compile", *model_args, "-o", str(tmp_path / "o2"), "--target", "esp32"]) == 2
    assert "choose one of cortex-m4" in capsys.readouterr().err


def test_a_program_that_cannot_start_is_reported(tmp_path):
    from modelblocks.errors import SimulationError
    from modelblocks.targets.qemu import run_qemu

    compiled = mb.compile(nn.Linear(3, 2).eval(), (torch.randn(1, 3),))
    # Code linked where the AN500 does not fetch its vector table: the core locks up at reset.
    wrong = CortexM("cortex-m7", "mps2-an500", CPUS["cortex-m7"].cflags, 0x00400000 + 0x10000, 1 << 20, 0x20000000,
                    1 << 20, "FPv5")
    build = build_for_cpu(compiled.source, compiled.graph, wrong, tmp_path)
    with pytest.raises(SimulationError, match="(?s)core locked up .* in QEMU .*Re-run by hand: sh .*run.sh"):
        run_qemu(build, compiled.graph, compiled.source.profiled, [[np.zeros((1, 3), np.float32)]], timeout=30)
