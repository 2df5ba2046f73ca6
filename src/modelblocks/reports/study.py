"""Results of a compression study: one `StudyPoint` per compression setting, the Pareto front of
score against size or MACs, the best point for a board, a CSV, the plots and the text table.

The *score* of a study is the top-1 accuracy when every point has one (labelled evaluation data),
else the top-1 agreement with the original model. Scores are fractions in [0, 1]; the text and the
plots show them in %, and accuracy drops are in percentage points.

Whether a point fits a board is decided by `reports.analyze.analyze_fit`, the same rule
`modelblocks analyze` applies: flash bytes (weights + code) within the board's flash, the arena
whole in one data region (fastest first), and `ram_reserve` bytes (stack and the rest of the
firmware) in a region with room left next to it.
"""

from __future__ import annotations

import csv
import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..errors import InputError
from ..targets.boards import KB, Board
from .analyze import FitVerdict, analyze_fit, kb

PRECISIONS = ("float32", "int8-weights", "int8")
MINIMIZE = {"flash": "flash_bytes", "macs": "macs"}
SCORE_LABELS = {"accuracy": "top-1 accuracy (%)", "agreement": "agreement with the original (%)"}
_EPS = 1e-9  # slack in percentage points when comparing a drop with max_drop (float round-off)


@dataclass
class StudyPoint:
    name: str  # e.g. "rank e=0.90 + sparsity 50% + int8"
    rank: str  # "" (none) or the setting, e.g. "energy 0.90" / "d=16"
    sparsity: float  # 0.0 .. 1.0 (fraction of prunable weights zeroed)
    structured: str  # "" or e.g. "neurons 25%" / "layers -1"
    precision: str  # "float32", "int8-weights" or "int8"
    finetuned: bool
    accuracy: float | None  # top-1 accuracy on labelled eval data, None without labels
    agreement: float  # fraction of eval samples whose top-1 equals the original model's
    output_rel_l2: float  # relative L2 of the outputs vs the original float model
    flash_bytes: int  # weights + estimated code
    weights_bytes: int
    arena_bytes: int
    macs: int
    params: int
    c_check: str = ""  # e.g. "C == reference (rel 2.1e-07)" or "bit-exact": filled by the study
    baseline: bool = False  # the uncompressed float32 model


# ---------------------------------------------------------------------------------------- scores

def score_name(points) -> str:
    """'accuracy' when every point has an accuracy, else 'agreement'."""
    points = list(points)
    return "accuracy" if points and all(p.accuracy is not None for p in points) else "agreement"


def score_label(points) -> str:
    """The y-axis label: 'top-1 accuracy (%)' or 'agreement with the original (%)'."""
    return SCORE_LABELS[score_name(points)]


def score(point: StudyPoint, metric: str | None = None) -> float:
    """The point's score as a fraction: `metric` 'accuracy' or 'agreement'; None takes the accuracy
    when the point has one. Within a study use `score(p, score_name(points))` so that every point
    is measured the same way."""
    if metric is None:
        metric = "accuracy" if point.accuracy is not None else "agreement"
    if metric not in SCORE_LABELS:
        raise InputError(f"unknown score {metric!r}: use 'accuracy' or 'agreement'")
    value = getattr(point, metric)
    if value is None:
        raise InputError(f"study point {point.name!r} has no {metric}")
    return float(value)


def baseline_of(points) -> StudyPoint | None:
    """The first point flagged baseline (the uncompressed float32 model), or None."""
    return next((p for p in points if p.baseline), None)


def accuracy_drop(point: StudyPoint, baseline: StudyPoint | None, metric: str) -> float | None:
    """Percentage points the point loses against the baseline (negative: it scores higher)."""
    if baseline is None:
        return None
    return 100.0 * (score(baseline, metric) - score(point, metric))


# ---------------------------------------------------------------------------------- Pareto front

def _check_axis(x: str) -> str:
    x = MINIMIZE.get(x, x)
    if x not in ("flash_bytes", "macs", "arena_bytes", "weights_bytes", "params"):
        raise InputError(f"pareto_front: x={x!r} is not a cost column (flash_bytes, macs, arena_bytes, "
                         "weights_bytes, params)")
    return x


