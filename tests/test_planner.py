"""Arena planners against hand-computed offsets, an independent overlap check and the liveness
lower bound (the most bytes alive at one step), on synthetic lifetimes and on the test bank."""

import itertools

import pytest
from bank_models import BANK
from hypothesis import given, settings
from hypothesis import strategies as st

import modelblocks
from modelblocks.memory import (
    STRATEGIES,
    Buffer,
    PlanError,
    check_plan,
    format_plan,
    lower_bound,
    plan_best,
    plan_greedy_by_area,
    plan_greedy_by_breadth,
    plan_greedy_by_conflict,
    plan_greedy_by_size,
    plan_greedy_by_size_best_fit,
    plan_greedy_by_start,
    plan_naive,
    plan_two_ended,
)


def brute_lower_bound(buffers):
    """Written independently of memory.check: live bytes at every integer step."""
    if not buffers:
        return 0
    return max(sum(b.size for b in buffers if b.first_use <= t <= b.last_use)
               for t in range(min(b.first_use for b in buffers), max(b.last_use for b in buffers) + 1))


def brute_valid(buffers, offsets, arena):
    """Pairwise check written independently of memory.check."""
    for a, b in itertools.combinations(buffers, 2):
        if a.last_use < b.first_use or b.last_use < a.first_use:
            continue
        oa, ob = offsets[a.name], offsets[b.name]
        assert oa + a.size <= ob or ob + b.size <= oa, (a, oa, b, ob)
    for b in buffers:
        assert offsets[b.name] % b.alignment == 0 and 0 <= offsets[b.name] and offsets[b.name] + b.size <= arena


# --- exact offsets -------------------------------------------------------------------------------

# Three long-lived "walls" (W, steps 0..9) separated at steps 0..1 by two fillers (F); once the
# fillers die the walls leave a 90-byte hole [100, 190) and a 70-byte hole [270, 340). The probe P
# (65 bytes, step 5) goes to the first hole with first fit and to the tighter second one with best fit.
HOLES = [Buffer("W1", 100, 0, 9, 1), Buffer("F1", 90, 0, 1, 1), Buffer("W2", 80, 0, 9, 1),
         Buffer("F2", 70, 0, 1, 1), Buffer("W3", 68, 0, 9, 1), Buffer("P", 65, 5, 5, 1)]
SIZE_ORDER = {"W1": 0, "F1": 100, "W2": 190, "F2": 270, "W3": 340}  # each on top of the previous


def test_lower_bound_of_the_holes_example():
    assert brute_lower_bound(HOLES) == lower_bound(HOLES) == 100 + 90 + 80 + 70 + 68  # steps 0..1


@pytest.mark.parametrize("planner, expected", [
    (plan_greedy_by_size, {**SIZE_ORDER, "P": 100}),  # first fit: lowest hole
    (plan_greedy_by_size_best_fit, {**SIZE_ORDER, "P": 270}),  # best fit: the 70-byte hole (5 bytes waste)
    (plan_greedy_by_start, {**SIZE_ORDER, "P": 100}),  # all start at 0 but P: same order as by size
    (plan_greedy_by_breadth, {**SIZE_ORDER, "P": 100}),  # step 0 (408 B) first, largest first, then step 5
    (plan_greedy_by_conflict, {**SIZE_ORDER, "P": 270}),  # peak 408 for all but P (313), best fit
    # area = size x 10 steps for the walls first, fillers on top of them, P on top of the walls
    (plan_greedy_by_area, {"W1": 0, "W2": 100, "W3": 180, "F1": 248, "F2": 338, "P": 248}),
    # height 408: W1 bottom; the rest grow down from the top, away from W1 (the longest-lived)
    (plan_two_ended, {"W1": 0, "W2": 328, "W3": 260, "F1": 170, "F2": 100, "P": 195}),
])
def test_exact_offsets_on_holes(planner, expected):
    offsets, arena = planner(HOLES)
    assert offsets == expected
    assert arena == 408 == lower_bound(HOLES)
    check_plan(HOLES, offsets, arena)


