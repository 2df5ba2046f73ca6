"""Independent checks of an arena plan: the overlap verifier, the lower bound and an ASCII view.

`check_plan` is run on every plan `generate_c` emits; it does not share code with the planners.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import CompileError, InputError, where
from ..quant.arith import INT32_MAX
from .liveness import Buffer


class PlanError(CompileError):
    """An arena plan that would corrupt tensors: two live buffers share bytes, an offset is
    misaligned, or a buffer leaves the arena. Always a ModelBlocks bug."""


def _describe(b: Buffer, off: int) -> str:
    return f"{b.name!r} (steps {b.first_use}..{b.last_use}, bytes [{off}, {off + b.size}))"


def check_plan(buffers: Sequence[Buffer], offsets: Mapping[str, int], arena_bytes: int) -> None:
    """Raise PlanError unless every buffer has an offset, is aligned, lies inside
    [0, arena_bytes), and shares no byte with a buffer alive at one of the same steps."""
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        raise PlanError(f"memory plan: buffer names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    for b in buffers:
        if b.name not in offsets:
            raise PlanError(f"memory plan: buffer {b.name!r} has no offset (ModelBlocks bug)")
        off = offsets[b.name]
        if b.size < 0 or b.first_use > b.last_use:
            raise PlanError(f"memory plan: buffer {b.name!r} is malformed: size {b.size}, "
                            f"steps {b.first_use}..{b.last_use}")
        if b.alignment <= 0 or off % b.alignment:
            raise PlanError(f"memory plan: {_describe(b, off)} is not aligned to {b.alignment} bytes (ModelBlocks bug)")
        if off < 0 or off + b.size > arena_bytes:
            raise PlanError(f"memory plan: {_describe(b, off)} lies outside the arena of {arena_bytes} bytes "
                            "(ModelBlocks bug)")
    # sweep over time: sort by first use, keep the buffers still alive
    order = sorted((b for b in buffers if b.size > 0), key=lambda b: (b.first_use, b.name))
    active: list[Buffer] = []
    for b in order:
        active = [a for a in active if a.last_use >= b.first_use]
        ob = offsets[b.name]
        for a in active:
            oa = offsets[a.name]
            if oa < ob + b.size and ob < oa + a.size:
                lo, hi = max(oa, ob), min(oa + a.size, ob + b.size)
                raise PlanError(f"memory plan: {_describe(a, oa)} and {_describe(b, ob)} are alive at the same "
                                f"time (steps {b.first_use}..{min(a.last_use, b.last_use)}) and share bytes "
                                f"[{lo}, {hi}) (ModelBlocks bug)")
        active.append(b)


def live_bytes(buffers: Sequence[Buffer]) -> dict[int, int]:
    """Bytes of buffers alive at each step from the first to the last use of any buffer."""
    if not buffers:
        return {}
    lo = min(b.first_use for b in buffers)
    hi = max(b.last_use for b in buffers)
    live = {t: 0 for t in range(lo, hi + 1)}
    for b in buffers:
        for t in range(b.first_use, b.last_use + 1):
            live[t] += b.size
    return live


def check_addressable(buffers: Sequence[Buffer], arena_bytes: int, nodes: Sequence) -> None:
    """Refuse an arena the C cannot address. Each tensor may be under 2 GiB while the ones alive
    together are not, and the generated C holds arena offsets and sizes in int32_t."""
    if arena_bytes <= INT32_MAX:
        return
    live = live_bytes(buffers)
    step = max(live, key=live.get)
    node = nodes[step] if 0 <= step < len(nodes) else None
    place = where(node.scope, node.source, node.op) if node is not None else ""
    raise InputError(f"the activation arena needs {arena_bytes:,} bytes, more than the 2**31 - 1 the generated C "
                     f"can address (int32_t offsets): {live[step]:,} bytes are alive at once at layer "
                     f"{getattr(node, 'name', step)!r}{place}. What to change: compile with the deployment shape "
                     "(a smaller --input-shape)")


def lower_bound(buffers: Sequence[Buffer]) -> int:
    """The most bytes alive at one step: no plan of these buffers fits a smaller arena."""
    return max(live_bytes(buffers).values(), default=0)


def format_plan(buffers: Sequence[Buffer], offsets: Mapping[str, int], width: int = 64) -> str:
    """ASCII view of a plan: one row per buffer (by offset), its byte range, and a column per step
    with '#' where the buffer is alive; then a row of live bytes per step and the totals."""
    if not buffers:
        return "(empty plan: no arena buffers)"
    lo = min(b.first_use for b in buffers)
    hi = max(b.last_use for b in buffers)
    steps = list(range(lo, hi + 1))
    # squeeze long schedules into `width` columns: one column covers `per` steps
    per = max(1, -(-len(steps) // width))
    cols = [steps[i:i + per] for i in range(0, len(steps), per)]
    name_w = min(max(len(b.name) for b in buffers), 40)
    arena = max(offsets[b.name] + b.size for b in buffers)
    lines = [f"steps {lo}..{hi}" + (f" ({per} per column)" if per > 1 else "")]
    for b in sorted(buffers, key=lambda b: (offsets[b.name], b.first_use, b.name)):
        off = offsets[b.name]
        row = "".join("#" if any(b.first_use <= t <= b.last_use for t in c) else "." for c in cols)
        name = b.name if len(b.name) <= name_w else b.name[:name_w - 1] + "~"
        lines.append(f"{name:<{name_w}} [{off:>8}, {off + b.size:>8}) {b.size:>8} B  {row}")
    live = live_bytes(buffers)
    lb = max(live.values())
    peak_cols = "".join("^" if any(live[t] == lb for t in c) else " " for c in cols)
    lines.append(f"{'':<{name_w}} {'':>20} {'':>10}  {peak_cols}")
    ratio = arena / lb if lb else 1.0
    lines.append(f"arena {arena} B, lower bound {lb} B (peak steps marked ^), ratio {ratio:.3f}")
    return "\n".join(lines)