def pareto_front(points, x: str = "flash_bytes", metric: str | None = None) -> list[StudyPoint]:
    """The non-dominated points for minimising `x` and maximising the score, sorted by `x`.

    q dominates p when q.x <= p.x and score(q) >= score(p) with at least one strict. Points with
    equal x *and* equal score do not dominate one another; of such a group only one is kept: the
    one with the smaller other cost (MACs when x is flash, flash otherwise), then the smaller
    arena, then the first in `points`. Along the returned list x and score both strictly increase.
    Points with a NaN score are never on the front."""
    points = list(points)
    if not points:
        return []
    x = _check_axis(x)
    metric = metric or score_name(points)
    other = "macs" if x != "macs" else "flash_bytes"
    keyed = []
    for i, p in enumerate(points):
        s = score(p, metric)
        if math.isnan(s):
            continue
        keyed.append((getattr(p, x), -s, getattr(p, other), p.arena_bytes, i, p))
    keyed.sort(key=lambda k: k[:5])
    front, best = [], -math.inf
    for cost, neg_s, *_, p in keyed:
        # sorted by cost, then score descending: a point is on the front iff it beats every score
        # seen so far (all of them at a cost <= its own); an equal score at a lower or equal cost
        # dominates it, or is its tie-group's chosen representative
        if -neg_s > best:
            front.append(p)
            best = -neg_s
    return front


# ------------------------------------------------------------------------------------ best point

@dataclass
class Selection:
    """The outcome of `select_best`: the chosen point (or None) and one line saying why."""
    point: StudyPoint | None
    reason: str
    metric: str
    board: str | None = None
    max_drop: float | None = None
    minimize: str = "flash"
    fitting: list[StudyPoint] = field(default_factory=list)  # fit the board (all points without one)
    within_drop: list[StudyPoint] = field(default_factory=list)  # within max_drop (all without a limit)
    verdicts: dict[int, FitVerdict] = field(default_factory=dict)  # by index in the points list

    @property
    def too_big(self) -> bool:
        """No point fits the board."""
        return self.board is not None and not self.fitting

    @property
    def drop_too_large(self) -> bool:
        """Points fit the board, but none of them within max_drop."""
        return bool(self.fitting) and self.point is None


def fit_verdict(point: StudyPoint, board: Board, ram_reserve: int = 0) -> FitVerdict:
    """analyze_fit on the point's totals; `ram_reserve` stands where analyze puts the stack."""
    report = {"totals": {"flash_bytes": int(point.flash_bytes), "arena_bytes": int(point.arena_bytes),
                         "stack_bytes": int(ram_reserve), "code_bytes": 0, "code_method": ""},
              "layers": []}
    return analyze_fit(report, board)


def _describe(p: StudyPoint, metric: str, baseline: StudyPoint | None) -> str:
    drop = accuracy_drop(p, baseline, metric)
    drop_text = f", {drop:+.2f} points vs the baseline" if drop is not None and not p.baseline else ""
    return (f"{p.name} ({metric} {100 * score(p, metric):.2f} %{drop_text}; flash {kb(p.flash_bytes)}, "
            f"arena {kb(p.arena_bytes)}, {p.macs / 1e6:,.3f} MMACs)")


