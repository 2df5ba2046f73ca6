"""Flash and RAM of a linked Cortex-M program, read from its ELF (pyelftools), split by owner:
the model's code (its `<prefix>_run` and the `mb_*` kernels), its weights (`<prefix>_*` constants),
its arena, the C library functions it pulled in (libm, memcpy), and the harness around it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

# Input/output buffers of the simulation harness and of the firmware project.
IO_BUFFER_PREFIXES = ("sim_input", "sim_output", "fw_input", "fw_output")


@dataclass
class ElfSizes:
    flash: int  # bytes stored in flash: code, constants, .data's initial values, vector table
    ram_static: int  # .data + .bss
    model_code: int
    weights: int
    library_code: int  # libc/libm code and constants the model pulled in
    harness_flash: int  # start-up, vector table, I/O harness or firmware drivers
    arena: int
    model_ram_other: int  # other static data of the model and kernels
    io_buffers: int  # the harness's input and output buffers
    harness_ram: int
    sections: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def elf_sizes(path: str | Path, prefix: str, harness_prefixes: tuple[str, ...] = ("sim_", "fw_")) -> ElfSizes:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sections = {}
        flash = ram_static = 0
        for s in elf.iter_sections():
            flags = s["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                continue
            sections[s.name] = s["sh_size"]
            writable = bool(flags & SH_FLAGS.SHF_WRITE)
            if s["sh_type"] != "SHT_NOBITS":
                flash += s["sh_size"]  # .data occupies flash too (its initial values)
            if writable:
                ram_static += s["sh_size"]
        symtab = elf.get_section_by_name(".symtab")
        owners = {"model_code": 0, "weights": 0, "library_code": 0, "harness_flash": 0, "arena": 0,
                  "model_ram_other": 0, "io_buffers": 0, "harness_ram": 0}
        seen = set()
        for sym in symtab.iter_symbols() if symtab else ():
            kind = sym["st_info"]["type"]
            if kind not in ("STT_FUNC", "STT_OBJECT") or sym["st_size"] == 0 or sym["st_shndx"] in ("SHN_UNDEF", "SHN_ABS"):
                continue
            key = (sym["st_value"] & ~1, sym["st_size"])
            if key in seen:  # aliases (e.g. weak + strong names of one libc function)
                continue
            seen.add(key)
            section = elf.get_section(sym["st_shndx"])
            in_ram = bool(section["sh_flags"] & SH_FLAGS.SHF_WRITE)
            name, size = sym.name, sym["st_size"]
            ours = name.startswith(prefix + "_") or name.startswith("mb_")
            harness = name.startswith(harness_prefixes)
            if in_ram:
                if name == f"{prefix}_arena":
                    owners["arena"] += size
                elif ours:
                    owners["model_ram_other"] += size
                elif name.startswith(IO_BUFFER_PREFIXES):
                    owners["io_buffers"] += size
                else:
                    owners["harness_ram"] += size
            elif ours:
                owners["weights" if kind == "STT_OBJECT" and name.startswith(prefix + "_") else "model_code"] += size
            elif harness:
                owners["harness_flash"] += size
            else:
                owners["library_code"] += size
    # What no symbol covers (alignment padding, literal pools between functions) goes to the harness
    # line, so that the parts add up to the whole.
    owners["harness_flash"] += flash - sum(owners[k] for k in ("model_code", "weights", "library_code", "harness_flash"))
    owners["harness_ram"] += ram_static - sum(owners[k] for k in ("arena", "model_ram_other", "io_buffers", "harness_ram"))
    return ElfSizes(flash=flash, ram_static=ram_static, sections=sections, **owners)
