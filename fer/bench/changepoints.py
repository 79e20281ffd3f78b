"""Where did a benchmark step? Change points over the stored history of a hardware class.

E-Divisive means (Matteson & James 2014), as MongoDB's performance CI uses it
(Daly et al., ICPE 2020; Apache Otava): for a series of run levels, the split
that maximises the energy statistic ``Q = n1·n2/(n1+n2) · E(left, right)`` is
a candidate change point; a permutation test (the series shuffled, seeded, so
the answer is reproducible) gives its p-value; a significant split is kept and
both halves are searched again (binary segmentation). Pure numpy: an O(n²)
distance matrix and 2-D cumulative sums give Q for every split at once.

Each benchmark's series is its per-run level (the mean log epoch time,
calibrated where every run recorded the reference workload), so a step is a
ratio: ``+12%`` means the runs after the change are 12% slower.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from fer.bench.noise import Level
from fer.bench.storage import Run, is_calibrated, sample_kind

#: fewest runs on either side of a change point
MIN_SIZE = 2
PERMUTATIONS = 199


@dataclass
class ChangePoint:
    benchmark: str
    index: int  # the first run after the change, in history order
    run: str  # that run's label (file and commit)
    commit: str
    datetime: str
    change: float  # mean after / mean before - 1
    p_value: float
    before_runs: int
    after_runs: int

    @property
    def confidence(self) -> float:
        return 1 - self.p_value

    def to_dict(self) -> dict:
        return {**asdict(self), "confidence": self.confidence}


def _q_all(x: np.ndarray, min_size: int) -> np.ndarray:
    """Q(k) for every split k (left = x[:k]); -inf where a side is shorter than min_size."""
    n = len(x)
    d = np.abs(x[:, None] - x[None, :])
    s = d.cumsum(0).cumsum(1)
    total = s[-1, -1]
    q = np.full(n + 1, -np.inf)
    for k in range(min_size, n - min_size + 1):
        left = s[k - 1, k - 1]
        between = s[k - 1, -1] - left
        right = total - left - 2 * between
        n1, n2 = k, n - k
        energy = 2 * between / (n1 * n2) - left / n1**2 - right / n2**2
        q[k] = n1 * n2 / (n1 + n2) * energy
    return q


def e_divisive(series: list[float], *, alpha: float = 0.05, min_size: int = MIN_SIZE,
               permutations: int = PERMUTATIONS, seed: int = 0) -> list[tuple[int, float]]:
    """Change points of ``series`` as (index of the first point after, p-value), sorted."""
    rng = np.random.default_rng(seed)
    found: list[tuple[int, float]] = []

    def search(lo: int, hi: int) -> None:
        x = np.asarray(series[lo:hi], dtype=float)
        if len(x) < 2 * min_size or np.ptp(x) == 0:
            return
        q = _q_all(x, min_size)
        k = int(np.argmax(q))
        observed = q[k]
        exceed = sum(_q_all(rng.permutation(x), min_size).max() >= observed - 1e-12
                     for _ in range(permutations))
        p = (exceed + 1) / (permutations + 1)
        if p < alpha:
            found.append((lo + k, float(p)))
            search(lo, lo + k)
            search(lo + k, hi)

    search(0, len(series))
    return sorted(found)


def history_change_points(runs: list[Run], *, alpha: float = 0.05,
                          calibration: str = "auto") -> list[ChangePoint]:
    """Change points of every benchmark over ``runs`` (oldest first)."""
    names = sorted(set().union(*(r.benchmarks for r in runs)))
    points = []
    for name in names:
        present = [(i, r.benchmarks[name]) for i, r in enumerate(runs) if name in r.benchmarks]
        if len(present) < 2 * MIN_SIZE:
            continue
        benches = [b for _, b in present]
        calibrated = is_calibrated(benches, "off" if calibration == "off" else "auto")
        kind = sample_kind(benches)
        levels = [Level.of(b.time_samples(kind), b.calibration_s if calibrated else 1.0).mean
                  for b in benches]
        found = e_divisive(levels, alpha=alpha)
        edges = [0, *(k for k, _ in found), len(levels)]
        for i, (k, p) in enumerate(found):
            before, after = levels[edges[i]:k], levels[k:edges[i + 2]]  # the adjacent segments
            run = runs[present[k][0]]
            commit = str((run.commit_info or {}).get("id") or "")[:12]
            change = math.exp(float(np.mean(after)) - float(np.mean(before))) - 1
            points.append(ChangePoint(benchmark=name, index=present[k][0], run=run.label,
                                      commit=commit, datetime=run.datetime, change=change,
                                      p_value=p, before_runs=len(before), after_runs=len(after)))
    return points
