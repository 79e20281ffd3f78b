"""How well does the regression gate work? False alarms and detections, measured on real runs.

Runs the smoke perf suite's experiments K times unchanged and, interleaved with
them, with real injected slowdowns (``benchmarks/slowdown_plugin.py``: every
training step waits a fraction of its own duration), then judges every pair of
runs with each method and prints, per method and effect size:

* false alarms: benchmarks of unchanged pairs flagged as regressed, and gates
  that would have failed (any benchmark flagged);
* detections: benchmarks of slowed runs flagged as regressed, and how many of
  the rest were called inconclusive (a gate that cannot tell must say so).

Methods, on the same runs:

* ``pytest-benchmark median:10%`` — ``--benchmark-compare-fail=median:10%``:
  the median round time against one baseline run;
* ``fer 0.1 mann-whitney``: the first version of fer compare (Mann-Whitney U
  on the round times, p < 0.05, and a 5% minimum effect);
* ``fer, 1 baseline run``: fer's gate against one baseline run (noise floor),
  raw and calibrated;
* ``fer, history``: fer's gate against the other unchanged runs (the noise is
  learned from them), raw and calibrated — what the gpu-perf workflow does.

    python benchmarks/gate_power.py --out .gate-power              # run, then judge
    python benchmarks/gate_power.py --out .gate-power --judge-only # judge stored runs again

Nothing is edited by hand: every JSON is a real run of the suite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer.bench.stats import (  # noqa: E402
    INCONCLUSIVE,
    REGRESSED,
    GateOptions,
    compare,
)
from fer.bench.storage import Bench, Run, load_run  # noqa: E402

EXPERIMENTS = ("optimizer", "batch_size", "pose")
CONFIDENCE = GateOptions().confidence


def run_suite(out: Path, label: str, slowdown: float, experiments: list[str]) -> Path:
    path = out / f"{label}.json"
    env = dict(os.environ, FER_SLOWDOWN=str(slowdown), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "pytest", *(f"perf_tests/test_{e}.py" for e in experiments),
           "--perf-scale", "smoke", "-p", "benchmarks.slowdown_plugin", "-q",
           "-p", "no:cacheprovider", f"--benchmark-json={path}", "--benchmark-save-data"]
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{label}: the suite failed\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    print(f"  {label}: {time.perf_counter() - start:.0f} s", flush=True)
    return path


# --------------------------------------------------------------- methods --

def pytest_benchmark_median(base: Run, new: Run, limit: float = 0.10) -> dict[str, str]:
    """What --benchmark-compare-fail=median:10% does: the median grew by more than 10%."""
    return {name: REGRESSED if b.median / base.benchmarks[name].median - 1 > limit else "-"
            for name, b in new.benchmarks.items() if name in base.benchmarks}


def fer_v1(base: Run, new: Run) -> dict[str, str]:
    """fer compare 0.1: Mann-Whitney U on the round times (p < 0.05) and a 5% minimum effect."""
    from scipy.stats import mannwhitneyu

    out = {}
    for name, b in new.benchmarks.items():
        old = base.benchmarks.get(name)
        if old is None:
            continue
        x, y = old.data or [old.median], b.data or [b.median]
        grew = b.median / old.median - 1 >= 0.05
        p = mannwhitneyu(x, y, alternative="two-sided").pvalue if len(x) >= 3 and len(y) >= 3 else 0
        out[name] = REGRESSED if grew and p < 0.05 else "-"
    return out


def fer_gate(baseline: list[Run], new: Run, calibration: str, threshold: float,
             sample: str = "epoch", pool: str = "run") -> dict[str, str]:
    options = GateOptions(threshold=threshold, calibration=calibration, gate_on=("time",),
                          sample=sample, pool=pool, confidence=CONFIDENCE)
    return {r.fullname: r.verdict for r in compare(baseline, new, options).rows}


def judge(unchanged: list[Run], slowed: dict[float, list[Run]], threshold: float) -> list[tuple]:
    """Rows of (method, effect, flagged, total, gates failed, gates, inconclusive among missed)."""
    single = {
        "pytest-benchmark median:10%": pytest_benchmark_median,
        "fer 0.1 mann-whitney": fer_v1,
    }
    history = {}
    for pool in ("run", "none"):
        for sample in ("epoch", "step"):
            for cal, label in (("off", "raw"), ("on", "calibrated")):
                name = f"{sample} times, {label}, pool {pool}"
                single[f"fer, 1 baseline run, {name}"] = (
                    lambda b, n, c=cal, s=sample, p=pool: fer_gate([b], n, c, threshold, s, p))
                history[f"fer, history, {name}"] = (
                    lambda bs, n, c=cal, s=sample, p=pool: fer_gate(bs, n, c, threshold, s, p))
    rows = []

    def tally(method: str, effect: float, verdict_sets: list[dict[str, str]]) -> None:
        flagged = sum(v == REGRESSED for vs in verdict_sets for v in vs.values())
        total = sum(len(vs) for vs in verdict_sets)
        gates = sum(any(v == REGRESSED for v in vs.values()) for vs in verdict_sets)
        inconclusive = sum(v == INCONCLUSIVE for vs in verdict_sets for v in vs.values())
        rows.append((method, effect, flagged, total, gates, len(verdict_sets), inconclusive))

    for method, fn in single.items():
        tally(method, 0.0, [fn(a, b) for a, b in itertools.permutations(unchanged, 2)])
        for effect, runs in sorted(slowed.items()):
            tally(method, effect, [fn(u, s) for s in runs for u in unchanged])
    for method, fn in history.items():
        tally(method, 0.0, [fn([u for u in unchanged if u is not c], c) for c in unchanged])
        for effect, runs in sorted(slowed.items()):
            tally(method, effect, [fn(unchanged, s) for s in runs])
    return rows


def noise_summary(unchanged: list[Run]) -> str:
    """Within-run and run-to-run spread of the unchanged runs, per sample and method."""
    import statistics

    from fer.bench.noise import Level

    lines = []
    for label, samples in (("epoch times", Bench.epoch_times), ("step times", Bench.step_times)):
        within, between_raw, between_cal = [], [], []
        for name in unchanged[0].benchmarks:
            benches = [r.benchmarks[name] for r in unchanged if name in r.benchmarks]
            if not all(samples(b) for b in benches):
                continue
            raw = [Level.of(samples(b)) for b in benches]
            within += [lv.sd for lv in raw if lv.n > 1]
            between_raw.append(statistics.stdev(lv.mean for lv in raw))
            if all(b.calibration_s for b in benches):
                between_cal.append(statistics.stdev(
                    Level.of(samples(b), b.calibration_s).mean for b in benches))
        if not between_raw:
            continue
        med = statistics.median
        for cal in (False, True):
            if cal and not all(r.benchmarks[n].calibration_s for r in unchanged
                               for n in unchanged[0].benchmarks):
                continue
            common, specific = common_and_specific(unchanged, samples, cal)
            lines.append(f"{label}, {'calibrated' if cal else 'raw'}: run-to-run noise common to "
                         f"a run's benchmarks {100 * common:.1f}%, specific to one benchmark "
                         f"{100 * specific:.1f}%")
        text = (f"{label}: within-run spread of the rounds (median sd of logs) "
                f"{100 * med(within):.1f}%; run-to-run spread of a benchmark's level: raw "
                f"median {100 * med(between_raw):.1f}% (max {100 * max(between_raw):.1f}%)")
        if between_cal:
            text += (f", calibrated median {100 * med(between_cal):.1f}% "
                     f"(max {100 * max(between_cal):.1f}%)")
        lines.append(text)
    return "\n".join(lines)


def common_and_specific(unchanged: list[Run], samples, calibrated: bool) -> tuple[float, float]:
    """Split the run-to-run spread of the benchmarks' levels into the part common to a run
    and the part specific to a benchmark (pooled): the gate's own estimator,
    :func:`fer.bench.noise.split_noise`."""
    from fer.bench.noise import Level, split_noise

    names = [n for n in unchanged[0].benchmarks if all(n in r.benchmarks for r in unchanged)]
    levels = {n: {i: Level.of(samples(r.benchmarks[n]),
                              r.benchmarks[n].calibration_s if calibrated else 1.0).mean
                  for i, r in enumerate(unchanged)} for n in names}
    split = split_noise(levels)
    return split.common, split.pooled_specific


def realised(unchanged: list[Run], slowed: dict[float, list[Run]]) -> str:
    """The slowdown each slowed run really showed: the median over its benchmarks of the
    change against the unchanged runs' mean level, raw and calibrated."""
    import math
    import statistics

    from fer.bench.noise import Level

    lines = []
    for effect, runs in sorted(slowed.items()):
        for run in runs:
            raw, cal = [], []
            for name, b in run.benchmarks.items():
                olds = [u.benchmarks[name] for u in unchanged if name in u.benchmarks]
                base = statistics.fmean(Level.of(o.epoch_times()).mean for o in olds)
                raw.append(math.expm1(Level.of(b.epoch_times()).mean - base))
                if b.calibration_s and all(o.calibration_s for o in olds):
                    cbase = statistics.fmean(Level.of(o.epoch_times(), o.calibration_s).mean
                                             for o in olds)
                    cal.append(math.expm1(Level.of(b.epoch_times(), b.calibration_s).mean - cbase))
            text = (f"injected +{100 * effect:g}%: median change over its benchmarks raw "
                    f"{100 * statistics.median(raw):+.1f}% (range {100 * min(raw):+.1f} to "
                    f"{100 * max(raw):+.1f})")
            if cal:
                text += (f", calibrated {100 * statistics.median(cal):+.1f}% (range "
                         f"{100 * min(cal):+.1f} to {100 * max(cal):+.1f})")
            lines.append(text)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=".gate-power", help="folder for the runs' JSON")
    p.add_argument("--unchanged", type=int, default=6, help="unchanged runs (K)")
    p.add_argument("--effects", default="0.05,0.10,0.20", help="injected slowdowns")
    p.add_argument("--repeats", type=int, default=1, help="slowed runs per effect")
    p.add_argument("--experiments", default=",".join(EXPERIMENTS))
    p.add_argument("--threshold", type=float, default=None,
                   help="fer's threshold (default: fer compare's)")
    p.add_argument("--confidence", type=float, default=None,
                   help="fer's confidence (default: fer compare's)")
    p.add_argument("--judge-only", action="store_true", help="judge the runs already in --out")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    effects = [float(e) for e in args.effects.split(",")]
    experiments = args.experiments.split(",")
    if not args.judge_only:
        # interleaved, so that a drift of the machine hits both kinds of run alike
        plan = [("unchanged", 0.0, i) for i in range(args.unchanged)]
        slowed_plan = [("slow", e, r) for r in range(args.repeats) for e in effects]
        order = []
        for i in range(max(len(plan), len(slowed_plan))):
            order += plan[i:i + 1] + slowed_plan[i:i + 1]
        print(f"{len(order)} runs of {', '.join(experiments)} (smoke scale) into {out}/", flush=True)
        for kind, effect, i in order:
            label = f"{kind}-{i}" if kind == "unchanged" else f"slow{round(100 * effect)}-{i}"
            run_suite(out, label, effect, experiments)
    runs = {p.stem: load_run(p) for p in sorted(out.glob("*.json"))}
    unchanged = [r for k, r in runs.items() if k.startswith("unchanged")]
    slowed: dict[float, list[Run]] = {}
    for k, r in runs.items():
        if k.startswith("slow"):
            slowed.setdefault(int(k[4:].split("-")[0]) / 100, []).append(r)
    threshold = args.threshold if args.threshold is not None else GateOptions().threshold
    if args.confidence is not None:
        global CONFIDENCE
        CONFIDENCE = args.confidence
    bench = len(unchanged[0].benchmarks)
    print(f"\n{len(unchanged)} unchanged runs, slowed runs {({e: len(v) for e, v in slowed.items()})}, "
          f"{bench} benchmarks each; fer threshold {100 * threshold:g}%, "
          f"confidence {CONFIDENCE:g}")
    print(noise_summary(unchanged))
    print(realised(unchanged, slowed))
    print("\n| method | effect | benchmarks flagged | gates failed | not flagged: inconclusive |")
    print("|---|---:|---:|---:|---:|")
    for method, effect, flagged, total, gates, n_gates, inconclusive in judge(unchanged, slowed,
                                                                             threshold):
        missed = total - flagged
        label = "unchanged" if effect == 0 else f"+{100 * effect:g}%"
        rate = f"{flagged}/{total} ({100 * flagged / total:.0f}%)"
        inc = f"{inconclusive}/{missed}" if missed else "-"
        print(f"| {method} | {label} | {rate} | {gates}/{n_gates} | {inc} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