def select_best(points, board: Board | None = None, max_drop: float | None = None, ram_reserve: int = 0,
                minimize: str = "flash") -> Selection:
    """Among the points that fit `board` (when given) and score within `max_drop` percentage points
    of the baseline (when given), the one with the smallest flash (ties: fewer MACs, then the
    higher score), or with `minimize='macs'` the fewest MACs (ties: smaller flash, then the higher
    score); remaining ties go to the smaller arena, then the first listed. `reason` says why, or why
    none qualifies: every point too big for the board, or those that fit lose too much."""
    points = list(points)
    if minimize not in MINIMIZE:
        raise InputError(f"minimize={minimize!r}: use 'flash' or 'macs'")
    if max_drop is not None and (not math.isfinite(max_drop) or max_drop < 0):
        raise InputError(f"max_drop={max_drop!r}: give a non-negative number of percentage points")
    if ram_reserve < 0:
        raise InputError(f"ram_reserve={ram_reserve!r} must be >= 0 bytes")
    metric = score_name(points)
    sel = Selection(None, "", metric, board.name if board else None, max_drop, minimize)
    if not points:
        sel.reason = "no study points"
        return sel
    baseline = baseline_of(points)
    if max_drop is not None and baseline is None:
        raise InputError("a maximum accuracy drop needs the baseline point (baseline=True): the study has none")

    fits = [True] * len(points)
    if board is not None:
        for i, p in enumerate(points):
            sel.verdicts[i] = fit_verdict(p, board, ram_reserve)
            fits[i] = sel.verdicts[i].fits
    within = [True] * len(points)
    if max_drop is not None:
        within = [accuracy_drop(p, baseline, metric) <= max_drop + _EPS for p in points]
    sel.fitting = [p for p, f in zip(points, fits) if f]
    sel.within_drop = [p for p, w in zip(points, within) if w]

    primary = MINIMIZE[minimize]
    secondary = "macs" if minimize == "flash" else "flash_bytes"
    candidates = [(getattr(p, primary), getattr(p, secondary), -score(p, metric), p.arena_bytes, i, p)
                  for i, p in enumerate(points) if fits[i] and within[i]]
    what = "smallest flash" if minimize == "flash" else "fewest MACs"
    conditions = []
    if board is not None:
        conditions.append(f"fit {board.name}" + (f" with {kb(ram_reserve)} RAM reserved" if ram_reserve else ""))
    if max_drop is not None:
        conditions.append(f"lose at most {max_drop:g} percentage points of the baseline's {metric}")
    if candidates:
        sel.point = min(candidates, key=lambda c: c[:5])[-1]
        sel.reason = (f"best point: {_describe(sel.point, metric, baseline)}: the {what} of the {len(candidates)} "
                      f"point(s)" + (" that " + " and ".join(conditions) if conditions else ""))
        return sel

    # nothing qualifies: say which constraint fails
    if board is not None and not sel.fitting:
        smallest = min(range(len(points)), key=lambda i: (points[i].flash_bytes, points[i].arena_bytes, i))
        sel.reason = (f"no point fits {board.name}: every one is too big; the smallest, "
                      f"{points[smallest].name}, {sel.verdicts[smallest].text.split(': ', 1)[-1]}")
        return sel
    # some fit the board (or there is no board) but all lose more than max_drop
    best_fit = max(sel.fitting, key=lambda p: score(p, metric))
    drop = accuracy_drop(best_fit, baseline, metric)
    that_fits = f" that fits {board.name}" if board is not None else ""
    sel.reason = (f"no point{that_fits} loses at most {max_drop:g} percentage points of the baseline's {metric}: the "
                  f"{metric} drop is too large; the best{that_fits}, {best_fit.name}, loses {drop:.2f} points")
    if sel.within_drop and board is not None:
        small = min(sel.within_drop, key=lambda p: (p.flash_bytes, p.arena_bytes))
        i = points.index(small)
        sel.reason += (f"; the smallest within the drop, {small.name}, is too big: "
                       f"{sel.verdicts[i].text.split(': ', 1)[-1]}")
    return sel


def best_point(points, board: Board | None = None, max_drop: float | None = None, ram_reserve: int = 0,
               minimize: str = "flash") -> StudyPoint | None:
    """`select_best(...).point`: the point to ship, or None (select_best's reason says why)."""
    return select_best(points, board, max_drop, ram_reserve, minimize).point


# -------------------------------------------------------------------------------------------- CSV

def _field_types() -> dict[str, object]:
    return typing.get_type_hints(StudyPoint)


def _to_cell(value) -> str:
    if value is None:
        return ""
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    if isinstance(value, bool) or kind == "b":
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or kind in ("i", "u"):
        return str(int(value))
    return repr(float(value))  # shortest string that reads back to the same float


def _from_cell(text: str, kind, column: str, where: str):
    try:
        if kind is str:
            return text
        if kind is bool:
            low = text.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no", ""):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind == (float | None):
            return None if text.strip() == "" else float(text)
    except ValueError:
        raise InputError(f"{where}: column {column!r} has {text!r}, not a {getattr(kind, '__name__', kind)}") from None
    raise TypeError(f"no CSV conversion for {column}: {kind}")  # a new field type: extend _from_cell


