"""The compression study's results: the Pareto front against a brute-force definition, the best
point for a board (and the reason when none qualifies), the CSV round trip, the plots and the text."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelblocks.errors import InputError
from modelblocks.reports.study import (StudyPoint, best_point, fit_verdict, format_study, pareto_front, plot_study,
                                       read_csv, score, score_label, score_name, select_best, write_csv)
from modelblocks.targets.boards import KB, get_board


def pt(name, flash_kb, acc, *, arena_kb=1.0, macs=1000, precision="float32", baseline=False, agreement=None,
       **kw):
    return StudyPoint(name=name, rank=kw.pop("rank", ""), sparsity=kw.pop("sparsity", 0.0),
                      structured=kw.pop("structured", ""), precision=precision, finetuned=kw.pop("finetuned", False),
                      accuracy=acc, agreement=acc if agreement is None and acc is not None else (agreement or 0.0),
                      output_rel_l2=kw.pop("output_rel_l2", 0.0), flash_bytes=int(flash_kb * KB),
                      weights_bytes=int(flash_kb * KB * 0.9), arena_bytes=int(arena_kb * KB), macs=macs,
                      params=kw.pop("params", 100), c_check=kw.pop("c_check", ""), baseline=baseline)


# ---------------------------------------------------------------------------------- Pareto front

def brute_front(points, x, metric):
    """O(n^2): p is on the front iff no q dominates it (<= cost and >= score, one strict) and no q with
    the same cost and score precedes it in the documented tie order (other cost, arena, position)."""
    other = "macs" if x != "macs" else "flash_bytes"
    out = []
    for i, p in enumerate(points):
        sp = score(p, metric)
        dominated = False
        for j, q in enumerate(points):
            sq = score(q, metric)
            if j == i:
                continue
            if getattr(q, x) <= getattr(p, x) and sq >= sp and (getattr(q, x) < getattr(p, x) or sq > sp):
                dominated = True
            elif (getattr(q, x) == getattr(p, x) and sq == sp
                  and (getattr(q, other), q.arena_bytes, j) < (getattr(p, other), p.arena_bytes, i)):
                dominated = True
        if not dominated:
            out.append(p)
    return sorted(out, key=lambda p: getattr(p, x))


point_sets = st.lists(
    st.tuples(st.integers(1, 12), st.integers(0, 8), st.integers(1, 6), st.integers(1, 3), st.booleans()),
    min_size=0, max_size=25)


def build(raw):
    pts = []
    for k, (flash, acc, macs, arena, labelled) in enumerate(raw):
        p = pt(f"p{k}", flash, acc / 8, macs=macs * 1000, arena_kb=arena)
        p.agreement = (acc % 5) / 4
        pts.append(p)
    if raw and not raw[0][4]:
        pts[0].accuracy = None  # one unlabelled point: the whole study is scored by agreement
    return pts


@settings(max_examples=150, deadline=None)
@given(point_sets, st.sampled_from(["flash_bytes", "macs"]))
def test_pareto_front_equals_brute_force(raw, x):
    pts = build(raw)
    metric = score_name(pts)
    front = pareto_front(pts, x)
    assert [p.name for p in front] == [p.name for p in brute_front(pts, x, metric)]
    # along the front cost and score both strictly increase
    costs = [getattr(p, x) for p in front]
    scores = [score(p, metric) for p in front]
    assert costs == sorted(set(costs)) and scores == sorted(set(scores))
    if pts:  # the cheapest point with the highest score among the cheapest, and the overall best score, are on it
        assert scores[-1] == max(score(p, metric) for p in pts)
        assert costs[0] == min(getattr(p, x) for p in pts)


def test_score_switches_to_agreement_without_labels():
    a = pt("a", 10, 0.9, agreement=0.95)
    b = pt("b", 5, 0.8, agreement=0.99)
    assert score_name([a, b]) == "accuracy" and score_label([a, b]) == "top-1 accuracy (%)"
    assert [p.name for p in pareto_front([a, b])] == ["b", "a"]
    b.accuracy = None
    assert score_name([a, b]) == "agreement" and score_label([a, b]) == "agreement with the original (%)"
    assert score(a, "agreement") == 0.95 and score(a) == 0.9
    assert [p.name for p in pareto_front([a, b])] == ["b"]  # b: smaller and agrees more


def test_pareto_ties_keep_one_representative():
    a = pt("a", 10, 0.9, macs=5000)
    b = pt("b", 10, 0.9, macs=3000)  # same flash and score, fewer MACs: kept
    c = pt("c", 10, 0.9, macs=3000)  # identical to b, listed later: dropped
    d = pt("d", 8, 0.9)  # dominates all three
    assert [p.name for p in pareto_front([a, b, c])] == ["b"]
    assert [p.name for p in pareto_front([a, b, c, d])] == ["d"]
    assert [p.name for p in pareto_front([a, b, c], x="macs")] == ["b"]


# ------------------------------------------------------------------------------------ best point

def study():
    """stm32l476rg: 1024 KB flash, SRAM1 96 KB then SRAM2 32 KB."""
    return [
        pt("float32", 1200, 0.9722, arena_kb=4, macs=300_000, baseline=True),
        pt("int8", 320, 0.9685, arena_kb=1, macs=300_000, precision="int8"),
        pt("int8-weights", 310, 0.9741, arena_kb=4, macs=300_000, precision="int8-weights"),
        pt("rank d=8 + int8", 150, 0.9500, arena_kb=1, macs=90_000, precision="int8"),
        pt("sparsity 50% + int8", 180, 0.9670, arena_kb=1, macs=150_000, precision="int8"),
        pt("wide arena", 100, 0.9722, arena_kb=100, macs=50_000),  # arena > SRAM1 96 KB: never fits
    ]


def test_best_point_on_a_board():
    board = get_board("stm32l476rg")
    pts = study()
    # within 1.0 point of 97.22 %: int8 (-0.37), int8-weights (+0.19), sparsity (-0.52); smallest flash
    assert best_point(pts, board, max_drop=1.0).name == "sparsity 50% + int8"
    assert best_point(pts, board, max_drop=0.4).name == "int8-weights"  # 310 KB < int8's 320 KB
    assert best_point(pts, board, max_drop=3.0).name == "rank d=8 + int8"  # drop 2.22 points
    # without an accuracy limit the smallest point that fits; "wide arena" (100 KB flash) needs 100 KB of RAM
    assert best_point(pts, board).name == "rank d=8 + int8"
    assert best_point(pts).name == "wide arena"  # no board: nothing limits it
    # the same board with a 200 KB contiguous RAM holds the wide arena
    assert best_point(pts, get_board("big=1M,200K")).name == "wide arena"
    # fewest MACs instead of the smallest flash
    assert best_point(pts, board, max_drop=1.0, minimize="macs").name == "sparsity 50% + int8"
    assert best_point(pts, board, max_drop=3.0, minimize="macs").name == "rank d=8 + int8"
    assert best_point(pts, get_board("big=1M,200K"), minimize="macs").name == "wide arena"
    sel = select_best(pts, board, max_drop=1.0)
    assert [p.name for p in sel.fitting] == ["int8", "int8-weights", "rank d=8 + int8", "sparsity 50% + int8"]
    assert [p.name for p in sel.within_drop] == ["float32", "int8", "int8-weights", "sparsity 50% + int8",
                                                 "wide arena"]
    assert "sparsity 50% + int8" in sel.reason and "that fit stm32l476rg" in sel.reason


def test_best_point_ties_and_ram_reserve():
    board = get_board("stm32l476rg")
    base = pt("base", 2000, 0.90, baseline=True)
    a = pt("a", 100, 0.89, macs=500)
    b = pt("b", 100, 0.89, macs=400)  # same flash, fewer MACs
    c = pt("c", 100, 0.895, macs=400)  # same flash and MACs, higher score
    assert best_point([base, a, b]).name == "b"
    assert best_point([base, a, b, c]).name == "c"
    # arena 90 KB goes to SRAM1 (96 KB): 6 KB left there, SRAM2 32 KB free for the reserved RAM
    d = pt("d", 50, 0.90, arena_kb=90)
    assert best_point([base, a, d], board, ram_reserve=32 * KB).name == "d"
    assert best_point([base, a, d], board, ram_reserve=32 * KB + 1).name == "a"
    v = fit_verdict(d, board, ram_reserve=32 * KB + 1)
    assert not v.fits and v.ram_needed == 90 * KB + 32 * KB + 1 and v.arena_region == "SRAM1"
    # flash exactly at the limit fits, one byte more does not
    e = pt("e", 1024, 0.90)
    assert fit_verdict(e, board).fits and fit_verdict(e, board).flash_free == 0
    e.flash_bytes += 1
    assert not fit_verdict(e, board).fits and fit_verdict(e, board).flash_free == -1


def test_best_point_none_and_why():
    pts = study()
    tiny = get_board("tiny=64K,16K")
    sel = select_best(pts, tiny, max_drop=1.0)
    assert sel.point is None and best_point(pts, tiny, max_drop=1.0) is None
    assert sel.too_big and not sel.drop_too_large and sel.fitting == []
    # the smallest point (100 KB flash) is 36 KB over the 64 KB flash and its arena 84 KB over the RAM
    assert "no point fits tiny: every one is too big" in sel.reason
    assert "36.0 KB more flash" in sel.reason and "84.0 KB more RAM" in sel.reason
    # fits, but the accuracy drop is too large: only "rank d=8 + int8" (2.22 points down) fits this board
    small = get_board("small=160K,16K")
    sel = select_best(pts, small, max_drop=1.0)
    assert sel.point is None and not sel.too_big and sel.drop_too_large
    assert [p.name for p in sel.fitting] == ["rank d=8 + int8"]
    assert "accuracy drop is too large" in sel.reason and "loses 2.22 points" in sel.reason
    assert "the smallest within the drop, wide arena, is too big: needs 84.0 KB more RAM" in sel.reason
    assert best_point(pts, small, max_drop=2.5).name == "rank d=8 + int8"
    assert best_point(pts, small, max_drop=2.21) is None and best_point(pts, small, max_drop=2.23) is not None
    assert select_best([]).point is None
    with pytest.raises(InputError, match="baseline"):
        best_point([p for p in pts if not p.baseline], small, max_drop=1.0)
    with pytest.raises(InputError):
        best_point(pts, small, max_drop=-1)


# -------------------------------------------------------------------------------------------- CSV

def test_csv_round_trip(tmp_path):
    pts = study()
    pts[1].name = 'rank e=0.90 + sparsity 50%, "int8"\nsecond line'
    pts[1].c_check = "C == reference (rel 2.1e-07)"
    pts[2].accuracy = None
    pts[3].agreement = 0.1 + 0.2  # 0.30000000000000004: must come back bit for bit
    pts[3].output_rel_l2 = 1.2345678901234567e-7
    pts[4].sparsity = np.float64(0.5)
    pts[4].macs = np.int64(123456789012)
    pts[4].finetuned = np.bool_(True)
    pts[5].output_rel_l2 = math.inf
    path = write_csv(pts, tmp_path / "sub" / "study.csv")
    back = read_csv(path)
    assert back == pts
    assert type(back[4].macs) is int and back[4].finetuned is True and back[2].accuracy is None
    assert back[3].agreement == 0.30000000000000004 and back[0].baseline is True
    header = path.read_text().splitlines()[0].split(",")
    assert header == [f.name for f in dataclasses.fields(StudyPoint)]
    # optional columns may be missing, required ones not
    lines = path.read_text().splitlines()
    (tmp_path / "bad.csv").write_text("name,flash_bytes\nx,3\n")
    with pytest.raises(InputError, match="missing column"):
        read_csv(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text(lines[0] + "\n" + lines[1].replace(",1228800,", ",12KB,", 1) + "\n")
    with pytest.raises(InputError, match="flash_bytes"):
        read_csv(tmp_path / "bad2.csv")


# ------------------------------------------------------------------------------------ plots, text

def test_plots_are_pngs_and_differ(tmp_path):
    from matplotlib.image import imread

    pts = study()
    paths = plot_study(pts, tmp_path / "a", "digits MLP", board=get_board("stm32l476rg"), best=pts[4])
    assert [p.name for p in paths] == ["accuracy_vs_flash.png", "accuracy_vs_macs.png"]
    other = [dataclasses.replace(p, accuracy=p.accuracy - 0.2 if not p.baseline else p.accuracy) for p in pts]
    paths2 = plot_study(other, tmp_path / "b", "digits MLP")
    for p, q in zip(paths, paths2):
        a, b = imread(p), imread(q)
        assert a.shape == (500, 800, 4) and b.shape == a.shape
        assert float(np.abs(a - b).mean()) > 1e-3
        assert float(a[..., :3].std()) > 0.05  # not a blank image


def test_format_study_table_and_best_line():
    pts = study()
    board = get_board("stm32l476rg")
    text = format_study(pts, None, board=board, max_drop=1.0)
    lines = text.splitlines()
    rows = lines[2:2 + len(pts)]
    front = pareto_front(pts)
    assert [r[0] == "*" for r in rows] == [p in front for p in pts]
    # wide arena (100 KB, 97.22 %) dominates every smaller-scoring point; int8-weights scores higher
    assert [p.name for p in front] == ["wide arena", "int8-weights"] and sum(r.startswith("*") for r in rows) == 2
    row = next(r for r in rows if "int8-weights" in r)
    assert "97.41" in row and "-0.19" in row and "310.0" in row and "300,000" in row
    assert "no: flash" in rows[0] and "no: RAM" in rows[5] and rows[1].split()[-2] == "yes"
    assert lines[-1].startswith("best point: sparsity 50% + int8")
    assert format_study(pts, select_best(pts, board, 1.0), board=board) == text
    given = format_study(pts, pts[4], board=board).splitlines()  # a point chosen by the caller: its fit verdict
    assert given[:-1] == lines[:-1] and given[-1].startswith("best point: sparsity 50% + int8")
    assert "fits stm32l476rg" in given[-1]
    none = format_study(pts, None, board=get_board("tiny=64K,16K"), max_drop=1.0)
    assert none.splitlines()[-1].startswith("no point fits tiny: every one is too big")


def test_study_json_is_strict_json():
    """A point whose outputs overflowed has an infinite output error and no score: the saved JSON
    holds null there (json.dumps would otherwise write Infinity/NaN, which strict readers reject),
    and NumPy scalars become plain numbers with the same value."""
    import json

    from modelblocks.reports.study import study_json

    good = pt("float32", 300, 0.97, baseline=True)
    bad = pt("overflow", 100, float("nan"))
    bad.output_rel_l2 = float("inf")
    bad.macs = np.int64(123)
    sel = select_best([good, bad])
    text = json.dumps(study_json([good, bad], sel), allow_nan=False)
    rows = json.loads(text)["points"]
    assert rows[1]["output_rel_l2"] is None and rows[1]["accuracy"] is None and rows[1]["macs"] == 123
    assert rows[0]["accuracy"] == 0.97 and rows[0]["output_rel_l2"] == good.output_rel_l2
