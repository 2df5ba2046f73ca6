"""The Cortex-M cores ModelBlocks cross-compiles for, and the QEMU board each one is simulated on.

Compiler flags pick the hard-float ABI with the core's FPU (without `-mfloat-abi=hard`,
`-mcpu=cortex-m7` alone selects the soft-float library). Memory maps are QEMU 7.2's
(`info mtree`, and the boards' application notes AN386, AN500, AN505, AN547): "flash" is the
RAM the vector table is fetched from at reset, "ram" holds data, arena and stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

MB = 1024 * 1024


@dataclass(frozen=True)
class CortexM:
    name: str
    machine: str  # qemu-system-arm -M
    cflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    fpu: str  # for reports
    notes: str = ""

    @property
    def flags(self) -> list[str]:
        return ["-mthumb", *self.cflags]


CPUS: dict[str, CortexM] = {c.name: c for c in (
    CortexM("cortex-m4", "mps2-an386", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
            0x00000000, 4 * MB, 0x20000000, 4 * MB, "FPv4-SP (single precision)"),
    CortexM("cortex-m7", "mps2-an500", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
            0x00000000, 4 * MB, 0x20000000, 4 * MB, "FPv5 single + double (as on STM32H723)"),
    CortexM("cortex-m33", "mps2-an505", ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"),
            0x10000000, 4 * MB, 0x38000000, 4 * MB, "FPv5-SP, runs in the Secure state",
            "code in SSRAM1 (Secure alias), data in SSRAM2+3 (Secure alias)"),
    CortexM("cortex-m55", "mps3-an547", ("-mcpu=cortex-m55", "-mfloat-abi=hard"),
            0x10000000, 512 * 1024, 0x30000000, 512 * 1024, "FPv5 + Helium (MVE), runs in the Secure state",
            "code in ITCM 512 KB, data in DTCM 512 KB (Secure aliases)"),
)}
DEFAULT_CPU = "cortex-m7"


def get_cpu(name: str) -> CortexM:
    key = name.lower()
    if key not in CPUS:
        raise InputError(f"unknown Cortex-M target {name!r}: simulated are {', '.join(CPUS)} (or 'all')")
    return CPUS[key]