def write_csv(points, path: str | Path) -> Path:
    """One row per point, the columns of StudyPoint in order; None is an empty cell, booleans are
    true/false, floats their shortest exact repr (read_csv gives back equal points)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(StudyPoint)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for p in points:
            w.writerow([_to_cell(getattr(p, n)) for n in names])
    return path


def read_csv(path: str | Path) -> list[StudyPoint]:
    """The points of a CSV written by write_csv. Columns with a default (c_check, baseline) may be
    missing; unknown columns are ignored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"study CSV {path} does not exist")
    types = _field_types()
    required = [f.name for f in fields(StudyPoint) if f.default is MISSING and f.default_factory is MISSING]
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [n for n in required if n not in header]
        if missing:
            raise InputError(f"study CSV {path}: missing column(s) {', '.join(missing)}")
        points = []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            values = {n: _from_cell(row[n], types[n], n, where) for n in types if n in header}
            points.append(StudyPoint(**values))
    return points


# ------------------------------------------------------------------------------------------ plots

_COLORS = {"float32": "#4c8bc9", "int8-weights": "#f2a541", "int8": "#2e933c"}
_EXTRA_COLORS = ("#9b59b6", "#d1495b", "#7f8c8d", "#17becf", "#8c564b")


def _precision_colors(points) -> dict[str, str]:
    colors, extra = {}, iter(_EXTRA_COLORS * 10)
    order = [p for p in PRECISIONS if any(q.precision == p for q in points)]
    order += sorted({q.precision for q in points} - set(PRECISIONS))
    for prec in order:
        colors[prec] = _COLORS.get(prec) or next(extra)
    return colors


