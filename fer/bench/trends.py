"""Trend charts of a history — the one trend-chart path: each benchmark's median epoch time and
images/s per run as inline SVG (:mod:`fer.bench.svg`), the noise band of the newest
comparison, change points dashed, the newest run's regressions ringed. The dashboard embeds
them in its pages; ``fer compare --plot DIR`` writes them as ``trend_<group>.svg`` files."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.changepoints import ChangePoint
from fer.bench.noise import REGRESSED
from fer.bench.stats import Comparison
from fer.bench.storage import Run, short_name
from fer.bench.svg import Point, Series, line_chart


def natural(name: str) -> list:
    """``test[128]`` after ``test[64]``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def run_label(run: Run) -> str:
    """A short x-axis label: the commit and the date, else the file name."""
    commit = str((run.commit_info or {}).get("id") or "")[:7]
    date = run.datetime[5:16].replace("T", " ") if run.datetime else ""
    return " ".join(x for x in (commit, date) if x) or run.path.stem[:18]


def median_or_none(values: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def group_charts(runs: list[Run], names: list[str], *, title: str,
                 comparison: Comparison | None = None,
                 change_points: list[ChangePoint] | None = None,
                 href: Callable[[str, int], str] | None = None) -> tuple[str, str]:
    """The time and images/s charts (SVG) of some benchmarks over ``runs``; ``href(name, i)``
    links each point (the dashboard: the run's row on the benchmark's page)."""
    labels = [run_label(r) for r in runs]
    rows = {r.fullname: r for r in comparison.rows} if comparison else {}
    steps: dict[str, list[ChangePoint]] = {}
    for p in change_points or []:
        steps.setdefault(p.benchmark, []).append(p)
    last = len(runs) - 1
    time_series, rate_series = [], []
    for name in sorted(names, key=lambda n: natural(short_name(n))):
        time_pts, rate_pts = [], []
        row = rows.get(name)
        for i, run in enumerate(runs):
            b = run.benchmarks.get(name)
            if b is None:
                continue
            t, rate = median_or_none(b.epoch_times()), median_or_none(b.throughputs())
            commit = str((run.commit_info or {}).get("id") or "")[:12] or run.path.name
            tip = (f"{short_name(name)} | {commit} {run.datetime[:19]} | "
                   f"{t:.4g} s/epoch" + (f", {rate:,.0f} img/s" if rate else ""))
            link = href(name, i) if href else None
            bad = i == last and row is not None and row.verdict == REGRESSED
            time_pts.append(Point(i, t, tip, link, regressed=bad))
            if rate:
                rate_pts.append(Point(i, rate, tip, link, regressed=bad))
        noise = row.time.noise if row is not None and row.time.noise else None
        band = (1 / (1 + 1.645 * noise), 1 + 1.645 * noise) if noise else None
        cps = [(p.index, f"{100 * p.change:+.0f}% at {p.run}") for p in steps.get(name, [])]
        time_series.append(Series(short_name(name), time_pts, band=band, steps=cps))
        rate_series.append(Series(short_name(name), rate_pts))
    time_chart = line_chart(time_series, labels, title=f"{title}: median epoch time",
                            y_label="s per epoch (log)", band_label="noise band (90%)")
    rate_chart = line_chart(rate_series, labels, title=f"{title}: images/s", log=False,
                            y_label="images/s (from 0)", css_class="trend throughput")
    return time_chart, rate_chart


def groups_of(runs: list[Run]) -> dict[str, list[str]]:
    """Each benchmark group's benchmarks over ``runs``, in the order first seen."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        for name, b in run.benchmarks.items():
            members = groups.setdefault(b.group or "ungrouped", [])
            if name not in members:
                members.append(name)
    return groups


def plot_trends(runs: list[Run], out_dir: str | Path,
                change_points: list[ChangePoint] | None = None,
                comparison: Comparison | None = None) -> list[Path]:
    """One SVG per benchmark group (``trend_<group>.svg``: the time chart above the images/s
    chart), the charts of the dashboard."""
    out_dir = Path(out_dir)
    written = []
    for group, names in sorted(groups_of(runs).items()):
        time_chart, rate_chart = group_charts(runs, names, title=group, comparison=comparison,
                                              change_points=change_points)
        width = 570
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="660">'
               f'<g>{time_chart}</g><g transform="translate(0,330)">{rate_chart}</g></svg>\n')
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in group)
        path = out_dir / f"trend_{safe}.svg"
        with atomic_open(path, "w") as f:
            f.write(svg)
        written.append(path)
    return written
