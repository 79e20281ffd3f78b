"""Benchmark JSON histories: read runs, compare them, give statistical verdicts.

Reads what pytest-benchmark 3.x to 5.x writes — saved runs under
``.benchmarks/`` and ``--benchmark-json`` files. A file that is corrupt, empty
or not a benchmark run is skipped with a warning naming it; it never stops a
comparison.

Verdicts, per benchmark, on the epoch (round) times:

* with the raw round times of both sides (``--benchmark-save-data``, at least
  3 rounds each): a two-sided Mann-Whitney U test (scipy) *and* a minimum
  effect: regressed when p < alpha and the median grew by at least the
  threshold (default 5%), improved when p < alpha and it shrank by as much;
* otherwise: the threshold on the medians alone.

Changes are ratios, compared on a log scale, so swapping the two runs swaps
"improved" and "regressed" exactly.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from fer.errors import FERError

log = logging.getLogger(__name__)

IMPROVED, UNCHANGED, REGRESSED = "improved", "unchanged", "regressed"
MIN_ROUNDS_FOR_TEST = 3


class CompareError(FERError):
    """Runs that cannot be compared (nothing to read, different machines)."""


@dataclass
class Bench:
    fullname: str
    name: str
    group: str | None
    median: float
    data: list[float] | None  # raw round times, when saved
    extra_info: dict

    def metric(self, key: str) -> float | None:
        value = (self.extra_info.get("summary") or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Run:
    path: Path
    datetime: str
    version: str
    machine_info: dict
    commit_info: dict
    benchmarks: dict[str, Bench]

    @property
    def label(self) -> str:
        commit = str((self.commit_info or {}).get("id") or "")
        is_hash = len(commit) >= 7 and all(ch in "0123456789abcdef" for ch in commit)
        return self.path.name + (f" ({commit[:8]})" if is_hash else "")


def machine_key(machine_info: dict) -> dict:
    """What must match for two runs to be comparable: hardware and software."""
    fer = machine_info.get("fer") or {}
    cpu = machine_info.get("cpu") or {}
    return {
        "hardware": fer.get("hardware_class") or cpu.get("brand_raw") or machine_info.get("machine"),
        "gpu": fer.get("gpu_name"), "gpu_count": fer.get("gpu_count"),
        "torch": fer.get("torch"), "cuda": fer.get("cuda_runtime"),
    }


def load_run(path: str | Path) -> Run | None:
    """One benchmark JSON file, or None (with a warning) if it is not one."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("skipping %s: not readable JSON (%s)", path, exc)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("benchmarks"), list):
        log.warning("skipping %s: not a pytest-benchmark run (no 'benchmarks' list)", path)
        return None
    benches: dict[str, Bench] = {}
    for raw in payload["benchmarks"]:
        try:
            stats = raw["stats"]
            data = stats.get("data")
            bench = Bench(
                fullname=raw.get("fullname") or raw["name"], name=raw["name"],
                group=raw.get("group"), median=float(stats["median"]),
                data=[float(x) for x in data] if isinstance(data, list) and data else None,
                extra_info=raw.get("extra_info") or {})
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: skipping a malformed benchmark entry (%s)", path, exc)
            continue
        benches[bench.fullname] = bench
    if not benches:
        log.warning("skipping %s: it holds no benchmarks", path)
        return None
    return Run(path=path, datetime=str(payload.get("datetime") or ""),
               version=str(payload.get("version") or ""),
               machine_info=payload.get("machine_info") or {},
               commit_info=payload.get("commit_info") or {}, benchmarks=benches)