def test_naive_exact_offsets_with_alignment():
    bufs = [Buffer("a", 20, 0, 1), Buffer("b", 16, 1, 2), Buffer("c", 5, 2, 3, 4), Buffer("d", 3, 3, 4, 8)]
    assert plan_naive(bufs) == ({"a": 0, "b": 32, "c": 48, "d": 56}, 59)


# t0 -> t1 -> t2 -> t3 with sizes 32, 16, 16, 32: live bytes 48, 32, 48 -> lower bound 48.
CHAIN = [Buffer("t0", 32, 0, 1), Buffer("t1", 16, 1, 2), Buffer("t2", 16, 2, 3), Buffer("t3", 32, 3, 4)]


def test_greedy_by_size_misses_a_chain_bound_that_two_ended_reaches():
    assert lower_bound(CHAIN) == 48
    # t0 and t3 (largest) both at 0, t1 above t0, t2 must go above t1: 64 bytes
    assert plan_greedy_by_size(CHAIN) == ({"t0": 0, "t3": 0, "t1": 32, "t2": 48}, 64)
    # ping-pong inside 48 bytes: bottom, top, bottom, top
    assert plan_two_ended(CHAIN) == ({"t0": 0, "t1": 32, "t2": 0, "t3": 16}, 48)
    # first fit in execution order also finds it here: t0 0, t1 32, t2 0, t3 16
    assert plan_greedy_by_start(CHAIN) == ({"t0": 0, "t1": 32, "t2": 0, "t3": 16}, 48)
    best = plan_best(CHAIN)
    assert (best.arena_bytes, best.strategy) == (48, "greedy_by_start")
    assert best.tried["greedy_by_size"] == 64 and best.tried["naive"] == 96


def test_original_chain_example_still_exact():
    bufs = [Buffer("a", 64, 0, 1), Buffer("b", 128, 1, 2), Buffer("c", 64, 2, 3), Buffer("d", 32, 3, 4)]
    assert plan_greedy_by_size(bufs) == ({"b": 0, "a": 128, "c": 128, "d": 0}, 192)
    assert plan_best(bufs).arena_bytes == 192 == lower_bound(bufs)


def test_empty_and_single():
    assert plan_best([]).arena_bytes == 0 and lower_bound([]) == 0
    for planner in STRATEGIES.values():
        assert planner([Buffer("x", 40, 3, 3)]) == ({"x": 0}, 40)


def test_plan_best_tie_break_is_the_first_strategy():
    bufs = [Buffer("a", 64, 0, 1), Buffer("b", 64, 2, 3)]  # all reuse strategies give 64
    result = plan_best(bufs)
    assert (result.strategy, result.arena_bytes, result.offsets) == ("greedy_by_size", 64, {"a": 0, "b": 0})
    assert list(result.tried) == list(STRATEGIES)


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="unique"):
        plan_best([Buffer("a", 1, 0, 0), Buffer("a", 1, 1, 1)])


# --- the verifier --------------------------------------------------------------------------------

def test_check_plan_names_both_buffers_of_an_overlap():
    bufs = [Buffer("conv1_out", 64, 0, 2), Buffer("relu_out", 32, 2, 3)]
    with pytest.raises(PlanError) as err:
        check_plan(bufs, {"conv1_out": 0, "relu_out": 48}, 96)
    msg = str(err.value)
    assert "'conv1_out' (steps 0..2, bytes [0, 64))" in msg
    assert "'relu_out' (steps 2..3, bytes [48, 80))" in msg
    assert "share bytes [48, 64)" in msg and "steps 2..2" in msg
    check_plan(bufs, {"conv1_out": 0, "relu_out": 64}, 96)  # moved up: fine


def test_check_plan_same_bytes_at_different_times_is_fine():
    bufs = [Buffer("a", 64, 0, 1), Buffer("b", 64, 2, 3)]
    check_plan(bufs, {"a": 0, "b": 0}, 64)


