"""Latency and energy on the board, *estimated* from simulated instruction counts.

QEMU counts executed instructions, not cycles. The estimates multiply them by assumptions that
the user sees and can override:

- cycles = instructions x cycles per instruction (CPI). Default 1.0: the Cortex-M7 can issue two
  instructions per cycle, but loads that miss the caches, flash wait states and FPU latencies
  stall it; measure the real figure on the board (the firmware project prints DWT cycle counts)
  and pass it back with --cpi.
- latency = cycles / clock (default 550 MHz, the STM32H723's maximum).
- energy = cycles x energy per cycle. Default 0.46 nJ/cycle: a board-level figure derived from
  published MLPerf Tiny energy runs of an STM32H7A3 at 3.0 V (energy per inference divided by
  cycles per inference); it includes static power, so it is only meaningful while the core runs
  the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Assumptions:
    clock_mhz: float = 550.0
    cpi: float = 1.0
    nj_per_cycle: float = 0.46

    def __post_init__(self):
        for name in ("clock_mhz", "cpi", "nj_per_cycle"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and value != float("inf")):
                raise InputError(f"estimate assumption {name} must be a positive number, got {value!r}")

    def describe(self) -> str:
        return (f"ESTIMATES, not measurements: cycles = instructions x {self.cpi:g} CPI (assumed), "
                f"latency at {self.clock_mhz:g} MHz, energy at {self.nj_per_cycle:g} nJ/cycle "
                "(board-level, from MLPerf Tiny STM32H7A3 runs); override with --cpi, --clock-mhz, --nj-per-cycle")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    cycles: float
    latency_ms: float
    energy_uj: float

    def to_dict(self) -> dict:
        return asdict(self)


def estimate(instructions: int, assumptions: Assumptions = Assumptions()) -> Estimate:
    cycles = instructions * assumptions.cpi
    return Estimate(cycles, cycles / (assumptions.clock_mhz * 1e3), cycles * assumptions.nj_per_cycle * 1e-3)