def plot_study(points, out_dir: str | Path, title: str = "", board: Board | None = None,
               best: StudyPoint | None = None) -> list[Path]:
    """Two PNGs in out_dir: accuracy_vs_flash.png (flash in KB; log x when it spans 10x or more) and
    accuracy_vs_macs.png (MMACs, log x). Points coloured by precision, the Pareto front as a line
    with its points circled, the baseline as a star, `best` as a square, the board's flash as a
    vertical line on the flash plot. Returns [flash plot, MACs plot]."""
    points = list(points)
    if not points:
        raise InputError("plot_study: no study points to plot")
    import matplotlib  # noqa: PLC0415 (only the study draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = score_name(points)
    ylabel = SCORE_LABELS[metric]
    colors = _precision_colors(points)
    baseline = baseline_of(points)
    paths = []
    for x, fname, xlabel, scale in (("flash_bytes", "accuracy_vs_flash.png", "flash: weights + code (KB)", KB),
                                    ("macs", "accuracy_vs_macs.png", "multiply-accumulates per inference (MMACs)",
                                     1e6)):
        def xv(p, _x=x, _scale=scale):
            return max(getattr(p, _x), 1) / _scale  # log axes need > 0

        fig, ax = plt.subplots(figsize=(8.0, 5.0), dpi=100)
        for prec, color in colors.items():
            sub = [p for p in points if p.precision == prec]
            ax.scatter([xv(p) for p in sub], [100 * score(p, metric) for p in sub], s=28, color=color,
                       edgecolors="none", alpha=0.85, label=prec, zorder=3)
        front = pareto_front(points, x, metric)
        if front:
            ax.plot([xv(p) for p in front], [100 * score(p, metric) for p in front], color="#333333", lw=1.2,
                    zorder=2, label="Pareto front")
            ax.scatter([xv(p) for p in front], [100 * score(p, metric) for p in front], s=110,
                       facecolors="none", edgecolors="#333333", linewidths=1.2, zorder=4)
            for p in front:
                ax.annotate(p.name, (xv(p), 100 * score(p, metric)), textcoords="offset points", xytext=(4, -9),
                            fontsize=6, color="#333333")
        if baseline is not None:
            ax.scatter([xv(baseline)], [100 * score(baseline, metric)], marker="*", s=260, color="#d1495b",
                       edgecolors="black", linewidths=0.6, zorder=5, label=f"baseline ({baseline.name})")
        if best is not None:
            ax.scatter([xv(best)], [100 * score(best, metric)], marker="s", s=120, facecolors="none",
                       edgecolors="#9b59b6", linewidths=2.0, zorder=5, label=f"best: {best.name}")
        values = [xv(p) for p in points]
        if x == "macs" or max(values) / min(values) >= 10:
            ax.set_xscale("log")
        if board is not None and x == "flash_bytes":
            limit = board.flash / KB
            label = f"{board.name} flash {limit:,.0f} KB"
            if limit <= 2 * max(values):
                ax.axvline(limit, color="#888888", ls="--", lw=1.3, label=label)
            else:  # drawing it would squeeze every point against the left edge
                ax.plot([], [], color="#888888", ls="--", lw=1.3, label=f"{label} (far right, off the plot)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        what = "flash" if x == "flash_bytes" else "MACs"
        ax.set_title(f"{title + ': ' if title else ''}{ylabel.replace(' (%)', '')} vs {what}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize=7)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, format="png")
        plt.close(fig)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------- text

def _fit_column(verdict: FitVerdict, ram_reserve: int) -> str:
    if verdict.fits:
        return "yes"
    flash = verdict.flash_free < 0
    ram = verdict.arena_region is None or (ram_reserve > 0 and verdict.stack_region is None)
    return "no: " + "+".join(w for w, bad in (("flash", flash), ("RAM", ram)) if bad)


def format_study(points, best: StudyPoint | Selection | None = None, board: Board | None = None,
                 max_drop: float | None = None, ram_reserve: int = 0, minimize: str = "flash") -> str:
    """A table, one row per point in the given order (name, score, drop vs the baseline in
    percentage points, flash, arena, MACs, fit on `board` when given, C check; '*' flags the
    Pareto front of score vs flash), then the line naming the best point for the target. `best`
    may be select_best's Selection (its reason is printed), a point, or None: then select_best
    is run with board / max_drop / ram_reserve / minimize to say which point is best or why none is."""
    points = list(points)
    if not points:
        return "no study points"
    metric = score_name(points)
    baseline = baseline_of(points)
    on_front = {id(p) for p in pareto_front(points, "flash_bytes", metric)}
    verdicts = {i: fit_verdict(p, board, ram_reserve) for i, p in enumerate(points)} if board else {}
    head = ["", "point", f"{metric} %", "drop pp", "flash KB", "arena KB", "MACs"]
    head += [f"fits {board.name}"] if board else []
    head += ["C check"]
    rows = []
    for i, p in enumerate(points):
        drop = accuracy_drop(p, baseline, metric)
        row = ["*" if id(p) in on_front else "", p.name + (" (baseline)" if p.baseline else ""),
               f"{100 * score(p, metric):.2f}", "-" if drop is None else f"{drop:+.2f}",
               f"{p.flash_bytes / KB:,.1f}", f"{p.arena_bytes / KB:,.1f}", f"{p.macs:,}"]
        row += [_fit_column(verdicts[i], ram_reserve)] if board else []
        row += [p.c_check or "-"]
        rows.append(row)
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    right = {2, 3, 4, 5, 6}
    lines = ["  ".join(cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in
                       enumerate(zip(r, widths))).rstrip() for r in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"* on the Pareto front ({metric} vs flash); drop = baseline {metric} - point {metric}, "
                 "in percentage points")
    if isinstance(best, Selection):
        lines.append(best.reason)
    elif best is not None:
        sel = select_best(points, board, max_drop, ram_reserve, minimize)
        if sel.point is best:
            lines.append(sel.reason)
        else:
            lines.append(f"best point: {_describe(best, metric, baseline)}"
                         + (f"; {fit_verdict(best, board, ram_reserve).text}" if board else ""))
    else:
        lines.append(select_best(points, board, max_drop, ram_reserve, minimize).reason)
    return "\n".join(lines)


def to_dicts(points) -> list[dict]:
    """The points as plain dicts (JSON)."""
    return [asdict(p) for p in points]


def study_json(points, selection: Selection) -> dict:
    """The points, the best point's name (or None) and why, as `modelblocks study` saves them: plain
    JSON values (a NumPy scalar becomes a Python number; NaN or infinity, e.g. the output error of a
    point whose outputs overflowed, becomes null, which strict JSON readers accept)."""
    def plain(value):
        if hasattr(value, "item"):
            value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value
    rows = [{k: plain(v) for k, v in row.items()} for row in to_dicts(points)]
    return {"points": rows, "best": selection.point.name if selection.point else None, "reason": selection.reason}


def save_study(points, selection: Selection, out_dir: str | Path, title: str = "",
               board: Board | None = None) -> list[Path]:
    """Write study.csv, study.json and the two plots into `out_dir`; returns their paths."""
    import json  # noqa: PLC0415

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(points, out_dir / "study.csv")
    (out_dir / "study.json").write_text(json.dumps(study_json(points, selection), indent=1) + "\n")
    plots = plot_study(points, out_dir, title, board, best=selection.point)
    return [out_dir / "study.csv", out_dir / "study.json", *plots]
