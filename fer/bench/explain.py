"""Why a benchmark moved: the exact counters, the step breakdown and the data-wait share,
before and after.

Each perf benchmark stores ``extra_info["step_breakdown"]`` (a few profiled steps
after its timed epochs: time per step in each op category, ops and kernels per
step). For a benchmark that regressed or improved, :func:`explain` lines up the
baseline runs' breakdowns against the candidate's and names what moved::

    +1.9 ms/step: optimizer +1.6, elementwise +0.3; kernels/step 412 -> 1,310;
    data wait 2% -> 15% of the epoch

The counters that moved lead (``fer.bench.counts``: ``aten ops/step 712 -> 713 (+1:
aten::_local_scalar_dense)``), then the categories, listed by the size of their change, down to a tenth of the
total change; the data-wait share is named when it moved by 2 points or more.
"""

from __future__ import annotations

import statistics

from fer.bench.counts import describe
from fer.bench.storage import Bench

#: a data-wait share that moved by this many points is named
WAIT_POINTS = 0.02


def _mean_breakdown(benches: list[Bench]) -> dict | None:
    found = [b.step_breakdown for b in benches if b.step_breakdown is not None]
    if not found:
        return None
    categories = sorted(set().union(*(x["ms_per_step"] for x in found)))
    per_cat = {c: statistics.fmean(float(x["ms_per_step"].get(c) or 0.0) for x in found)
               for c in categories}

    def mean_of(key: str) -> float | None:
        values = [float(x[key]) for x in found if isinstance(x.get(key), (int, float))]
        return statistics.fmean(values) if values else None

    return {"ms_per_step": per_cat, "kernels_per_step": mean_of("kernels_per_step"),
            "ops_per_step": mean_of("ops_per_step")}


def _wait_share(benches: list[Bench]) -> float | None:
    shares = [s for b in benches for s in b.wait_shares()]
    return statistics.median(shares) if shares else None


def explain(new: Bench, olds: list[Bench], change: float | None = None) -> str | None:
    """One line naming what moved between ``olds`` (the baseline runs) and ``new``; with the
    benchmark's ``change`` (time), a step breakdown that moved the other way says so: its few
    profiled steps, after the timed epochs, then do not stand for the epochs."""
    counted = describe(new, olds)  # exact counts first: they say what the milliseconds cannot
    parts = [counted] if counted else []
    before, after = _mean_breakdown(olds), _mean_breakdown([new])
    if before and after:
        cats = set(before["ms_per_step"]) | set(after["ms_per_step"])
        delta = {c: after["ms_per_step"].get(c, 0.0) - before["ms_per_step"].get(c, 0.0)
                 for c in cats}
        total = sum(delta.values())
        ranked = sorted(delta.items(), key=lambda kv: -abs(kv[1]))
        named = [(c, d) for c, d in ranked if abs(d) >= 0.1 * abs(total) and abs(d) > 0][:4]
        text = f"{total:+.1f} ms/step"
        if named:
            text += ": " + ", ".join(f"{c} {d:+.1f}" for c, d in named)
        if change is not None and change * total < 0 and abs(total) >= 0.05:
            text += (f" (the profiled steps moved against the epochs' {100 * change:+.1f}%: a "
                     "few steps after the timed epochs, they do not stand for them here)")
        parts.append(text)
        for key, label in (("kernels_per_step", "kernels/step"), ("ops_per_step", "ops/step")):
            b, a = before.get(key), after.get(key)
            if b is not None and a is not None:
                if abs(a - b) >= max(1.0, 0.02 * b):
                    parts.append(f"{label} {b:,.0f} -> {a:,.0f}")
                break  # kernels where there are kernels (GPU), else host ops
    wait_before, wait_after = _wait_share(olds), _wait_share([new])
    if wait_before is not None and wait_after is not None:
        if abs(wait_after - wait_before) >= WAIT_POINTS:
            parts.append(f"data wait {100 * wait_before:.0f}% -> {100 * wait_after:.0f}% of the "
                         "epoch")
        elif parts:
            parts.append(f"data wait unchanged ({100 * wait_after:.0f}%)")
    return "; ".join(parts) or None
