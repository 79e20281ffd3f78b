"""Statistical verdicts: is the candidate run slower, faster, or the same?

Verdicts, per benchmark, on the epoch (round) times:

* with the raw round times of both sides (``--benchmark-save-data``, at least
  3 rounds each): a two-sided Mann-Whitney U test (scipy) *and* a minimum
  effect: regressed when p < alpha and the median grew by at least the
  threshold (default 5%), improved when p < alpha and it shrank by as much;
* otherwise: the threshold on the medians alone.

Changes are ratios, compared on a log scale, so swapping the two runs swaps
"improved" and "regressed" exactly. Pure functions over :mod:`fer.bench.storage`
runs; scipy is imported only when a test is run.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from fer.bench.storage import CompareError, Run, machine_key

IMPROVED, UNCHANGED, REGRESSED = "improved", "unchanged", "regressed"
MIN_ROUNDS_FOR_TEST = 3


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
