"""A complete firmware project for the NUCLEO-H723ZG (STM32H723ZG) around a compiled model.

`write_firmware_project` writes a folder that builds with open tools only (arm-none-eabi-gcc,
newlib-nano, GNU make): Makefile, linker script for the real memory map, start-up code with the
full vector table, clock set-up to 550 MHz (520 MHz without the CPU_FREQ_BOOST option bit),
caches, the DWT cycle counter with per-layer counts, a USART3 console on the ST-LINK virtual COM
port, and a self-check of the model's outputs against the reference interpreter's outputs for a
fixed input compiled into flash. `build_firmware` runs make and reads the sizes from the ELF.

The static C files and the templates are in `targets/stm32h723/`. The clock plan below is written
into the project's `fw_config.h`; the tests recompute the PLL output and the baud rate from it.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from .. import __version__
from ..backend.c.cformat import array_body
from ..errors import CompileError, InputError
from ..folders import replaced_folder
from ..interpreter import bind_inputs
from .boards import BOARDS, Board
from .cross import tool
from .elf_sizes import ElfSizes, elf_sizes

FIRMWARE_DIR = Path(__file__).parent / "stm32h723"
BOARD: Board = BOARDS["stm32h723zg"]
APT_HINT = ("apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi "
            "binutils-arm-none-eabi make")
ARENA_REGIONS = ("dtcm", "axisram")
OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og")
STATIC_FILES = ("stm32h723.h", "fw_board.h", "fw_board.c", "fw_format.c", "fw_startup.c")
STACK_SIZE = 16 * 1024

# Linker MEMORY regions: name in link.ld, name in boards.py, origin (RM0468 memory map / CMSIS
# *_BASE), attributes. Sizes come from boards.py so that the fit analysis and the linker agree.
REGIONS = (
    ("ITCM", "ITCM", 0x00000000, "rwx"),
    ("FLASH", None, 0x08000000, "rx"),
    ("DTCM", "DTCM", 0x20000000, "rw"),
    ("AXISRAM", "AXI SRAM", 0x24000000, "rw"),
    ("SRAM12", "SRAM1+SRAM2", 0x30000000, "rw"),
    ("SRAM4", "SRAM4", 0x38000000, "rw"),
)
ARENA_LINKER_REGION = {"dtcm": "DTCM", "axisram": "AXISRAM"}

# The clock plan (see fw_config.h.j2): PLL1 reference 2 MHz from the ST-LINK's 8 MHz MCO (HSE
# bypass) or the 64 MHz HSI; CPU = 2 MHz x N / P; AXI = CPU / 2; APB = AXI / 2.
CLOCKS = {
    "hse_hz": 8_000_000,
    "hsi_hz": 64_000_000,
    "pll1_m_hse": 4,
    "pll1_m_hsi": 32,
    "pll1_n_boost": 275,  # 550 MHz with CPU_FREQ_BOOST
    "pll1_n": 260,  # 520 MHz without it
    "pll1_p": 1,
    "pll1_q": 2,
    "pll1_r": 2,
    "pll1_rge": 1,  # PLL input range 2..4 MHz
    "ahb_div": 2,
    "apb_div": 2,
    "flash_latency": 3,  # wait states for AXI <= 275 MHz in VOS0
    "flash_wrhighfreq": 3,
    "uart_baud": 115200,
    "timeout_loops": 2_000_000,
}

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(FIRMWARE_DIR)), trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


@dataclass
class FirmwareBuild:
    project_dir: Path
    elf: Path
    bin: Path
    hex: Path
    map: Path
    sizes: ElfSizes
    region_usage: dict[str, int] = field(default_factory=dict)  # bytes per linker region (FLASH: the image)
    arena_region: str = "dtcm"
    arena_address: int = 0


def _c_string(text: str) -> str:
    """Text safe inside a C string literal and a C comment."""
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in text).replace("*/", "*_")


def _test_inputs(compiled, test_inputs) -> list[np.ndarray]:
    """The caller's inputs (checked and cast by the interpreter's binder), or seeded ones:
    floats from default_rng(0).standard_normal, integers inside the embedding table they index
    (else 0 or 1), booleans fair."""
    graph = compiled.graph
    if test_inputs is not None:
        bound = bind_inputs(graph, test_inputs)
        return [bound[n] for n in graph.inputs]
    from ..api import _index_bound  # noqa: PLC0415 (api imports the targets lazily too)

    rng = np.random.default_rng(0)
    arrays = []
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype.is_float:
            arrays.append(rng.standard_normal(t.shape).astype(t.dtype.numpy))
        else:
            hi = _index_bound(graph, name) or 2
            arrays.append(rng.integers(0, hi, size=t.shape).astype(t.dtype.numpy))
    return arrays


def _buffers(graph, names, arrays, kind: str) -> list[dict]:
    out = []
    for k, (name, arr) in enumerate(zip(names, arrays)):
        t = graph.tensors[name]
        arr = np.asarray(arr, dtype=t.dtype.numpy).reshape(-1)
        if arr.size != max(t.numel, 1) and not (t.numel == 0 and arr.size == 0):
            raise CompileError(f"{kind} {name}: {arr.size} values for a tensor of {t.numel} (ModelBlocks bug)")
        body = array_body(arr) if arr.size else "    0,"
        out.append({"index": k, "name": name, "name_c": _c_string(name), "ctype": t.dtype.ctype,
                    "dtype": t.dtype.value, "shape": "(" + ",".join(str(d) for d in t.shape) + ")",
                    "count": max(t.numel, 1), "is_float": t.dtype.is_float, "body": body})
    return out


def write_firmware_project(compiled, out_dir, *, test_inputs: list[np.ndarray] | None = None,
                           arena_region: str = "dtcm", opt: str = "-O2", tolerance: float = 1e-5) -> Path:
    """Write the NUCLEO-H723ZG project for `compiled` (a modelblocks.api.CompiledModel) into
    `out_dir` and return it. The expected outputs are `compiled.run_reference(test_inputs)`.

    Everything is written into a temporary folder first and moved into place at the end, so a
    failure never leaves a half-written project."""
    if arena_region not in ARENA_REGIONS:
        raise InputError(f"arena_region must be one of {', '.join(ARENA_REGIONS)} (DTCM 128 KB, zero wait states; "
                         f"AXI SRAM 320 KB, cached), got {arena_region!r}")
    if opt not in OPT_LEVELS:
        raise InputError(f"opt must be one of {', '.join(OPT_LEVELS)}, got {opt!r} (-Ofast would break the "
                         "float semantics the self-check relies on)")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"tolerance must be a positive finite number, got {tolerance!r}")
    graph, source = compiled.graph, compiled.source
    if not graph.inputs:
        raise InputError("a model without inputs cannot be checked on the board (nothing to feed): give it an input")
    inputs = _test_inputs(compiled, test_inputs)
    expected = compiled.run_reference(inputs)
    in_bufs = _buffers(graph, graph.inputs, inputs, "input")
    out_bufs = _buffers(graph, graph.outputs, expected, "output")

    prefix, P = source.prefix, source.prefix.upper()
    labels = {i: (graph.nodes[i].scope or graph.nodes[i].name) for i in source.profiled}
    common = dict(version=__version__, prefix=prefix, P=P, model_name=graph.name, model_name_c=_c_string(graph.name),
                  arena_region=arena_region, opt=opt, stack_size=STACK_SIZE, tolerance=repr(float(tolerance)))
    report = getattr(compiled, "report", None)
    macs = int(report.get("macs", 0)) if isinstance(report, dict) else 0
    ids = [str(i) for i in source.profiled] + ["0"]
    layer_ids_body = "\n".join("    " + ", ".join(ids[i:i + 16]) + "," for i in range(0, len(ids), 16))
    ops = [f'"{_c_string(graph.nodes[i].op)}"' for i in source.profiled] + ['"-"']
    layer_ops_body = "\n".join("    " + ", ".join(ops[i:i + 8]) + "," for i in range(0, len(ops), 8))
    call_args = ", ".join([f"fw_input{b['index']}" for b in in_bufs] + [f"fw_output{b['index']}" for b in out_bufs])
    regions = []
    for name, board_name, origin, attrs in REGIONS:
        size = BOARD.flash if board_name is None else next(r.size for r in BOARD.regions if r.name == board_name)
        regions.append({"name": name, "origin": origin, "size": size, "attrs": attrs})

    files = {
        "Makefile": _ENV.get_template("Makefile.j2").render(**common, model_c_files=source.c_files),
        "link.ld": _ENV.get_template("link.ld.j2").render(**common, regions=regions),
        "fw_config.h": _ENV.get_template("fw_config.h.j2").render(**common, c=CLOCKS),
        "mb_profile.h": _ENV.get_template("mb_profile.h.j2").render(**common, num_nodes=max(len(graph.nodes), 1)),
        "fw_testdata.h": _ENV.get_template("fw_testdata.h.j2").render(**common, inputs=in_bufs, outputs=out_bufs),
        "fw_testdata.c": _ENV.get_template("fw_testdata.c.j2").render(**common, inputs=in_bufs, outputs=out_bufs),
        "main.c": _ENV.get_template("main.c.j2").render(
            **common, inputs=in_bufs, outputs=out_bufs, layers=source.profiled, layer_ids_body=layer_ids_body,
            layer_ops_body=layer_ops_body,
            call_args=call_args, macs=macs, has_float=any(b["is_float"] for b in out_bufs),
            has_int=any(not b["is_float"] for b in out_bufs)),
        "README.md": _ENV.get_template("README.md.j2").render(
            **common, num_layers=len(source.profiled), macs=f"{macs:,}", weights_bytes=f"{source.weights_bytes:,}",
            arena_bytes=f"{source.arena_bytes:,}",
            first_op=(_c_string(graph.nodes[source.profiled[0]].op) if source.profiled else "-")[:15].ljust(15),
            first_label=(_c_string(labels[source.profiled[0]]) if source.profiled else "-")[:32].ljust(32),
            first_output=_c_string(graph.outputs[0]) if graph.outputs else "-",
            first_output_padded=(_c_string(graph.outputs[0]) if graph.outputs else "-")[:20].ljust(20),
            arena_bytes_raw=source.arena_bytes, macs_raw=macs),
    }
    for name in STATIC_FILES:
        files[name] = (FIRMWARE_DIR / name).read_text()

    with replaced_folder(out_dir) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)
        source.write(tmp / "model")
    return Path(out_dir)


def _tool(name: str) -> str:
    return tool(name, f"install the Arm toolchain and make with {APT_HINT}")


_OVERFLOW = re.compile(r"region [`'\"]?(\w+)'? overflowed by (\d+) bytes")


def _overflow_error(stderr: str, project: Path) -> InputError | None:
    found = {}
    for region, missing in _OVERFLOW.findall(stderr):
        found[region] = max(found.get(region, 0), int(missing))
    if not found:
        return None
    lines = []
    for region, missing in found.items():
        hint = ""
        if region == "DTCM":
            hint = (" (DTCM holds the stack, .data, .bss and, by default, the arena: build with "
                    "`make ARENA_REGION=axisram` or write the project with arena_region='axisram')")
        elif region == "AXISRAM":
            hint = " (the arena is larger than the 320 KB AXI SRAM: reduce the model or its input size)"
        elif region == "FLASH":
            hint = " (code and weights exceed the 1 MB flash: quantize or prune the model)"
        lines.append(f"region {region} is {missing:,} bytes short{hint}")
    return InputError(f"the firmware in {project} does not fit the NUCLEO-H723ZG (STM32H723ZG):\n  "
                      + "\n  ".join(lines))


def _region_of(address: int) -> str | None:
    for name, board_name, origin, _ in REGIONS:
        size = BOARD.flash if board_name is None else next(r.size for r in BOARD.regions if r.name == board_name)
        if origin <= address < origin + size:
            return name
    return None


def _region_usage(elf_path: Path, prefix: str) -> tuple[dict[str, int], int]:
    """Bytes used per linker region (writable sections by run address; FLASH = the flash image)
    and the address of the model's arena."""
    usage: dict[str, int] = {}
    arena = 0
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for s in elf.iter_sections():
            if not s["sh_flags"] & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                continue
            region = _region_of(s["sh_addr"])
            if s["sh_flags"] & SH_FLAGS.SHF_WRITE and region:
                usage[region] = usage.get(region, 0) + s["sh_size"]
            if s["sh_type"] != "SHT_NOBITS":
                usage["FLASH"] = usage.get("FLASH", 0) + s["sh_size"]
        symtab = elf.get_section_by_name(".symtab")
        for sym in symtab.iter_symbols() if symtab else ():
            if sym.name == f"{prefix}_arena":
                arena = sym["st_value"]
    return usage, arena