def load_history(folder: str | Path) -> list[Run]:
    """Every run under ``folder`` (recursively), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"--history {folder}: no such folder (pytest-benchmark saves runs "
                           "under .benchmarks/ with --benchmark-autosave)")
    runs = [r for r in (load_run(p) for p in sorted(folder.rglob("*.json"))) if r is not None]
    return sorted(runs, key=lambda r: (r.datetime, r.path.name))


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    from scipy.stats import mannwhitneyu

    if a == b or (len(set(a)) == 1 and set(a) == set(b)):
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def verdict(base: list[float] | None, new: list[float] | None, base_median: float,
            new_median: float, *, threshold: float = 0.05, alpha: float = 0.05
            ) -> tuple[str, float | None, str]:
    """(verdict, p-value or None, method) for one benchmark."""
    log_change = math.log(new_median / base_median) if base_median > 0 and new_median > 0 else 0.0
    big_enough = abs(log_change) >= math.log1p(threshold) - 1e-12
    direction = REGRESSED if log_change > 0 else IMPROVED
    if base and new and len(base) >= MIN_ROUNDS_FOR_TEST and len(new) >= MIN_ROUNDS_FOR_TEST:
        p = mann_whitney_p(base, new)
        return (direction if big_enough and p < alpha else UNCHANGED), p, "mann-whitney"
    return (direction if big_enough else UNCHANGED), None, "threshold"


@dataclass
class Row:
    fullname: str
    group: str | None
    base_median: float
    new_median: float
    change: float  # new / base - 1
    verdict: str
    p_value: float | None
    method: str
    base_rounds: int
    new_rounds: int
    metrics: dict = field(default_factory=dict)  # name -> {"base", "new", "change"}


@dataclass
class Comparison:
    baseline: list[Run]
    candidate: Run
    rows: list[Row]
    added: list[str]
    removed: list[str]
    cross_machine: bool
    threshold: float
    alpha: float

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSED]

    def to_dict(self) -> dict:
        return {
            "baseline": [str(r.path) for r in self.baseline],
            "candidate": str(self.candidate.path),
            "cross_machine": self.cross_machine, "threshold": self.threshold, "alpha": self.alpha,
            "rows": [r.__dict__ for r in self.rows],
            "added": self.added, "removed": self.removed,
            "regressed": [r.fullname for r in self.regressions],
        }


METRICS = ("median_images_per_s", "median_data_wait_share", "peak_mem_bytes")


def compare(baseline: Run | list[Run], candidate: Run, *, threshold: float = 0.05,
            alpha: float = 0.05, allow_cross_machine: bool = False) -> Comparison:
    """Compare ``candidate`` against one earlier run or a history of them.

    With a history, each benchmark's baseline is the pool of its round times
    over those runs (and the median of their medians when rounds were not saved).
    """
    base_runs = baseline if isinstance(baseline, list) else [baseline]
    if not base_runs:
        raise CompareError("nothing to compare against: the history holds no earlier run")
    if not 0 < threshold < 10 or not 0 < alpha < 1:
        raise CompareError("--threshold must be in (0, 10) and --alpha in (0, 1)")
    new_key = machine_key(candidate.machine_info)
    foreign = [r for r in base_runs if machine_key(r.machine_info) != new_key]
    if foreign and not allow_cross_machine:
        other = machine_key(foreign[0].machine_info)
        raise CompareError(
            f"{foreign[0].path} ran on {other} but {candidate.path} on {new_key}; timings from "
            "different hardware or software are not comparable (pass --allow-cross-machine to "
            "compare anyway)")
    rows = []
    base_names = set().union(*(r.benchmarks for r in base_runs))
    for name, new in sorted(candidate.benchmarks.items()):
        olds = [r.benchmarks[name] for r in base_runs if name in r.benchmarks]
        if not olds:
            continue
        pooled = [x for b in olds for x in (b.data or [])]
        if not all(b.data for b in olds):
            pooled = []
        base_median = statistics.median(pooled) if pooled else statistics.median(
            b.median for b in olds)
        v, p, method = verdict(pooled or None, new.data, base_median, new.median,
                               threshold=threshold, alpha=alpha)
        metrics = {}
        for key in METRICS:
            before = [m for m in (b.metric(key) for b in olds) if m is not None]
            after = new.metric(key)
            if before and after is not None:
                b0 = statistics.median(before)
                metrics[key] = {"base": b0, "new": after,
                                "change": (after / b0 - 1) if b0 else None}
        rows.append(Row(fullname=name, group=new.group, base_median=base_median,
                        new_median=new.median, change=new.median / base_median - 1,
                        verdict=v, p_value=p, method=method,
                        base_rounds=len(pooled) or len(olds), new_rounds=len(new.data or []) or 1,
                        metrics=metrics))
    return Comparison(
        baseline=base_runs, candidate=candidate, rows=rows,
        added=sorted(set(candidate.benchmarks) - base_names),
        removed=sorted(base_names - set(candidate.benchmarks)),
        cross_machine=bool(foreign), threshold=threshold, alpha=alpha)


# ------------------------------------------------------------- rendering --

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def _short(name: str) -> str:
    return name.split("::")[-1]


def format_table(c: Comparison) -> str:
    lines = []
    base = c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"
    lines.append(f"baseline: {base}   candidate: {c.candidate.label}")
    if c.cross_machine:
        lines.append("WARNING: CROSS-MACHINE comparison (--allow-cross-machine): runs come from "
                     "different hardware or software")
    width = max([len(_short(r.fullname)) for r in c.rows] + [9])
    lines.append(f"{'benchmark':<{width}}  {'base s':>9} {'new s':>9} {'change':>8} {'p':>7} "
                 f"{'img/s':>8} {'wait':>7} {'mem':>7}  verdict")
    for r in c.rows:
        p = "-" if r.p_value is None else f"{r.p_value:.3f}"
        m = r.metrics
        shown = r.verdict.upper() if r.verdict == REGRESSED else r.verdict
        lines.append(
            f"{_short(r.fullname):<{width}}  {r.base_median:>9.4f} {r.new_median:>9.4f} "
            f"{_pct(r.change):>8} {p:>7} "
            f"{_pct(m.get('median_images_per_s', {}).get('change')):>8} "
            f"{_pct(m.get('median_data_wait_share', {}).get('change')):>7} "
            f"{_pct(m.get('peak_mem_bytes', {}).get('change')):>7}  {shown}")
    for name in c.added:
        lines.append(f"added:   {_short(name)}")
    for name in c.removed:
        lines.append(f"removed: {_short(name)}")
    n = len(c.regressions)
    lines.append(f"\n{n} regressed, {sum(r.verdict == IMPROVED for r in c.rows)} improved, "
                 f"{sum(r.verdict == UNCHANGED for r in c.rows)} unchanged "
                 f"(threshold {100 * c.threshold:g}%, alpha {c.alpha:g})")
    return "\n".join(lines)


def format_markdown(c: Comparison) -> str:
    base = c.baseline[0].label if len(c.baseline) == 1 else f"{len(c.baseline)} earlier runs"
    out = [f"### fer compare: {c.candidate.label} vs {base}", ""]
    if c.cross_machine:
        out += ["> **Cross-machine comparison**: the runs come from different hardware or "
                "software.", ""]
    out += ["| benchmark | base median s | new median s | change | p | images/s | data wait "
            "| peak mem | verdict |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    icon = {REGRESSED: ":x: regressed", IMPROVED: ":white_check_mark: improved",
            UNCHANGED: "unchanged"}
    for r in c.rows:
        m = r.metrics
        p = "-" if r.p_value is None else f"{r.p_value:.3f}"
        out.append(f"| `{_short(r.fullname)}` | {r.base_median:.4f} | {r.new_median:.4f} | "
                   f"{_pct(r.change)} | {p} | "
                   f"{_pct(m.get('median_images_per_s', {}).get('change'))} | "
                   f"{_pct(m.get('median_data_wait_share', {}).get('change'))} | "
                   f"{_pct(m.get('peak_mem_bytes', {}).get('change'))} | {icon[r.verdict]} |")
    if c.added or c.removed:
        out.append("")
        out += [f"- added: `{_short(n)}`" for n in c.added]
        out += [f"- removed: `{_short(n)}`" for n in c.removed]
    out += ["", f"**{len(c.regressions)} regressed** (threshold {100 * c.threshold:g}%, "
                f"alpha {c.alpha:g})"]
    return "\n".join(out)


def plot_trends(runs: list[Run], out_dir: str | Path) -> list[Path]:
    """One PNG per benchmark group: median epoch time of each benchmark over the runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fer.atomic import atomic_open

    out_dir = Path(out_dir)
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for i, run in enumerate(runs):
        for b in run.benchmarks.values():
            groups.setdefault(b.group or "ungrouped", {}).setdefault(_short(b.fullname), []).append(
                (i, b.median))
    written = []
    for group, series in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for name, points in sorted(series.items()):
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([r.path.stem[:18] for r in runs], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("median epoch time (s)")
        ax.set_title(f"{group}: median epoch time per run")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in group)
        path = out_dir / f"trend_{safe}.png"
        with atomic_open(path) as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        written.append(path)
    return written
