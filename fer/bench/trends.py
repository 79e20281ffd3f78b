"""Trend charts of a history: each benchmark's epoch time per run, change points marked."""

from __future__ import annotations

import re
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.changepoints import ChangePoint
from fer.bench.render import short_name
from fer.bench.storage import Run


def _natural(name: str) -> list:
    """``test[128]`` after ``test[64]``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def run_label(run: Run) -> str:
    """A short x-axis label: the commit and the date, else the file name."""
    commit = str((run.commit_info or {}).get("id") or "")[:7]
    date = run.datetime[5:16].replace("T", " ") if run.datetime else ""
    text = " ".join(x for x in (commit, date) if x)
    return text or run.path.stem[:18]


def plot_trends(runs: list[Run], out_dir: str | Path,
                change_points: list[ChangePoint] | None = None) -> list[Path]:
    """One PNG per benchmark group: each benchmark's median epoch time per run (log axis),
    its timed epochs' range as error bars, change points as dashed lines."""
    import matplotlib  # lazy: matplotlib only when a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    out_dir = Path(out_dir)
    steps: dict[str, list[ChangePoint]] = {}
    for p in change_points or []:
        steps.setdefault(p.benchmark, []).append(p)
    groups: dict[str, dict[str, list[tuple[int, float, float, float]]]] = {}
    for i, run in enumerate(runs):
        for name, b in run.benchmarks.items():
            times = sorted(b.epoch_times())
            mid = times[len(times) // 2]
            groups.setdefault(b.group or "ungrouped", {}).setdefault(name, []).append(
                (i, mid, mid - times[0], times[-1] - mid))
    written = []
    for group, series in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(9, 4.8))
        for name in sorted(series, key=lambda n: _natural(short_name(n))):
            xs, ys, lo, hi = zip(*series[name])
            line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=2, linewidth=1.2,
                               label=short_name(name))
            at = dict(zip(xs, ys))
            for p in steps.get(name, []):
                color = line[0].get_color()
                ax.axvline(p.index - 0.5, color=color, linestyle="--", alpha=0.7)
                if p.index in at:
                    ax.annotate(f"{100 * p.change:+.0f}%", (p.index, at[p.index]),
                                textcoords="offset points", xytext=(4, 6), fontsize=8, color=color)
        ax.set_yscale("log")
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([run_label(r) for r in runs], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("epoch time (s, log scale; bars: min-max of timed epochs)")
        title = f"{group}: epoch time per run"
        if any(steps.get(n) for n in series):
            title += " (dashed: change points)"
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in group)
        path = out_dir / f"trend_{safe}.png"
        with atomic_open(path) as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        written.append(path)
    return written
