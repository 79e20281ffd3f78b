"""`fer dashboard`: a static, offline site of the benchmark history of one or more hardware classes.

One folder, no server, no network and no JavaScript at view time: the charts are
inline SVG (:mod:`fer.bench.svg`), every point a link to its run. It reads the
same runs (:mod:`fer.bench.storage`), verdicts (:mod:`fer.bench.stats`), change
points (:mod:`fer.bench.changepoints`) and report (:mod:`fer.bench.report`) as
``fer compare`` and ``fer report``: nothing is parsed twice or measured again.

    site/index.html                      every benchmark group's trend, per hardware class:
                                         median epoch time and images/s per run, the noise
                                         band, change points (dashed) and regressions (red ring);
                                         the newest run's GPU (card, clock settings, clocks,
                                         temperatures, power, throttle reasons)
    site/<class>/comparison.html         the newest run against the runs before it (and its GPU)
    site/<class>/bench/<benchmark>.html  one benchmark: its runs (commit, date, machine,
                                         rounds, calibration, step breakdown)
    site/<class>/report/index.html       the newest run's `fer report`
"""

from __future__ import annotations

import hashlib
import re
import statistics
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.changepoints import ChangePoint, history_change_points
from fer.bench.render import format_shift, judged_by, pooled_shifts, seconds, unit_line
from fer.bench.report import ReportError, render_report
from fer.bench.stats import (
    NOT_GATED,
    REGRESSED,
    UNCHANGED,
    VERDICTS,
    CompareError,
    Comparison,
    GateOptions,
    clock_setting,
    compare,
    throttled_by,
)
from fer.bench.storage import Run, load_history, machine_key, short_name
from fer.bench.trends import group_charts, groups_of, median_or_none

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1180px; color: #222;
       padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 22px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td.name, th.name { text-align: left; }
