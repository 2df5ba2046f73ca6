"""Canary debug build of the generated C: a guard word pattern before and after every arena buffer.

The planner packs padded buffers (`memory.planner.pad_buffers`: `guard` bytes on each side), so a
buffer's guards never share a byte with a buffer alive at the same step. The run function then
arms the guards of the buffers that come alive at layer i just before layer i (arming earlier would
be wrong: the bytes may still belong to a buffer that died before i), and after layer i checks the
guards of every buffer alive at i; each broken guard calls the user's hook
`mb_canary_failed(layer, tensor)` and the run returns 1 before the next layer computes on corrupt
data. A kernel that writes past its output, or two live tensors that the plan let overlap, break a
guard. The release build (canaries off) is the same C as without this module.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ...memory.liveness import Buffer

GUARD_PATTERN = bytes([0xDE, 0xAD, 0xBE, 0xEF])
MIN_GUARD_BYTES = 16


def guard_bytes(alignment: int) -> int:
    """Bytes of each guard: at least 16, and a multiple of the arena alignment so that a buffer's
    data keeps the offset alignment its kernels rely on."""
    return -(-MIN_GUARD_BYTES // alignment) * alignment


def canary_table(buffers: Sequence[Buffer], data_offsets: Mapping[str, int], guard: int) -> list[dict]:
    """One row per arena buffer for the template: name, low/high guard offsets, lifetime."""
    rows = []
    for b in buffers:
        off = data_offsets[b.name]
        rows.append({"name": b.name.replace("\\", "/").replace('"', "'"), "low": off - guard, "high": off + b.size,
                     "first": b.first_use, "last": b.last_use})
    return rows


def pattern_literal(guard: int) -> str:
    """The guard bytes as a C initialiser list."""
    pattern = (GUARD_PATTERN * (guard // len(GUARD_PATTERN) + 1))[:guard]
    return ", ".join(f"0x{b:02X}u" for b in pattern)
