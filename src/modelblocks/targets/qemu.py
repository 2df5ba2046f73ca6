"""Run a cross-compiled model in qemu-system-arm and count its executed instructions exactly.

Counting uses a small TCG plugin shipped as C source (harness/insn_count_plugin.c) and built once
with the host's gcc into the user cache. The plugin snapshots its counter each time the guest
enters `sim_mark`, which the harness calls around `<prefix>_run` and the generated code calls after
every layer (MB_PROFILE_END): the difference of consecutive snapshots, minus the measured cost of
one mark, is a layer's count. Counts are retired guest instructions, deterministic and independent
of the host's load; they are not cycles (QEMU models no pipeline, caches or wait states).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from elftools.elf.elffile import ELFFile

from ..errors import CompileError, SimulationError
from ..ir.graph import Graph
from .cross import HARNESS_DIR, TargetBuild, harness_buffers, tool
from .host import compiler

PLUGIN_SOURCE = HARNESS_DIR / "insn_count_plugin.c"


def cache_dir() -> Path:
    base = os.environ.get("MODELBLOCKS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "modelblocks")
    return Path(base)


def plugin_path() -> Path:
    """The instruction-counting plugin, built from its shipped source on first use (keyed by the
    source's hash, written atomically so concurrent test workers can race safely)."""
    text = PLUGIN_SOURCE.read_bytes()
    name = f"libmb_insn_count-{hashlib.sha256(text).hexdigest()[:16]}.so"
    so = cache_dir() / name
    if so.exists():
        return so
    try:
        so.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home (some CI sandboxes): a per-user folder in the temp dir
        so = Path(tempfile.gettempdir()) / f"modelblocks-{os.getuid()}" / name
        if so.exists():
            return so
        so.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".plugin-", suffix=".so", dir=so.parent)
    os.close(fd)
    try:
        proc = subprocess.run([compiler(), "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", tmp, str(PLUGIN_SOURCE)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"building the QEMU instruction-counting plugin failed:\n{proc.stderr[-3000:]}")
        os.replace(tmp, so)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return so


def symbol_address(elf: Path, name: str) -> int:
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        for sym in symtab.get_symbol_by_name(name) or ():
            return sym["st_value"] & ~1  # Thumb bit
    raise CompileError(f"symbol {name} is missing from {elf} (ModelBlocks bug)")


@dataclass
class LayerCount:
    index: int  # graph node index
    instructions: int


@dataclass
class Simulation:
    build: TargetBuild
    outputs: list[list[np.ndarray]]  # per run, per model output
    instructions: list[int]  # per run: the whole `<prefix>_run` call
    layers: list[LayerCount]  # of the first run; the function's prologue is in the first layer
    epilogue: int  # instructions after the last layer (output copies, return)
    stack_bytes: int  # deepest stack use of any run, measured by painting
    mark_cost: int
    wall_seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def cpu(self):
        return self.build.cpu


def run_qemu(build: TargetBuild, graph: Graph, profiled: Sequence[int], inputs: Sequence[Sequence[np.ndarray]],
             timeout: float = 600.0) -> Simulation:
    """Run the built program on each input set (a sequence of runs, each a list of model inputs)."""
    import time  # noqa: PLC0415

    d = build.elf.parent
    in_bufs, out_bufs = harness_buffers(graph)
    with open(d / "input.bin", "wb") as f:
        for run in inputs:
            for k, name in enumerate(graph.inputs):
                t = graph.tensors[name]
                np.ascontiguousarray(np.asarray(run[k]).astype(t.dtype.numpy, copy=False)).reshape(-1).tofile(f)
    for stale in ("output.bin", "stats.bin", "counts.txt"):
        (d / stale).unlink(missing_ok=True)
    cmd = [tool("qemu-system-arm"), "-M", build.cpu.machine, "-nographic", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native",
           "-plugin", f"{plugin_path()},mark={symbol_address(build.elf, 'sim_mark'):#x},out=counts.txt",
           "-kernel", build.elf.name]
    (d / "run.sh").write_text("#!/bin/sh\n# Re-run the simulation by hand (writes output.bin, stats.bin, counts.txt).\n"
                              f"cd \"$(dirname \"$0\")\" && exec {' '.join(cmd)}\n")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SimulationError(f"QEMU ({build.cpu.machine}) did not finish within {timeout:.0f} s; "
                              f"the program may hang. Re-run by hand: cd {d} && {' '.join(cmd)}") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        detail = (proc.stderr + proc.stdout).strip()
        if "Lockup" in detail:
            what = ("the core locked up (a fault at reset or inside a fault handler: the vector table or the "
                    "stack is not where the board expects them)")
        elif proc.returncode < 0:
            what = f"QEMU was killed by signal {-proc.returncode}"
        else:
            what = f"the program exited with status {proc.returncode}"
        raise SimulationError(f"{what} in QEMU ({build.cpu.name} on {build.cpu.machine}):\n{detail[:1500]}\n"
                              f"Re-run by hand: sh {d / 'run.sh'}")
    runs = len(inputs)
    out_bytes = sum(b["nbytes"] for b in out_bufs)
    raw = (d / "output.bin").read_bytes()
    stats = np.fromfile(d / "stats.bin", dtype="<u4").reshape(-1, 2)
    if len(raw) != runs * out_bytes or len(stats) != runs:
        raise SimulationError(f"QEMU returned {len(raw)} output bytes and {len(stats)} runs, expected "
                              f"{runs * out_bytes} bytes for {runs} runs (see {d})")
    if np.any(stats[:, 0] != 0):
        raise SimulationError(f"{graph.name}_run returned {int(stats[stats[:, 0] != 0][0, 0])} in QEMU")
    outputs, pos = [], 0
    for _ in range(runs):
        one = []
        for name in graph.outputs:
            t = graph.tensors[name]
            one.append(np.frombuffer(raw, dtype=t.dtype.numpy, count=max(t.numel, 1), offset=pos)[:t.numel]
                       .reshape(t.shape).copy())
            pos += t.nbytes
        outputs.append(one)

    counts = [int(x) for x in (d / "counts.txt").read_text().split()]
    snaps = counts[1:]
    per_run = len(profiled) + 2
    if len(snaps) != 2 + runs * per_run:
        raise SimulationError(f"the counting plugin saw {len(snaps)} marks, expected {2 + runs * per_run} (see {d})")
    mark_cost = snaps[1] - snaps[0]
    totals, layers, epilogue = [], [], 0
    for r in range(runs):
        marks = snaps[2 + r * per_run: 2 + (r + 1) * per_run]
        totals.append(marks[-1] - marks[0] - (per_run - 1) * mark_cost)
        if r == 0:
            layers = [LayerCount(index, marks[i + 1] - marks[i] - mark_cost) for i, index in enumerate(profiled)]
            epilogue = marks[-1] - marks[-2] - mark_cost
    return Simulation(build, outputs, totals, layers, epilogue, int(stats[:, 1].max()), mark_cost, wall, cmd)


def have_toolchain() -> bool:
    return all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm"))