.regressed-row td { background: #fde8e8; } .improved-row td { background: #e8f6e8; }
.inconclusive-row td { background: #f6f3e4; }
.verdict-regressed { color: #c00; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg text.title { font-size: 13px;
font-weight: 600; } svg .regressed { pointer-events: all; }
.note { color: #555; } .summary { font-size: 15px; } a { color: #0b5cad; }
nav a { margin-right: 14px; }
"""


@dataclass
class ClassHistory:
    """The runs of one hardware class and what the site shows of them."""

    name: str
    slug: str
    runs: list[Run]
    comparison: Comparison | None = None
    comparison_error: str | None = None
    change_points: list[ChangePoint] = field(default_factory=list)


@dataclass
class Site:
    out: Path
    pages: list[Path]
    classes: list[ClassHistory]

    @property
    def regressions(self) -> int:
        return sum(len(c.comparison.regressions) for c in self.classes if c.comparison)


def slugify(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "x"


def _page(title: str, body: str, depth: int = 0) -> str:
    home = "../" * depth + "index.html"
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<nav><a href=\"{home}\">fer dashboard</a></nav><h1>{escape(title)}</h1>"
            f"{body}</body></html>\n")


def _write(path: Path, text: str, pages: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        f.write(text)
    pages.append(path)


def _bench_href(name: str, prefix: str = "") -> str:
    return f"{prefix}bench/{unique_slug(short_name(name), name)}.html"


def unique_slug(text: str, key: str | None = None) -> str:
    """A file-name slug of ``text`` that two different names never share: where the readable
    slug drops characters, a short hash of the name itself (``key``) is added."""
    slug = slugify(text)
    key = text if key is None else key
    if slug == text and key == text:
        return slug
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug[:71]}-{digest}"


def _group_charts(h: ClassHistory, names: list[str], *, prefix: str, title: str) -> str:
    """The time and images/s charts of some benchmarks of one class (fer.bench.trends)."""
    charts = group_charts(h.runs, names, title=title, comparison=h.comparison,
                          change_points=h.change_points,
                          href=lambda name, i: f"{_bench_href(name, prefix)}#run-{i}")
    return f'<div class="charts">{"".join(charts)}</div>'


def _counts(r) -> str:
    """The exact counters of a row: same, the change of the first that moved, or -."""
    j = r.judgements.get("counters")
    if j is None or j.verdict == NOT_GATED:
        return "-"
    if j.verdict == UNCHANGED:
        return "same"
    return f"{100 * j.change:+.2g}%" + (" (regressed)" if j.verdict == REGRESSED else "")


def _comparison_table(c: Comparison, prefix: str = "") -> str:
    out = [f'<p class="note">{escape(unit_line(c))}</p>',
           '<table class="comparison"><tr><th class="name">benchmark</th><th>base s</th>'
           '<th>new s</th><th>change</th><th>interval</th><th>noise</th><th>MDE</th>'
           '<th>counts</th><th class="name">judged by</th><th class="name">verdict</th>'
           '<th class="name">why</th></tr>']
    for r in c.rows:
        t = r.time
        interval = (f"{100 * t.low:+.1f} … {100 * t.high:+.1f}%"
                    if t.low is not None and t.high is not None else "-")
        out.append(
            f'<tr class="{r.verdict}-row"><td class="name"><a href="{_bench_href(r.fullname, prefix)}">'
            f"{escape(short_name(r.fullname))}</a></td><td>{seconds(r.base_s)}</td>"
            f"<td>{seconds(r.new_s)}</td><td>{100 * r.change:+.1f}%</td><td>{interval}</td>"
            f"<td>{100 * (t.noise or 0):.1f}%</td><td>{100 * (t.mde or 0):.0f}%</td>"
            f"<td>{escape(_counts(r))}</td>"
            f'<td class="name">{escape(judged_by(r))}</td>'
            f'<td class="name verdict-{r.verdict}">{r.verdict}</td>'
            f'<td class="name">{escape(r.explanation or "")}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def _summary(c: Comparison) -> str:
    counts = ", ".join(f"{c.count(v)} {v}" for v in VERDICTS)
    base = c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"
    shifts = "".join(f'<p class="summary shift">{escape(format_shift(s))}</p>'
                     for s in pooled_shifts(c))
    reasons = "".join(f'<p class="note reason">{escape(r)}</p>' for r in c.reasons())
    return (f'<p class="summary">Newest run <b>{escape(c.candidate.label)}</b> against {base}: '
            f"<b>{counts}</b> (threshold {100 * c.threshold:g}%).</p>{shifts}{reasons}")


def _gpu_facts(run: Run) -> str:
    """The newest run's GPU: the card (UUID short, serial), its clock settings and, over the
    run's benchmarks, the SM and memory clocks, temperatures, power and throttle reasons NVML
    sampled; "" for a run without GPU facts (a CPU, no NVML)."""
    facts = run.gpu_facts
    sampled = [b.gpu_sampling for b in run.benchmarks.values() if b.gpu_sampling]
    if not facts and not sampled:
        return ""
    uuids, serials = facts.get("uuids") or [], facts.get("serials") or []
    parts = [", ".join(u[:12] + (f" (serial {s})" if s != "unknown" else "")
                       for u, s in zip(uuids, serials + ["unknown"] * len(uuids)))]
    parts.append(clock_setting(run) or "clock settings unknown")
    for key, label, unit in (("sm_clock_mhz", "SM clock", "MHz"), ("mem_clock_mhz", "memory clock", "MHz"),
                             ("temperature_c", "temperature", "°C"), ("power_w", "power", "W")):
        ranges = [s[key] for s in sampled if key in s]
        if ranges:
            parts.append(f"{label} {min(r['min'] for r in ranges):,.0f}-{max(r['max'] for r in ranges):,.0f} "
                         f"{unit} (median {statistics.median(r['median'] for r in ranges):,.0f})")
    throttled: dict[str, int] = {}
    for b in run.benchmarks.values():
        for reason in throttled_by(b) or ():
            throttled[reason] = throttled.get(reason, 0) + 1
    if any("throttle_reasons" in s for s in sampled):
        parts.append("throttled: " + ", ".join(f"{r} in {n} benchmark(s)"
                                               for r, n in sorted(throttled.items()))
                     if throttled else "no throttling seen")
    text = "; ".join(p for p in parts if p)
    return f'<p class="note gpu-facts">GPU of the newest run: {escape(text)}</p>'


def _change_point_list(points: list[ChangePoint]) -> str:
    if not points:
        return '<p class="note">No change points in this history.</p>'
    items = "".join(
        f"<li><a href=\"{_bench_href(p.benchmark)}\">{escape(short_name(p.benchmark))}</a>: "
        f"{100 * p.change:+.1f}% at {escape(p.run)} ({escape(p.datetime[:19])}), "
        f"confidence {p.confidence:.3f}</li>" for p in sorted(points, key=lambda p: -p.index))
    return f"<ul class=\"change-points\">{items}</ul>"


def _breakdown_cells(b, categories: list[str]) -> str:
    sb = b.step_breakdown if b is not None else None
    if sb is None:
        return "".join("<td>-</td>" for _ in categories) + "<td>-</td>"
    ms = sb.get("ms_per_step") or {}
    per = sb.get("kernels_per_step") or sb.get("ops_per_step")
    cells = "".join(f"<td>{float(ms.get(c) or 0):.2f}</td>" for c in categories)
    return cells + (f"<td>{per:,.0f}</td>" if per is not None else "<td>-</td>")


def _bench_page(h: ClassHistory, name: str) -> str:
    runs_table = ['<table class="runs"><tr><th>#</th><th class="name">commit</th>'
                  '<th class="name">date</th><th class="name">machine</th><th>rounds (s)</th>'
                  "<th>median s</th><th>images/s</th><th>data wait</th><th>calibration s</th>"
                  "<th>peak MiB</th></tr>"]
    categories: list[str] = []
    for run in h.runs:
        b = run.benchmarks.get(name)
        sb = b.step_breakdown if b is not None else None
        if sb is not None:
            categories += [c for c in sb["ms_per_step"] if c not in categories]
    breakdown = ['<table class="breakdown"><tr><th>#</th>' + "".join(
        f"<th>{escape(c)} ms</th>" for c in categories) + "<th>kernels or ops /step</th></tr>"]
    for i, run in enumerate(h.runs):
        b = run.benchmarks.get(name)
        if b is None:
            continue
        times = b.epoch_times()
        wait = median_or_none(b.wait_shares())
        cal = b.calibration_s
        peak = b.peak_memory_bytes
        rate = median_or_none(b.throughputs())
        runs_table.append(
            f'<tr id="run-{i}"><td>{i}</td><td class="name">'
            f'{escape(str((run.commit_info or {}).get("id") or "")[:12])}</td>'
            f'<td class="name">{escape(run.datetime[:19])}</td>'
            f'<td class="name">{escape(str(machine_key(run.machine_info)["hardware"]))}</td>'
            f'<td>{", ".join(f"{t:.3f}" for t in times)}</td><td>{statistics.median(times):.4f}</td>'
            f"<td>{f'{rate:,.0f}' if rate else '-'}</td>"
            f"<td>{f'{100 * wait:.1f}%' if wait is not None else '-'}</td>"
            f"<td>{f'{cal:.4f}' if cal else '-'}</td>"
            f"<td>{f'{peak / 2**20:,.0f}' if peak else '-'}</td></tr>")
        if categories:
            breakdown.append(f"<tr><td>{i}</td>{_breakdown_cells(b, categories)}</tr>")
    body = [_group_charts(h, [name], prefix="../", title=short_name(name)),
            "<h2>Runs</h2>", "\n".join(runs_table), "</table>"]
    if categories:
        body += ["<h2>Step breakdown (profiled steps after the timed epochs)</h2>",
                 "\n".join(breakdown), "</table>"]
    return "\n".join(body)


def _report_page(h: ClassHistory, out: Path) -> str:

    try:
        report = render_report([h.runs[-1].path], out)
    except (ReportError, CompareError) as exc:
        return f'<p class="note">No report: {escape(str(exc))}</p>'
    items = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in report.findings.items())
    images = "".join(f'<h3>{escape(p.stem)}</h3><img src="{escape(p.name)}" alt="{escape(p.stem)}" '
                     'style="max-width:100%">' for p in report.charts)
    missing = (f'<p class="note">Not in this run: {escape(", ".join(report.missing))}</p>'
               if report.missing else "")
    return f"<p>From {escape(str(h.runs[-1].path.name))}.</p><ul>{items}</ul>{missing}{images}"


def build_dashboard(history: list[str | Path], out_dir: str | Path, *, last: int = 10,
                    options: GateOptions | None = None) -> Site:
    """Write the site for the runs under the ``history`` folders into ``out_dir``."""
    runs: list[Run] = []
    seen: set[str] = set()
    for folder in history:  # a folder given twice, or a copy of a run: each run once
        for run in load_history(folder, what="HISTORY_DIR"):
            if run.fingerprint not in seen:
                seen.add(run.fingerprint)
                runs.append(run)
    if not runs:
        raise CompareError(f"{', '.join(map(str, history))}: no readable benchmark run")
    classes: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.order_key):
        classes.setdefault(str(machine_key(run.machine_info)["hardware"]), []).append(run)
    out = Path(out_dir)
    pages: list[Path] = []
    histories = []
    for name, class_runs in sorted(classes.items()):
        h = ClassHistory(name=name, slug=unique_slug(name), runs=class_runs)
        if len(class_runs) >= 2:
            earlier = class_runs[:-1][-last:] if last else class_runs[:-1]
            try:
                h.comparison = compare(earlier, class_runs[-1], options, allow_cross_machine=True)
            except CompareError as exc:
                h.comparison_error = str(exc)
        if len(class_runs) >= 4:
            h.change_points = history_change_points(class_runs)
        histories.append(h)
        folder = out / h.slug
        names = sorted(set().union(*(r.benchmarks for r in class_runs)))
        for bench in names:
            _write(folder / _bench_href(bench),
                   _page(f"{short_name(bench)} — {name}", _bench_page(h, bench), depth=2), pages)
        if h.comparison:
            _write(folder / "comparison.html",
                   _page(f"Newest run — {name}", _summary(h.comparison) + _gpu_facts(h.runs[-1])
                         + _comparison_table(h.comparison), depth=1), pages)
        _write(folder / "report" / "index.html",
               _page(f"Report — {name}", _report_page(h, folder / "report"), depth=2), pages)

    body = []
    for h in histories:
        prefix = f"{h.slug}/"
        body.append(f"<h2>{escape(h.name)}</h2><p>{len(h.runs)} runs, "
                    f"{escape(h.runs[0].datetime[:10])} to {escape(h.runs[-1].datetime[:10])}. "
                    f'<a href="{prefix}report/index.html">Newest report</a>'
                    + (f' · <a href="{prefix}comparison.html">Newest comparison</a>'
                       if h.comparison else "") + "</p>")
        body.append(_gpu_facts(h.runs[-1]))
        if h.comparison:
            body.append(_summary(h.comparison))
            regressed = [r for r in h.comparison.rows if r.verdict == REGRESSED]
            if regressed:
                body.append('<p class="verdict-regressed">Regressed: ' + ", ".join(
                    f'<a href="{_bench_href(r.fullname, prefix)}">{escape(short_name(r.fullname))}'
                    f"</a> ({100 * r.change:+.1f}%)" for r in regressed) + "</p>")
        elif h.comparison_error:
            body.append(f'<p class="note">{escape(h.comparison_error)}</p>')
        else:
            body.append('<p class="note">One run: nothing to compare yet.</p>')
        body.append("<h3>Change points</h3>" + _change_point_list(h.change_points).replace(
            'href="bench/', f'href="{prefix}bench/'))
        body.append('<p class="note">Each point is one run (hover: commit and numbers; click: the '
                    "run's row on the benchmark's page). Shaded: the 90% noise band of each "
                    "benchmark (run-to-run noise); dashed lines: change points; a red ring: "
                    "regressed in the newest run.</p>")
        for group, members in sorted(groups_of(h.runs).items()):
            body.append(f"<h3>{escape(group)}</h3>")
            body.append(_group_charts(h, members, prefix=prefix, title=group))
    _write(out / "index.html", _page("fer dashboard", "\n".join(body)), pages)
    return Site(out=out, pages=pages, classes=histories)

