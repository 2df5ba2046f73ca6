"""Cross-compile a generated model with its bare-metal simulation harness for one Cortex-M core."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..backend.c.emitter import CSource
from ..errors import CompileError, InputError, ToolchainError
from ..ir.graph import Graph
from .cpus import CortexM
from .elf_sizes import ElfSizes, elf_sizes

HARNESS_DIR = Path(__file__).parent / "harness"
APT_HINT = ("apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm "
            "(`make install` does it)")
# The host build's warnings and floating-point contract (no fused multiply-add, so that float results
# match the host and PyTorch's CPU kernels); sections per function and object so the linker drops
# what the model does not use.
TARGET_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off",
                 "-ffunction-sections", "-fdata-sections"]
# -O2, by measurement on the Cortex-M7 (`bench/models.py --precision int8 --kernels optimized --opt -O3`,
# the five models): -O3 saves 0.1-1.7 % of the instructions for 0.4-6.8 KB more flash (the TinyViT the
# most); -Os saves 1-2 KB of flash for 6-19 % more instructions.
DEFAULT_OPT = "-O2"
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HARNESS_DIR)), trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def tool(name: str, how: str = f"install the Arm toolchain and QEMU with {APT_HINT}") -> str:
    """The path of a program the target build needs; `how` says how to get it."""
    path = shutil.which(name)
    if not path:
        raise ToolchainError(f"{name} not found: {how}")
    return path


@dataclass
class TargetBuild:
    cpu: CortexM
    elf: Path
    sizes: ElfSizes
    opt: str


def harness_buffers(graph: Graph) -> tuple[list[dict], list[dict]]:
    inputs = [{"name": f"sim_input{k}", "ctype": graph.tensors[n].dtype.ctype, "count": max(graph.tensors[n].numel, 1),
               "nbytes": graph.tensors[n].nbytes} for k, n in enumerate(graph.inputs)]
    outputs = [{"name": f"sim_output{k}", "ctype": graph.tensors[n].dtype.ctype, "count": max(graph.tensors[n].numel, 1),
                "nbytes": graph.tensors[n].nbytes} for k, n in enumerate(graph.outputs)]
    return inputs, outputs


def build_for_cpu(source: CSource, graph: Graph, cpu: CortexM, workdir: str | Path, opt: str = DEFAULT_OPT) -> TargetBuild:
    """Write the model, harness, start-up and linker script into `workdir` and link `<prefix>.elf`."""
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    source.write(d)
    for name in ("startup.c", "sim_semihost.h", "mb_profile.h"):
        shutil.copyfile(HARNESS_DIR / name, d / name)
    inputs, outputs = harness_buffers(graph)
    if not inputs:
        raise InputError("a model without inputs cannot be simulated (nothing to feed): give it an input")
    (d / "harness.c").write_text(_ENV.get_template("harness.c.j2").render(
        prefix=source.prefix, cpu=cpu.name, machine=cpu.machine, buffers=inputs + outputs, inputs=inputs, outputs=outputs,
        input_bytes=sum(b["nbytes"] for b in inputs), runs_note="one input set after another",
        call_args=", ".join(b["name"] for b in inputs + outputs)))
    (d / "link.ld").write_text(_ENV.get_template("link.ld.j2").render(
        machine=cpu.machine, cpu=cpu.name, flash_name="code memory", ram_name="data memory",
        flash_origin=cpu.flash_origin, flash_size=cpu.flash_size, ram_origin=cpu.ram_origin, ram_size=cpu.ram_size))
    elf = d / f"{source.prefix}.elf"
    cc = tool("arm-none-eabi-gcc")
    sources = ["startup.c", "harness.c", *source.c_files]
    # Compile, then link named objects: one gcc call for both would link /tmp/cc*.o files whose random
    # names end up in the map file, and the same model would not build to the same files twice.
    compile_args = [cc, *TARGET_CFLAGS, opt, *cpu.flags, "-DMB_PROFILE", "-I.", "-c", *sources]
    link_args = [cc, opt, *cpu.flags, "-nostartfiles", "--specs=nosys.specs", "-T", "link.ld", "-Wl,--gc-sections",
                 f"-Wl,-Map={source.prefix}.map", "-o", elf.name, *(Path(f).with_suffix(".o").name for f in sources),
                 "-lm"]
    (d / "build.sh").write_text("#!/bin/sh\n# Rebuild the ELF by hand.\n"
                                f"cd \"$(dirname \"$0\")\" && {' '.join(compile_args)} && exec {' '.join(link_args)}\n")
    for args in (compile_args, link_args):
        proc = subprocess.run(args, cwd=d, capture_output=True, text=True)
        if proc.returncode != 0:
            break
    if proc.returncode != 0:
        overflow = [line for line in proc.stderr.splitlines() if "overflowed by" in line or "will not fit" in line]
        if overflow:
            raise InputError(f"the model does not fit the simulated {cpu.name} board ({cpu.machine}: "
                               f"{cpu.flash_size // 1024} KB code memory, {cpu.ram_size // 1024} KB data memory):\n"
                               + "\n".join(overflow))
        raise CompileError(f"cross-compilation for {cpu.name} failed in {d}:\n$ {' '.join(args)}\n{proc.stderr[-6000:]}")
    return TargetBuild(cpu, elf, elf_sizes(elf, source.prefix), opt)
