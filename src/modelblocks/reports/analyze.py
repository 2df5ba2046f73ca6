"""Does the model fit the board? Memory totals, code and stack, and the fit verdict.

Code size and stack are measured on a Cortex-M7 build run in QEMU when the Arm toolchain is
installed (`measure_code_and_stack`). Without it they are *host estimates*: the
generated model and kernel sources (not the weights, which are counted exactly) are compiled with
the host gcc at `-Os` and
- code bytes = text + data of the object files as `size` reports them (text includes read-only
  tables); x86-64 code is usually somewhat larger than Thumb-2, so this leans high;
- stack bytes = the `<prefix>_run` frame plus the two largest other frames from `-fstack-usage`
  (run -> kernel -> helper is the deepest call chain the generated code has), plus
  `STACK_MARGIN` for the startup code and interrupt handlers of a bare-metal program.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..targets.boards import KB, Board
from .report import build_report

STACK_MARGIN = 512  # bytes: reset handler, SysTick/UART interrupts of a minimal firmware (estimate)
CODE_METHOD = "host estimate: x86-64 gcc -Os text+data of model and kernels (not Cortex-M)"
STACK_METHOD = (f"host estimate: gcc -fstack-usage, run() frame + 2 largest kernel frames + {STACK_MARGIN} B "
                "margin (not Cortex-M)")


def estimate_code_and_stack(source) -> dict:
    """Compile the generated C (minus the weights file) for the host and measure it; see the module
    docstring. Returns {} when no C compiler or `size` is available."""
    cc = shutil.which("gcc") or shutil.which("cc")
    size_tool = shutil.which("size")
    if not cc or not size_tool:
        return {}
    weights_file = f"{source.prefix}_weights.c"
    with tempfile.TemporaryDirectory(prefix="mb_size_") as tmp:
        d = Path(tmp)
        source.write(d)
        c_files = [f for f in source.c_files if f != weights_file]
        subprocess.run([cc, "-std=c99", "-Os", "-fstack-usage", "-c", *c_files], cwd=d, check=True,
                       capture_output=True, text=True)
        objects = [str(Path(f).with_suffix(".o")) for f in c_files]
        out = subprocess.run([size_tool, *objects], cwd=d, check=True, capture_output=True, text=True).stdout
        code = 0
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit():
                code += int(parts[0]) + int(parts[1])  # text (+rodata) and initialised data both sit in flash
        frames: dict[str, int] = {}
        dynamic = False
        for su in d.glob("*.su"):
            for line in su.read_text().splitlines():
                m = re.match(r"^.*:([A-Za-z_][A-Za-z0-9_.]*)\t(\d+)\t(\S+)", line)
                if m:
                    frames[m.group(1)] = max(frames.get(m.group(1), 0), int(m.group(2)))
                    # "dynamic,bounded" is only stack realignment; unbounded frames would be VLAs/alloca
                    dynamic |= "dynamic" in m.group(3) and "bounded" not in m.group(3)
    run = frames.pop(f"{source.prefix}_run", 0)
    others = sorted(frames.values(), reverse=True)
    stack = run + sum(others[:2]) + STACK_MARGIN
    method = STACK_METHOD + ("; some frames are dynamic (VLA/alloca)" if dynamic else "")
    return {"code_bytes": code, "stack_bytes": stack, "code_method": CODE_METHOD, "stack_method": method}


def measured_estimates(sim) -> dict:
    """Code and stack measured on a Cortex-M build run in QEMU (targets.qemu.Simulation), in the
    form build_report takes."""
    s = sim.build.sizes
    return {
        "code_bytes": s.model_code + s.library_code + s.model_ram_other,
        "code_method": f"measured: {sim.cpu.name} ELF (arm-none-eabi-gcc {sim.build.opt}), model code + "
                       "the libm/libc functions it uses",
        "stack_bytes": sim.stack_bytes + STACK_MARGIN,
        "stack_method": f"measured: stack painting in QEMU ({sim.cpu.name}), deepest use of one inference "
                        f"({sim.stack_bytes} B) + {STACK_MARGIN} B for start-up and interrupts",
    }


def measure_code_and_stack(compiled, cpu: str = "cortex-m7") -> dict:
    """Cross-compile for `cpu` and run one inference in QEMU on zero inputs (the code path and
    stack depth do not depend on the values). Returns {} without the Arm toolchain or QEMU."""
    import numpy as np  # noqa: PLC0415

    from ..targets.qemu import have_toolchain  # noqa: PLC0415

    if not have_toolchain():
        return {}
    zeros = [np.zeros(compiled.graph.tensors[n].shape, compiled.graph.tensors[n].dtype.numpy)
             for n in compiled.graph.inputs]
    if not zeros:
        return {}
    return measured_estimates(compiled.simulate([zeros], target=cpu))


def memory_report(compiled, estimate: bool = True) -> dict:
    """The compile report with code and stack in its totals: measured on a Cortex-M7 build in QEMU
    when the Arm toolchain is installed, else estimated with the host compiler."""
    estimates = {}
    if estimate:
        estimates = measure_code_and_stack(compiled) or estimate_code_and_stack(compiled.source)
    return build_report(compiled.graph, compiled.source, estimates)


@dataclass
class FitVerdict:
    fits: bool
    board: str
    text: str  # one line: "fits, X KB free ..." or "does not fit: needs X KB more ..."
    flash_needed: int
    flash_free: int  # negative: short by that much
    ram_needed: int
    ram_free: int
    arena_region: str | None
    stack_region: str | None
    linker_section: str | None  # suggested --arena-section
    linker_snippet: str | None
    contributors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def kb(n: int) -> str:
    return f"{n / KB:,.1f} KB"


def _section_name(region_name: str) -> str:
    return "." + re.sub(r"[^a-z0-9]+", "_", region_name.lower()).strip("_") + "_arena"


def analyze_fit(report: dict, board: Board) -> FitVerdict:
    """Place the arena in the first data region (fastest first) that holds it whole, the stack in
    the first region with room left, and compare flash needs with the board's flash."""
    totals = report["totals"]
    flash_needed = totals["flash_bytes"]
    arena, stack = totals["arena_bytes"], totals["stack_bytes"] or 0
    ram_needed = arena + stack
    flash_free = board.flash - flash_needed
    ram_free = board.ram - ram_needed

    free = {r.name: r.size for r in board.data_regions}
    arena_region = next((r for r in board.data_regions if r.size >= arena), None)
    if arena_region is not None:
        free[arena_region.name] -= arena
    stack_region = next((r for r in board.data_regions if free[r.name] >= stack), None) if stack else None

    problems, contributors, notes = [], [], []
    if flash_free < 0:
        problems.append(f"needs {kb(-flash_free)} more flash ({kb(flash_needed)} > {kb(board.flash)})")
        heavy = sorted(report["layers"], key=lambda r: -r["weight_bytes"])[:3]
        contributors += [f"weights of layer {r['index']} {r['op']} {r['scope'] or '-'}: {kb(r['weight_bytes'])}"
                         for r in heavy if r["weight_bytes"]]
        if totals["code_bytes"]:
            contributors.append(f"code: {kb(totals['code_bytes'])} ({totals['code_method']})")
    largest = max(board.data_regions, key=lambda r: r.size)
    if arena_region is None:
        problems.append(f"needs {kb(arena - largest.size)} more RAM: the arena ({kb(arena)}) must sit in one "
                        f"contiguous region and the largest is {largest.name} ({kb(largest.size)})")
        if ram_free >= 0:
            notes.append(f"the board's data RAM in total ({kb(board.ram)}) would hold it, but splitting the arena "
                         "across regions is not supported")
    elif stack and stack_region is None:
        short = stack - max(free.values())
        problems.append(f"needs {kb(short)} more RAM for the stack ({kb(stack)}) next to the arena")
    if arena_region is None or (stack and stack_region is None):
        layers = report["layers"]
        if layers:
            peak = max(layers, key=lambda r: r["live_bytes"])
            contributors.append(f"largest live step: layer {peak['index']} {peak['op']} {peak['scope'] or '-'} "
                                f"with {kb(peak['live_bytes'])} of activations alive")
            big = sorted(layers, key=lambda r: -(r["activation_bytes"] + r["scratch_bytes"]))[:3]
            contributors += [f"activation of layer {r['index']} {r['op']} {r['scope'] or '-'}: "
                             f"{kb(r['activation_bytes'])}" + (f" + {kb(r['scratch_bytes'])} scratch"
                                                               if r["scratch_bytes"] else "")
                             for r in big if r["activation_bytes"] + r["scratch_bytes"]]
        bound = report.get("arena_lower_bound", arena)
        if bound < arena:
            notes.append(f"the plan is {kb(arena - bound)} above the liveness lower bound ({kb(bound)})")

    section = snippet = None
    if arena_region is not None:
        section = _section_name(arena_region.name)
        if arena_region.linker_region:
            snippet = (f"{section} (NOLOAD) : ALIGN(16) {{ *({section}) }} > {arena_region.linker_region}")
    fits = not problems
    if fits:
        text = (f"fits {board.name}, {kb(flash_free)} flash free and {kb(ram_free)} RAM free; "
                f"arena ({kb(arena)}) fits in {arena_region.name} ({kb(arena_region.size)})")
    else:
        text = f"does not fit {board.name}: " + "; ".join(problems)
    return FitVerdict(fits, board.name, text, flash_needed, flash_free, ram_needed, ram_free,
                      arena_region.name if arena_region else None, stack_region.name if stack_region else None,
                      section, snippet, contributors, notes)