def build_firmware(project_dir, jobs: int = 2) -> FirmwareBuild:
    """Run make in a project written by `write_firmware_project`; return the ELF, BIN and HEX
    paths and the sizes. A project that does not fit the board raises InputError naming the
    region and how many bytes are missing."""
    project = Path(project_dir)
    makefile = project / "Makefile"
    if not makefile.is_file():
        raise InputError(f"{project} is not a ModelBlocks firmware project (no Makefile)")
    make = _tool("make")
    _tool("arm-none-eabi-gcc")
    proc = subprocess.run([make, f"-j{max(int(jobs), 1)}"], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        error = _overflow_error(proc.stderr + proc.stdout, project)
        if error:
            raise error
        raise CompileError(f"the firmware build failed in {project}:\n{proc.stderr[-6000:]}")
    text = makefile.read_text()
    prefix = re.search(r"^PREFIX := (\S+)$", text, re.M).group(1)
    elf = project / "build" / f"{prefix}.elf"
    sizes = elf_sizes(elf, prefix)
    usage, arena_address = _region_usage(elf, prefix)
    region = next((k for k, v in ARENA_LINKER_REGION.items() if v == _region_of(arena_address)), "")
    board_sizes = {r[0]: (BOARD.flash if r[1] is None else next(x.size for x in BOARD.regions if x.name == r[1]))
                   for r in REGIONS}
    over = {k: v - board_sizes[k] for k, v in usage.items() if v > board_sizes.get(k, 0)}
    if over:
        raise InputError(f"the firmware in {project} does not fit the NUCLEO-H723ZG: "
                         + ", ".join(f"region {k} is {v:,} bytes short" for k, v in over.items()))
    return FirmwareBuild(project, elf, project / "build" / f"{prefix}.bin", project / "build" / f"{prefix}.hex",
                         project / "build" / f"{prefix}.map", sizes, usage, region, arena_address)
