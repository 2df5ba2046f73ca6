"""The HTML report's plots, as PNG bytes (matplotlib, Agg backend, like reports/plot.py): drawn from
the page model only, so the page shows the same numbers as its tables."""

from __future__ import annotations

import io

BLUE, RED, GREEN, GREY = "#4c8bc9", "#d1495b", "#2e933c", "#888888"


def _pyplot():
    import matplotlib  # noqa: PLC0415 (only the report draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


def memory_timeline(page: dict) -> bytes:
    """Arena bytes alive at each step (bars), the planned arena and the liveness lower bound (lines),
    and the peak step's layer named."""
    plt = _pyplot()
    t = page["timeline"]
    live = [v / 1024 for v in t["live_bytes"]]
    steps = list(range(len(live)))
    fig, ax = plt.subplots(figsize=(9.5, 3.6))
    ax.bar(steps, live, color=BLUE, width=0.85, label="live activations and scratch")
    ax.axhline(t["arena_bytes"] / 1024, color=RED, lw=1.8, label=f"planned arena {t['arena_bytes'] / 1024:,.1f} KB")
    ax.axhline(t["lower_bound"] / 1024, color=GREEN, lw=1.4, ls="--",
               label=f"lower bound {t['lower_bound'] / 1024:,.1f} KB")
    top = max([t["arena_bytes"] / 1024, *live, 1e-3])
    if live:
        ax.annotate(f"peak: step {t['peak_step']} {t['peak_label']}\n{t['peak_bytes']:,} B live",
                    xy=(t["peak_step"], live[t["peak_step"]]), xytext=(0.62, 0.86), textcoords="axes fraction",
                    fontsize=8, arrowprops={"arrowstyle": "->", "color": "#333333"})
    if len(steps) <= 40:  # room to name each step's layer
        ax.set_xticks(steps)
        ax.set_xticklabels([f"{i} {lab}"[:28] for i, lab in zip(steps, t["labels"])], rotation=60, ha="right",
                           fontsize=7)
    ax.set_xlabel("execution step (layer index)")
    ax.set_ylabel("KB")
    ax.set_ylim(0, top * 1.45)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _bars(rows: list[tuple[str, float]], xlabel: str, title: str, color: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 0.32 * len(rows) + 1.1))
    names = [name for name, _ in rows][::-1]
    values = [value for _, value in rows][::-1]
    ax.barh(names, values, color=color)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(0, max(values + [1e-9]) * 1.15)
    return _png(fig)


def by_type(page: dict) -> dict[str, bytes]:
    """Flash (weight bytes) per op type, and time (share of instructions) per op type when simulated."""
    rows = page["by_type"]
    flash = sorted(((r["op"], r["weight_bytes"] / 1024) for r in rows if r["weight_bytes"]), key=lambda r: -r[1])
    images = {"flash_by_type": _bars(flash or [("(no weights)", 0.0)], "KB of weights", "flash per op type", BLUE)}
    if page["simulation"] is not None:
        time = [(r["op"], 100 * r["share"]) for r in rows if r["share"] is not None]
        images["time_by_type"] = _bars(time, "% of instructions", f"time per op type ({page['simulation']['cpu']})",
                                       RED)
    return images


def sqnr(page: dict) -> bytes:
    """SQNR per layer (finite values; an exact layer has infinite SQNR and no bar)."""
    layers = page["quantization"]["layers"]
    rows = [(f"{l['node']}", l["sqnr_db"]) for l in layers if isinstance(l["sqnr_db"], (int, float))]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 2.8))
    xs = list(range(len(rows)))
    ax.bar(xs, [v for _, v in rows], color=[RED if v < 20 else BLUE for _, v in rows])
    ax.set_xticks(xs)
    ax.set_xticklabels([n for n, _ in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("SQNR dB")
    ax.axhline(20, color=GREY, lw=1, ls=":")
    return _png(fig)