def format_totals(report: dict) -> str:
    t = report["totals"]
    code = f"{t['code_bytes']:,} B" if t["code_bytes"] is not None else "not estimated"
    stack = f"{t['stack_bytes']:,} B" if t["stack_bytes"] is not None else "not estimated"
    return "\n".join([
        f"flash {t['flash_bytes']:,} B = weights {t['weights_bytes']:,} B + code {code} [{t['code_method']}]",
        f"RAM   {t['ram_bytes']:,} B = arena {t['arena_bytes']:,} B + stack {stack} [{t['stack_method']}]",
        f"arena plan {report['arena_bytes']:,} B, liveness lower bound {report['arena_lower_bound']:,} B "
        f"(plan / bound {report['plan_over_bound']:.3f}), without reuse {report['arena_naive_bytes']:,} B",
    ])


def format_verdict(verdict: FitVerdict) -> str:
    lines = [verdict.text]
    if verdict.linker_section:
        lines.append(f"  place the arena with --arena-section {verdict.linker_section}"
                     + (f" and in the linker script: {verdict.linker_snippet}" if verdict.linker_snippet else ""))
    if verdict.stack_region and verdict.arena_region:
        lines.append(f"  stack fits in {verdict.stack_region}")
    lines += [f"  biggest contributor: {c}" for c in verdict.contributors]
    lines += [f"  note: {n}" for n in verdict.notes]
    return "\n".join(lines)