@pytest.mark.parametrize("offsets, arena, pattern", [
    ({"a": 8, "b": 64}, 128, r"'a' .* not aligned to 16"),
    ({"a": 0, "b": 64}, 100, r"'b' .*bytes \[64, 128\)\) lies outside the arena of 100"),
    ({"a": 0}, 128, r"'b' has no offset"),
    ({"a": -16, "b": 64}, 128, r"outside the arena"),
])
def test_check_plan_other_errors(offsets, arena, pattern):
    bufs = [Buffer("a", 64, 0, 1), Buffer("b", 64, 1, 2)]
    with pytest.raises(PlanError, match=pattern):
        check_plan(bufs, offsets, arena)


def test_format_plan_shows_rows_and_ratio():
    offsets, arena = plan_two_ended(CHAIN)
    text = format_plan(CHAIN, offsets)
    lines = text.splitlines()
    assert lines[0] == "steps 0..4"
    assert lines[1].startswith("t0") and lines[1].endswith("##...")  # alive at steps 0 and 1
    assert "t3 [      16,       48)       32 B  ...##" in text
    assert lines[-1] == "arena 48 B, lower bound 48 B (peak steps marked ^), ratio 1.000"


# --- random lifetimes ----------------------------------------------------------------------------

LIFETIMES = st.lists(st.tuples(st.integers(1, 300), st.integers(0, 20), st.integers(0, 6), st.sampled_from([1, 4, 16])),
                     min_size=1, max_size=25)


def _buffers(spec):
    return [Buffer(f"b{i}", size, start, start + length, align) for i, (size, start, length, align) in enumerate(spec)]


@settings(max_examples=150, deadline=None)
@given(LIFETIMES)
def test_random_lifetimes_every_heuristic(spec):
    bufs = _buffers(spec)
    lb = brute_lower_bound(bufs)
    assert lower_bound(bufs) == lb
    naive = plan_naive(bufs)[1]
    arenas = {}
    for name, planner in STRATEGIES.items():
        offsets, arena = planner(bufs)
        check_plan(bufs, offsets, arena)
        brute_valid(bufs, offsets, arena)
        assert arena == max(offsets[b.name] + b.size for b in bufs)
        assert lb <= arena <= naive + sum(b.alignment for b in bufs)  # padding may depend on the order
        arenas[name] = arena
    best = plan_best(bufs)
    check_plan(bufs, best.offsets, best.arena_bytes)
    assert best.arena_bytes == min(arenas.values()) <= naive
    assert best.tried == arenas
    assert arenas[best.strategy] == best.arena_bytes
    assert all(arenas[s] > best.arena_bytes for s in list(STRATEGIES)[:list(STRATEGIES).index(best.strategy)])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 40)), min_size=1, max_size=30), st.sampled_from([4, 16]))
def test_sequential_chains_reach_the_lower_bound(spec, align):
    """t_i lives from node i to node i+1, plus an optional one-step scratch buffer at node i; sizes
    are multiples of the alignment (as float tensors are of 4), so padding cannot be forced."""
    bufs = []
    for i, (size, scratch) in enumerate(spec):
        bufs.append(Buffer(f"t{i}", size * align, i, i + 1, align))
        if scratch:
            bufs.append(Buffer(f"s{i}", scratch * align, i, i, align))
    best = plan_best(bufs)
    check_plan(bufs, best.offsets, best.arena_bytes)
    assert best.arena_bytes == brute_lower_bound(bufs)


# --- the real test bank --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BANK))
def test_bank_plan_is_valid_and_near_the_lower_bound(name):
    model, inputs, _shapes = BANK[name]()
    compiled = modelblocks.compile(model, inputs)
    source = compiled.source
    bufs, offsets, arena = source.plan.buffers, source.offsets, source.arena_bytes
    check_plan(bufs, offsets, arena)
    brute_valid(bufs, offsets, arena)
    lb = brute_lower_bound(bufs)
    ratio = arena / lb if lb else 1.0
    print(f"{name}: arena {arena} B, lower bound {lb} B, ratio {ratio:.3f}, naive {plan_naive(bufs)[1]} B")
    assert arena <= plan_naive(bufs)[1]
    assert arena == plan_best(bufs).arena_bytes  # the emitter uses the best plan
    # measured 1.000 on all 16 models with the liveness of this commit; 1.05 is the target
    assert ratio <= 1.05, format_plan(bufs, offsets)
