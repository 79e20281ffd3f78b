"""Judging the exact counters (``fer.counters``): a count needs no statistics.

A counter of the candidate that rose beyond every baseline run's count, by more than the
variation measured for it (between two counted windows of one run, and between the baseline
runs; exactly zero where the count is deterministic), is a regression however small the time
change; the line names the counter and the operators behind it::

    aten ops/step 712 -> 713 (+1: aten::_local_scalar_dense); syncs/step 49 -> 50

Only the counters that depend on the code alone are gated (``fer.counters.GATED``: the
dispatched operators, host reads, allocations and copies); kernels, cudaMalloc calls and the
peak are shown, not gated, since kernel choice (``cudnn.benchmark``) and the allocator's
state may vary between runs of the same code. This module imports no torch.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from fer.bench.noise import IMPROVED, NOT_GATED, REGRESSED, UNCHANGED, Judgement
from fer.bench.storage import Bench

#: how each counter is named in a line, in the order lines list them
LABELS = {
    "aten_ops": "aten ops/step", "syncs": "syncs/step", "allocations": "allocations/step",
    "allocated_bytes": "allocated bytes/step", "h2d_copies": "H2D copies/step",
    "h2d_bytes": "H2D bytes/step", "d2h_copies": "D2H copies/step", "d2h_bytes": "D2H bytes/step",
    "cuda_mallocs": "cudaMalloc/step", "peak_allocated": "peak allocated bytes",
}
#: the counters gated (fer.counters.GATED; this module may not import torch to read it)
GATED = ("aten_ops", "syncs", "allocations", "allocated_bytes", "h2d_copies", "h2d_bytes",
         "d2h_copies", "d2h_bytes")
#: two counts closer than this are equal (counts per step are exact fractions of small ints)
EPS = 1e-9


@dataclass(frozen=True)
class Moved:
    """One counter that moved beyond its variation."""

    name: str
    base: float
    new: float
    tolerance: float
    gated: bool

    @property
    def rose(self) -> bool:
        return self.new > self.base

    def text(self, ops: str = "") -> str:
        return f"{LABELS.get(self.name, self.name)} {_num(self.base)} -> {_num(self.new)}{ops}"


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < EPS else f"{x:,.3g}"


def moved(new: dict, olds: list[dict]) -> list[Moved]:
    """The counters of ``new`` (a :attr:`Bench.counters`) outside the baseline runs' range
    widened by the measured variation, gated ones first."""
    out = []
    for name in LABELS:
        if name not in new["per_step"] or any(name not in o["per_step"] for o in olds):
            continue
        values = [o["per_step"][name] for o in olds]
        spread = max(values) - min(values)
        tolerance = max([spread, new["variation"].get(name, 0.0),
                         *(o["variation"].get(name, 0.0) for o in olds)])
        value = new["per_step"][name]
        if value > max(values) + tolerance + EPS:
            out.append(Moved(name, max(values), value, tolerance, name in GATED))
        elif value < min(values) - tolerance - EPS:
            out.append(Moved(name, min(values), value, tolerance, name in GATED))
    return sorted(out, key=lambda m: not m.gated)


def _ops_moved(new: dict, olds: list[dict], most: int = 3) -> str:
    """`` (+1: aten::_local_scalar_dense, -2: aten::add)``: the operators whose counts moved."""
    names = set(new["ops"]).union(*(o["ops"] for o in olds))
    delta = {n: new["ops"].get(n, 0.0) - statistics.fmean(o["ops"].get(n, 0.0) for o in olds)
             for n in names}
    ranked = sorted(((d, n) for n, d in delta.items() if abs(d) > EPS),
                    key=lambda x: (-abs(x[0]), x[1]))  # ties by name: the same line every run
    if not ranked:
        return ""
    parts = [f"{'+' if d > 0 else '-'}{_num(abs(d))}: aten::{n}" for d, n in ranked[:most]]
    if len(ranked) > most:
        parts.append(f"{len(ranked) - most} more")
    return f" ({', '.join(parts)})"


def describe(new: Bench, olds: list[Bench]) -> str | None:
    """One line naming the counters that moved (the operators behind the op count), or None."""
    counted = new.counters
    bases = [c for c in (b.counters for b in olds) if c is not None]
    if counted is None or not bases:
        return None
    found = moved(counted, bases)
    texts = [m.text(_ops_moved(counted, bases) if m.name == "aten_ops" else "") for m in found]
    return "; ".join(texts) or None


def judge_counters(new: Bench, olds: list[Bench], opts=None) -> Judgement:
    """The counters gate (``--gate-on counters``): regressed when a gated counter rose."""
    counted = new.counters
    bases = [c for c in (b.counters for b in olds) if c is not None]
    if counted is None or not bases:
        return Judgement("counters", NOT_GATED, 0.0, method="no counters recorded")
    found = [m for m in moved(counted, bases) if m.gated]
    first = found[0] if found else None
    base = statistics.fmean(c["per_step"].get("aten_ops", 0.0) for c in bases)
    after = counted["per_step"].get("aten_ops", 0.0)
    change = (first.new / first.base - 1 if first and first.base else
              (after / base - 1 if base else 0.0))
    if any(m.rose for m in found):
        verdict = REGRESSED
    elif found:
        verdict = IMPROVED
    else:
        verdict = UNCHANGED
    detail = describe(new, olds) if found else ""
    return Judgement("counters", verdict, change, method="exact counts per step", base=base,
                     new=after, noise=0.0, detail=detail or "")
