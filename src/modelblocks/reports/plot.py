"""A PNG of arena usage over the execution steps: live bytes per step (bars), the planned arena and
the liveness lower bound (lines), and the board's region the arena was placed in, when known."""

from __future__ import annotations

from pathlib import Path


def plot_arena(report: dict, path: str | Path, region: tuple[str, int] | None = None) -> Path:
    import matplotlib  # noqa: PLC0415 (only the analyze command draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    live = report["live_bytes_per_step"]
    steps = list(range(len(live)))
    labels = [row["op"] for row in report["layers"]] + ["copy out"] * (len(live) - len(report["layers"]))
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.25 * len(live) + 3, 24)), 4.5), dpi=100)
    ax.bar(steps, [v / 1024 for v in live], color="#4c8bc9", width=0.85, label="live activations")
    ax.axhline(report["arena_bytes"] / 1024, color="#d1495b", lw=1.8,
               label=f"planned arena {report['arena_bytes'] / 1024:,.1f} KB")
    ax.axhline(report["arena_lower_bound"] / 1024, color="#2e933c", lw=1.4, ls="--",
               label=f"lower bound {report['arena_lower_bound'] / 1024:,.1f} KB")
    if region is not None and region[1] <= 4 * max(report["arena_bytes"], 1):
        ax.axhline(region[1] / 1024, color="#888888", lw=1.2, ls=":", label=f"{region[0]} {region[1] / 1024:,.0f} KB")
    ax.set_xlabel("execution step")
    ax.set_ylabel("KB")
    ax.set_title(f"{report['name']}: arena usage per step "
                 f"(plan / bound {report.get('plan_over_bound', 1.0):.3f})")
    if len(live) <= 40:
        ax.set_xticks(steps)
        ax.set_xticklabels([f"{i} {lab}" for i, lab in zip(steps, labels)], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(bottom=0)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
