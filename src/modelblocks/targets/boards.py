"""Memory maps of boards: flash size and the RAM regions an activation arena can live in.

Figures are the datasheet / reference-manual numbers (sizes in bytes, 1 KB = 1024 B):

- stm32h723zg: DS13313 (STM32H723xE/G datasheet) and RM0468 section 2.3 "Memory organization":
  1 MB flash; ITCM 64 KB (default TCM_AXI_SHARED configuration), DTCM 128 KB, AXI SRAM 320 KB
  (128 KB + 192 KB shared with ITCM), SRAM1 16 KB + SRAM2 16 KB (D2 domain, contiguous), SRAM4 16 KB
  (D3 domain). Memory-region names are those of STM32CubeMX's generated linker script.
- stm32f746ng: DS10916 / RM0385: 1 MB flash; DTCM 64 KB + SRAM1 240 KB + SRAM2 16 KB = 320 KB at
  consecutive addresses from 0x20000000 (Cube's linker script makes one 320 KB "RAM" region of
  them); ITCM 16 KB.
- stm32l476rg: DS10198 / RM0351: 1 MB flash; SRAM1 96 KB at 0x20000000, SRAM2 32 KB at 0x10000000
  (also aliased right after SRAM1; Cube's script keeps it separate).
- nrf52840: nRF52840 Product Specification v1.7: 1 MB flash, 256 KB RAM (one contiguous block).
- rp2040: RP2040 datasheet section 2.6: 264 KB SRAM (4 x 64 KB striped banks + 2 x 4 KB, one
  contiguous range at 0x20000000); no internal flash: 2 MB is the Raspberry Pi Pico's QSPI chip.

Regions are listed fastest first: the fit analysis puts the arena in the first data region it
fits in. A region with `data=False` (ITCM) is kept for code and never offered to the arena.

Users describe their own board with `--target-file board.json|board.toml`:

    {"name": "myboard", "flash": "512K",
     "regions": [{"name": "SRAM", "size": "128K", "notes": "...", "linker_region": "RAM"}]}

or on the command line with `--target NAME=FLASH,RAM` (e.g. `mcu=512K,96K`).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

KB = 1024


@dataclass(frozen=True)
class Region:
    name: str
    size: int  # bytes
    notes: str = ""
    linker_region: str = ""  # MEMORY region name in the usual linker script (e.g. DTCMRAM)
    data: bool = True  # False: meant for code (ITCM), not offered to the arena


@dataclass(frozen=True)
class Board:
    name: str
    flash: int  # bytes
    regions: tuple[Region, ...]
    core: str = ""
    notes: str = ""
    source: str = ""

    @property
    def data_regions(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.data)

    @property
    def ram(self) -> int:
        """Bytes of RAM usable for data (code-only regions excluded)."""
        return sum(r.size for r in self.data_regions)

    def to_dict(self) -> dict:
        return {"name": self.name, "core": self.core, "flash": self.flash, "ram": self.ram, "notes": self.notes,
                "source": self.source,
                "regions": [{"name": r.name, "size": r.size, "notes": r.notes, "linker_region": r.linker_region,
                             "data": r.data} for r in self.regions]}


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("stm32h723zg", 1024 * KB, (
        Region("DTCM", 128 * KB, "fastest: 0-wait, CPU only (no DMA)", "DTCMRAM"),
        Region("AXI SRAM", 320 * KB, "D1 domain, cached, DMA-capable", "RAM_D1"),
        Region("SRAM1+SRAM2", 32 * KB, "D2 domain, 16 KB + 16 KB contiguous", "RAM_D2"),
        Region("SRAM4", 16 * KB, "D3 domain, kept in low-power modes", "RAM_D3"),
        Region("ITCM", 64 * KB, "0-wait instruction RAM: for code, not the arena", "ITCMRAM", data=False),
    ), core="Cortex-M7 550 MHz (NUCLEO-H723ZG)", source="DS13313, RM0468 2.3"),
    Board("stm32f746ng", 1024 * KB, (
        Region("RAM", 320 * KB, "DTCM 64 KB + SRAM1 240 KB + SRAM2 16 KB, contiguous", "RAM"),
        Region("ITCM", 16 * KB, "instruction RAM: for code", "ITCMRAM", data=False),
    ), core="Cortex-M7 216 MHz", source="DS10916, RM0385"),
    Board("stm32l476rg", 1024 * KB, (
        Region("SRAM1", 96 * KB, "main SRAM", "RAM"),
        Region("SRAM2", 32 * KB, "parity-checked, retained in Standby", "RAM2"),
    ), core="Cortex-M4F 80 MHz", source="DS10198, RM0351"),
    Board("nrf52840", 1024 * KB, (
        Region("RAM", 256 * KB, "one contiguous block", "RAM"),
    ), core="Cortex-M4F 64 MHz", source="nRF52840 PS v1.7"),
    Board("rp2040", 2048 * KB, (
        Region("SRAM", 264 * KB, "4 x 64 KB striped + 2 x 4 KB, contiguous", "RAM"),
    ), core="2x Cortex-M0+ 133 MHz", notes="flash is the Raspberry Pi Pico's external 2 MB QSPI chip",
        source="RP2040 datasheet 2.6"),
)}
ALIASES = {"stm32h723": "stm32h723zg", "nucleo-h723zg": "stm32h723zg", "stm32f746": "stm32f746ng",
           "stm32l476": "stm32l476rg", "pico": "rp2040"}


def parse_size(text) -> int:
    """'1M', '256K', '320KB', '4096' or an int -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)[bB]?\s*", str(text))
    if not m:
        raise InputError(f"{text!r} is not a size: write bytes, or a number with K or M (e.g. 256K, 1M)")
    scale = {"": 1, "k": KB, "m": KB * KB}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def board_from_dict(data: dict, origin: str = "board file") -> Board:
    if not isinstance(data, dict):
        raise InputError(f"{origin}: expected an object with name, flash and regions")
    try:
        regions = data.get("regions")
        if regions is None and "ram" in data:
            regions = [{"name": "RAM", "size": data["ram"]}]
        if not regions:
            raise InputError(f"{origin}: needs 'regions' (a list of {{name, size}}) or 'ram'")
        board = Board(
            name=str(data.get("name", "custom")), flash=parse_size(data["flash"]),
            regions=tuple(Region(str(r["name"]), parse_size(r["size"]), str(r.get("notes", "")),
                                 str(r.get("linker_region", "")), bool(r.get("data", True))) for r in regions),
            core=str(data.get("core", "")), notes=str(data.get("notes", "")), source=origin)
    except KeyError as exc:
        raise InputError(f"{origin}: missing field {exc}") from None
    except TypeError as exc:
        raise InputError(f"{origin}: malformed board description ({exc})") from None
    if not board.data_regions:
        raise InputError(f"{origin}: no data region (every region has data=false)")
    return board


def load_board_file(path: str | Path) -> Board:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"board file {path} does not exist")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text())
        else:
            data = json.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"board file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    return board_from_dict(data, origin=str(path))


def get_board(spec: str) -> Board:
    """A built-in board by name, or `NAME=FLASH,RAM` (one RAM region)."""
    if "=" in spec:
        name, _, sizes = spec.partition("=")
        parts = sizes.split(",")
        if len(parts) != 2 or not name.strip():
            raise InputError(f"--target {spec!r}: write NAME=FLASH,RAM, e.g. mcu=512K,96K")
        return Board(name.strip(), parse_size(parts[0]), (Region("RAM", parse_size(parts[1])),),
                     source="command line")
    key = ALIASES.get(spec.lower(), spec.lower())
    if key not in BOARDS:
        raise InputError(f"unknown target {spec!r}: built in are {', '.join(sorted(BOARDS))}; "
                         "or pass NAME=FLASH,RAM or --target-file board.json")
    return BOARDS[key]
