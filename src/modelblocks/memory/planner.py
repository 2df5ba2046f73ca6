"""Arena planners: pure functions from buffers to byte offsets.

Every planner takes a sequence of `Buffer(name, size, first_use, last_use, alignment)` (lifetimes
are inclusive node indices) and returns `(offsets, arena_bytes)`: the byte offset of each buffer
inside one arena and the arena's size (the highest end of any buffer, not rounded). Two buffers
whose lifetimes intersect never share a byte; every offset is a multiple of its buffer's alignment.
`memory.check.check_plan` verifies exactly that, and `memory.check.lower_bound` is the floor no
plan can go under (the most bytes alive at one step).

The heuristics are all "greedy placement": visit the buffers in some order and put each one next
to the already placed buffers whose lifetimes intersect its own. They differ in the order and in
how the free gap is chosen:

* `plan_naive`: no reuse, every buffer has its own bytes (the baseline).
* `plan_greedy_by_size` (first fit): largest buffer first, each at the *lowest* aligned offset
  where it conflicts with nothing (the historical planner of this project).
* `plan_greedy_by_size_best_fit`: largest first, each in the *smallest* free gap it fits in, or on
  top of the conflicting buffers when no gap fits (TensorFlow Lite Micro's `GreedyMemoryPlanner`
  and ExecuTorch's greedy algorithm work this way).
* `plan_greedy_by_start`: in order of first use (ties: larger first), first fit: the arena as a
  heap that allocates in execution order.
* `plan_greedy_by_area`: size x lifetime length, largest first, best fit: long-lived large buffers
  go to the bottom and short-lived ones fill the holes above them.
* `plan_greedy_by_breadth`: Pisarchyk & Lee (2020) "greedy by breadth": visit the steps from the
  one with the most live bytes down, and at each step place its not-yet-placed buffers largest
  first (first fit), so the peak step is packed tightly before anything else.
* `plan_two_ended`: an arena as high as the lower bound, buffers in execution order each placed
  at its bottom or top, away from the conflicting buffer that lives longest (ping-pong): optimal
  on sequential chains, where size-ordered greedy can miss the bound.
* `plan_greedy_by_conflict`: buffers ordered by the peak live bytes over their own lifetime, then
  size (best fit): the buffers of the most crowded steps first.

`plan_best` runs them all and keeps the smallest arena; ties go to the earlier strategy in
`STRATEGIES`, so the result is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from .liveness import Buffer

Plan = tuple[dict[str, int], int]


@dataclass(frozen=True)
class PlanResult:
    offsets: dict[str, int]
    arena_bytes: int
    strategy: str  # name of the heuristic that produced the plan (a key of STRATEGIES)
    tried: dict[str, int] = field(default_factory=dict)  # strategy -> arena bytes, for reports


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def _overlap_in_time(a: Buffer, b: Buffer) -> bool:
    return not (a.last_use < b.first_use or b.last_use < a.first_use)


def _arena(buffers: Sequence[Buffer], offsets: dict[str, int]) -> int:
    return max((offsets[b.name] + b.size for b in buffers), default=0)


def _place(buffers: Sequence[Buffer], order: Sequence[Buffer], fit: str) -> Plan:
    """Place `order` (a permutation of `buffers`) one buffer at a time.

    fit="first": the lowest aligned offset where the buffer meets no placed, time-overlapping one.
    fit="best": among the free gaps between conflicting placed buffers, the smallest one the buffer
    fits in (ties: lowest offset); if none fits, the lowest offset above all of them.
    """
    if fit not in ("first", "best"):
        raise ValueError(f"fit must be 'first' or 'best', not {fit!r}")
    placed: list[tuple[int, int, Buffer]] = []  # (offset, end, buffer)
    offsets: dict[str, int] = {}
    for b in order:
        live = sorted((off, end) for off, end, o in placed if _overlap_in_time(o, b))
        # free gaps [start, stop) between the conflicting buffers, the last one unbounded
        gaps: list[tuple[int, int | None]] = []
        top = 0
        for off, end in live:
            if off > top:
                gaps.append((top, off))
            top = max(top, end)
        gaps.append((top, None))
        chosen: int | None = None
        best_waste: int | None = None
        for start, stop in gaps:
            at = _align(start, b.alignment)
            if stop is not None and at + b.size > stop:
                continue
            if fit == "first" or stop is None:
                if chosen is None:
                    chosen = at
                break
            waste = stop - start - b.size
            if best_waste is None or waste < best_waste:
                chosen, best_waste = at, waste
        assert chosen is not None  # the unbounded top gap always fits
        offsets[b.name] = chosen
        placed.append((chosen, chosen + b.size, b))
    return offsets, _arena(buffers, offsets)


def _check_names(buffers: Sequence[Buffer]) -> None:
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"buffer names must be unique, repeated: {dup}")


def plan_naive(buffers: Sequence[Buffer]) -> Plan:
    """No reuse: buffers one after the other in the given order (the baseline)."""
    _check_names(buffers)
    offsets, top = {}, 0
    for b in buffers:
        top = _align(top, b.alignment)
        offsets[b.name] = top
        top += b.size
    return offsets, top


def plan_greedy_by_size(buffers: Sequence[Buffer]) -> Plan:
    """Greedy by size, first fit: largest first (ties: earlier first use, then name), each at the
    lowest aligned offset free during its whole lifetime."""
    _check_names(buffers)
    return _place(buffers, sorted(buffers, key=lambda b: (-b.size, b.first_use, b.name)), "first")


def plan_greedy_by_size_best_fit(buffers: Sequence[Buffer]) -> Plan:
    """Greedy by size, best fit (TFLite Micro / ExecuTorch): largest first, each in the smallest free
    gap between conflicting buffers that holds it, else on top of them."""
    _check_names(buffers)
    return _place(buffers, sorted(buffers, key=lambda b: (-b.size, b.first_use, b.name)), "best")


def plan_greedy_by_start(buffers: Sequence[Buffer]) -> Plan:
    """In execution order (first use; ties: larger, then longer-lived first), first fit."""
    _check_names(buffers)
    return _place(buffers, sorted(buffers, key=lambda b: (b.first_use, -b.size, -b.last_use, b.name)), "first")


def plan_greedy_by_area(buffers: Sequence[Buffer]) -> Plan:
    """Largest size x lifetime (in steps) first, best fit."""
    _check_names(buffers)
    key = lambda b: (-b.size * (b.last_use - b.first_use + 1), -b.size, b.first_use, b.name)  # noqa: E731
    return _place(buffers, sorted(buffers, key=key), "best")


def _live_bytes(buffers: Sequence[Buffer]) -> dict[int, int]:
    steps = sorted({t for b in buffers for t in (b.first_use, b.last_use)})
    return {t: sum(b.size for b in buffers if b.first_use <= t <= b.last_use) for t in steps}


def plan_greedy_by_breadth(buffers: Sequence[Buffer]) -> Plan:
    """Greedy by breadth: steps from the most live bytes down; at each, its unplaced buffers largest
    first; first fit."""
    _check_names(buffers)
    live = _live_bytes(buffers)
    order: list[Buffer] = []
    seen: set[str] = set()
    for t in sorted(live, key=lambda t: (-live[t], t)):
        for b in sorted((b for b in buffers if b.first_use <= t <= b.last_use and b.name not in seen),
                        key=lambda b: (-b.size, b.first_use, b.name)):
            seen.add(b.name)
            order.append(b)
    return _place(buffers, order, "first")


def plan_greedy_by_conflict(buffers: Sequence[Buffer]) -> Plan:
    """Buffers by the peak live bytes over their lifetime, then size, largest first; best fit."""
    _check_names(buffers)
    live = _live_bytes(buffers)
    peak = {b.name: max(v for t, v in live.items() if b.first_use <= t <= b.last_use) for b in buffers}
    return _place(buffers, sorted(buffers, key=lambda b: (-peak[b.name], -b.size, b.first_use, b.name)), "best")


def _two_ended(buffers: Sequence[Buffer], height: int) -> Plan | None:
    """Place in order of first use inside [0, height), each buffer growing from the bottom or from the
    top: on the side away from the conflicting buffer that stays alive longest. None if one fits
    on neither side."""
    placed: list[tuple[int, int, Buffer, str]] = []  # (offset, end, buffer, side)
    offsets: dict[str, int] = {}
    for b in sorted(buffers, key=lambda b: (b.first_use, -b.last_use, -b.size, b.name)):
        conflicts = [(off, end, o, side) for off, end, o, side in placed if _overlap_in_time(o, b)]
        live = sorted((off, end) for off, end, _o, _s in conflicts)
        gaps, top = [], 0
        for off, end in live:
            if off > top:
                gaps.append((top, off))
            top = max(top, end)
        gaps.append((top, height))
        low = next((at for start, stop in gaps if (at := _align(start, b.alignment)) + b.size <= stop), None)
        high = next((at for start, stop in reversed(gaps)
                     if stop - b.size >= 0 and (at := (stop - b.size) // b.alignment * b.alignment) >= start), None)
        if conflicts:
            keeper = max(conflicts, key=lambda c: (c[2].last_use, c[2].size, c[2].name))
            prefer = "bottom" if keeper[3] == "top" else "top"
        else:
            prefer = "bottom"
        choices = [("bottom", low), ("top", high)]
        if prefer == "top":
            choices.reverse()
        side, at = next(((sd, a) for sd, a in choices if a is not None), ("", None))
        if at is None:
            return None
        offsets[b.name] = at
        placed.append((at, at + b.size, b, side))
    return offsets, _arena(buffers, offsets)


def plan_two_ended(buffers: Sequence[Buffer]) -> Plan:
    """Ping-pong: an arena of the lower-bound height (then a few alignments more), buffers in
    execution order each placed at the bottom or the top, away from the neighbour that lives
    longest. Exactly the lower bound on chains whose sizes are multiples of the alignment; falls
    back to greedy by size when no height tried works."""
    _check_names(buffers)
    if not buffers:
        return {}, 0
    live = _live_bytes(buffers)
    floor = max(live.values())
    step = max(b.alignment for b in buffers)
    for extra in range(4):
        plan = _two_ended(buffers, floor + extra * step)
        if plan is not None:
            return plan
    return plan_greedy_by_size(buffers)


# Order matters for plan_best's tie-break: earlier wins.
STRATEGIES: dict[str, Callable[[Sequence[Buffer]], Plan]] = {
    "greedy_by_size": plan_greedy_by_size,
    "greedy_by_size_best_fit": plan_greedy_by_size_best_fit,
    "greedy_by_breadth": plan_greedy_by_breadth,
    "greedy_by_conflict": plan_greedy_by_conflict,
    "greedy_by_area": plan_greedy_by_area,
    "greedy_by_start": plan_greedy_by_start,
    "two_ended": plan_two_ended,
    "naive": plan_naive,
}


def plan_best(buffers: Sequence[Buffer]) -> PlanResult:
    """Run every heuristic of STRATEGIES and keep the smallest arena (ties: the earlier strategy)."""
    best: PlanResult | None = None
    tried: dict[str, int] = {}
    for name, planner in STRATEGIES.items():
        offsets, arena = planner(buffers)
        tried[name] = arena
        if best is None or arena < best.arena_bytes:
            best = PlanResult(offsets, arena, name)
    assert best is not None
    return PlanResult(best.offsets, best.arena_bytes, best.strategy, tried)


def pad_buffers(buffers: Sequence[Buffer], guard: int) -> list[Buffer]:
    """The buffers with `guard` spare bytes before and after each (the canary debug build puts guard
    words there): plan these, then add `guard` to every offset to get the data's offset. `guard` must
    be a multiple of every buffer's alignment so that the data stays aligned."""
    bad = [b.name for b in buffers if guard % b.alignment]
    if guard < 0 or bad:
        raise ValueError(f"guard of {guard} bytes is not a multiple of the alignment of {bad[:3]}")
    return [Buffer(b.name, b.size + 2 * guard, b.first_use, b.last_use, b.alignment) for b in buffers]
