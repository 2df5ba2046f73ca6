"""First memory plan: live buffers never overlap, space is reused, and the arena sits between the
liveness lower bound and the naive plan."""

import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import modelblocks
from modelblocks.memory import Buffer, plan_greedy_by_size, plan_naive


def lower_bound(buffers):
    """No plan can use less than the largest total size alive at one moment."""
    steps = {t for b in buffers for t in (b.first_use, b.last_use)}
    return max((sum(b.size for b in buffers if b.first_use <= t <= b.last_use) for t in steps), default=0)


def assert_valid(buffers, offsets):
    for i, a in enumerate(buffers):
        assert offsets[a.name] % a.alignment == 0
        for b in buffers[i + 1:]:
            if a.last_use < b.first_use or b.last_use < a.first_use:
                continue
            disjoint = offsets[a.name] + a.size <= offsets[b.name] or offsets[b.name] + b.size <= offsets[a.name]
            assert disjoint, f"{a} and {b} overlap while both alive"


def test_exact_offsets_for_a_chain():
    # a -> b -> c -> d: each buffer lives from its producer to its consumer
    bufs = [Buffer("a", 64, 0, 1), Buffer("b", 128, 1, 2), Buffer("c", 64, 2, 3), Buffer("d", 32, 3, 4)]
    offsets, size = plan_greedy_by_size(bufs)
    assert offsets == {"b": 0, "a": 128, "c": 128, "d": 0}
    assert size == 192 == lower_bound(bufs)
    assert plan_naive(bufs)[1] == 64 + 128 + 64 + 32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 20), st.integers(0, 6)), min_size=1, max_size=25))
def test_random_lifetimes(spec):
    bufs = [Buffer(f"b{i}", size, start, start + length) for i, (size, start, length) in enumerate(spec)]
    offsets, size = plan_greedy_by_size(bufs)
    assert_valid(bufs, offsets)
    assert all(offsets[b.name] + b.size <= size for b in bufs)
    assert lower_bound(bufs) <= size <= plan_naive(bufs)[1] + 16 * len(bufs)


def test_deep_mlp_reuses_buffers():
    torch.manual_seed(0)
    layers = []
    for _ in range(6):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    model = nn.Sequential(*layers).eval()
    compiled = modelblocks.compile(model, (torch.randn(1, 64),))
    plan = compiled.source.plan
    arena_tensors = [b for b in plan.buffers]
    # 12 layer outputs; each Tanh runs in place over its Linear's output, and the last pair writes into
    # the caller's output buffer: 5 arena buffers
    assert len(arena_tensors) == 5
    assert compiled.source.arena_bytes == 2 * 256  # ping-pong between two 64-float buffers
    assert_valid(plan.buffers, compiled.source.offsets)
    x = torch.randn(1, 64)
    got = compiled.run_c([x.numpy()])[0]
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), rtol=1e-5, atol=1e-6)
