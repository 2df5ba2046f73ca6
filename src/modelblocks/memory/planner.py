"""Arena planners: pure functions from buffers to byte offsets.

`plan_greedy_by_size` is the classic greedy-by-size heuristic (TFLite Micro's planner works
the same way): take buffers from largest to smallest and put each at the lowest aligned offset
where it overlaps no already placed buffer that is alive at the same time. `plan_naive` gives
every buffer its own space and is the baseline the tests and reports compare against.
"""

from __future__ import annotations

from typing import Sequence

from .liveness import Buffer


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def plan_naive(buffers: Sequence[Buffer]) -> tuple[dict[str, int], int]:
    offsets, top = {}, 0
    for b in buffers:
        top = _align(top, b.alignment)
        offsets[b.name] = top
        top += b.size
    return offsets, top


def plan_greedy_by_size(buffers: Sequence[Buffer]) -> tuple[dict[str, int], int]:
    placed: list[tuple[int, int, Buffer]] = []  # (offset, end, buffer)
    offsets: dict[str, int] = {}
    for b in sorted(buffers, key=lambda b: (-b.size, b.first_use, b.name)):
        live = sorted((off, end) for off, end, o in placed
                      if not (o.last_use < b.first_use or b.last_use < o.first_use))
        candidate = 0
        for off, end in live:
            if _align(candidate, b.alignment) + b.size <= off:
                break
            candidate = max(candidate, end)
        offset = _align(candidate, b.alignment)
        offsets[b.name] = offset
        placed.append((offset, offset + b.size, b))
    arena = max((end for _o, end, _b in placed), default=0)
    return offsets, _align(arena, 16)
