"""Verdict assembly: a candidate run against its baseline runs, row by row.

:func:`compare` pairs each benchmark of the candidate with its baseline runs, reads their
samples through :class:`fer.bench.storage.Bench` (step or epoch times, calibrated where every
run recorded the reference workload), judges time (and throughput) with the noise model of
:mod:`fer.bench.noise` — the benchmarks that moved together by the run's shift, the others
apart — and the other gated metrics with :data:`METRIC_JUDGES` (peak CUDA memory, the
data-wait share, the exact counters of :mod:`fer.bench.counts`), and assembles the
:class:`Row` of each benchmark and the :class:`Comparison` that `fer compare`, its markdown
and JSON and the dashboard render.
:class:`GateOptions` holds how it judges: the CLI's flags and the research settings that
``benchmarks/gate_power.py`` varies. A benchmark measured while the reference workload ran
more than :data:`DISTURBED` off its baseline speed is inconclusive: the machine was disturbed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from fer.bench.counts import judge_counters
from fer.bench.explain import explain
from fer.bench.noise import (
    DEFAULT_NOISE,
    IMPROVED,
    INCONCLUSIVE,
    MIN_HISTORY,
    NOT_GATED,
    POOLS,
    REGRESSED,
    UNCHANGED,
    VERDICTS,
    Judgement,
    Level,
    Member,
    Shift,
    judge_family,
)
from fer.bench.storage import (
    CALIBRATIONS,
    SAMPLE_KINDS,
    Bench,
    CompareError,
    Run,
    is_calibrated,
    machine_key,
    sample_kind,
    short_name,
)
from fer.errors import printable

__all__ = ["DEFAULT_GATES", "DEFAULT_NOISE", "GATES", "IMPROVED", "INCONCLUSIVE", "METRIC_JUDGES",
           "MIN_HISTORY", "NOT_GATED", "REGRESSED", "UNCHANGED", "VERDICTS", "Comparison",
           "CompareError", "GateOptions", "Judgement", "Level", "Row", "compare"]

DEFAULT_GATES = ("time", "memory", "counters")
#: calibrated verdicts need a machine of about the baseline's speed: when the reference
#: workload ran more than this much slower or faster than in the baseline runs, the
#: machine was disturbed (a busy neighbour, throttling) and the time verdict is inconclusive
DISTURBED = 0.5


@dataclass(frozen=True)
class GateOptions:
    """How a comparison judges. The first four and ``gate_on`` are `fer compare`'s flags; the
    rest are research settings that `benchmarks/gate_power.py` varies to measure the gate
    (the CLI keeps their defaults)."""

    threshold: float = 0.05  # time and throughput, a fraction
    memory_threshold: float = 0.02
    data_wait_threshold: float = 0.05  # points of share
    confidence: float = 0.95  # one-sided, per benchmark; Holm across benchmarks
    calibration: str = "auto"  # auto, on, off
    sample: str = "auto"  # time samples: epoch (wall), step (typical step x steps), auto
    noise_floor: float | None = None  # the specific noise without history (DEFAULT_NOISE)
    common_noise_floor: float | None = None  # the common noise without history
    pool: str = "run"  # judge benchmarks that moved together by the run's shift; none
    gate_on: tuple[str, ...] = DEFAULT_GATES
    #: where the step sample judges, the share of the gate's alpha spent on the whole epoch as
    #: well (a weighted Bonferroni split: the step sample keeps the rest), which sees what the
    #: typical step cannot: a stall in some steps, work after the step loop
    epoch_share: float = 0.2

    def check(self) -> None:
        if not 0 < self.threshold < 10:
            raise CompareError(f"--threshold must be in (0, 10), got {self.threshold}")
        if not 0 < self.memory_threshold < 10:
            raise CompareError(f"--memory-threshold must be in (0, 10), got {self.memory_threshold}")
        if not 0 < self.data_wait_threshold < 1:
            raise CompareError(f"--data-wait-threshold must be in (0, 1), got "
                               f"{self.data_wait_threshold}")
        if not 0.5 < self.confidence < 1:
            raise CompareError(f"GateOptions.confidence must be in (0.5, 1), got {self.confidence}")
        if self.sample not in SAMPLE_KINDS:
            raise CompareError(f"GateOptions.sample {self.sample!r} is not one of: auto, epoch, step")
        if self.calibration not in CALIBRATIONS:
            raise CompareError(f"GateOptions.calibration {self.calibration!r} is not one of: auto, on, off")
        if self.noise_floor is not None and not 0 < self.noise_floor < 1:
            raise CompareError(f"GateOptions.noise_floor must be in (0, 1), got {self.noise_floor}")
        if self.common_noise_floor is not None and not 0 <= self.common_noise_floor < 1:
            raise CompareError(f"GateOptions.common_noise_floor must be in [0, 1), got "
                               f"{self.common_noise_floor}")
        if not 0 <= self.epoch_share < 1:
            raise CompareError(f"GateOptions.epoch_share must be in [0, 1), got {self.epoch_share}")
        if self.pool not in POOLS:
            raise CompareError(f"GateOptions.pool {self.pool!r} is not one of: {', '.join(POOLS)}")
        gates = ("time", "throughput", *METRIC_JUDGES)  # read now: a metric may be added later
        unknown = [g for g in self.gate_on if g not in gates]
        if unknown or not self.gate_on:
            raise CompareError(f"--gate-on {','.join(self.gate_on)}: use a comma-separated list "
                               f"of {', '.join(gates)}")


@dataclass
class Row:
    """One benchmark's comparison. ``base_s``/``new_s`` are the time samples the verdict judged
    (their geometric mean; calibrated step or epoch times are shown in seconds at the baseline
    runs' machine speed), so ``change == new_s / base_s - 1``; ``epoch_base_s``/``epoch_new_s``
    are the raw median epoch times, for reference."""

    fullname: str
    group: str | None
    base_s: float
    new_s: float
    change: float  # new_s / base_s - 1: the benchmark's own change
    verdict: str  # the worst verdict over the gated metrics
    method: str
    base_runs: int
    new_rounds: int
    judgements: dict[str, Judgement] = field(default_factory=dict)
    explanation: str | None = None  # what moved, for regressed and improved benchmarks
    epoch_base_s: float | None = None  # the baseline runs' median epoch wall time (raw)
    epoch_new_s: float | None = None
    base_rounds: int | None = None  # the fewest timed epochs of a baseline run

    @property
    def time(self) -> Judgement:
        return self.judgements["time"]

    @property
    def mde(self) -> float | None:
        return self.time.mde

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "judgements"}
        out["judgements"] = {k: j.to_dict() for k, j in self.judgements.items()}
        return out


@dataclass
class Comparison:
    baseline: list[Run]
    candidate: Run
    rows: list[Row]
    added: list[str]
    removed: list[str]
    cross_machine: bool
    options: GateOptions
    shifts: list[Shift] = field(default_factory=list)  # the run as a whole, per metric
    notes: list[str] = field(default_factory=list)  # reasons found while pairing the runs

    def reasons(self) -> list[str]:
        """Every reason behind the verdicts that a reader must see, one line each — the same in
        the terminal, --markdown, --json and the dashboard."""
        out = list(self.notes)
        if self.cross_machine:
            out.append("the runs come from different hardware or software "
                       "(--allow-cross-machine): timings across them are not comparable")
        disturbed: dict[str, list[str]] = {}
        for r in self.rows:
            if r.time.noise_source.startswith("a disturbed"):
                disturbed.setdefault(r.time.noise_source, []).append(r.fullname)
        for why, names in sorted(disturbed.items()):
            out.append(f"{len(names)} benchmark(s) inconclusive because of {why}: rerun on a "
                       f"quiet machine ({_names(names)})")
        fewer = [r for r in self.rows if r.base_rounds and r.new_rounds < r.base_rounds]
        if fewer:
            out.append(f"{len(fewer)} benchmark(s) timed fewer epochs than their baseline "
                       f"(e.g. {_names([fewer[0].fullname])}: {fewer[0].new_rounds} vs "
                       f"{fewer[0].base_rounds}): their noise is less well known")
        single = [r.fullname for r in self.rows if r.new_rounds < 2]
        if single:
            out.append(f"{len(single)} benchmark(s) timed a single epoch: no within-run spread "
                       f"to weigh ({_names(single)}); run with --perf-rounds 3 or more")
        if self.added:
            out.append(f"{len(self.added)} benchmark(s) only in the candidate, not compared "
                       f"({_names(self.added)})")
        if self.removed:
            out.append(f"{len(self.removed)} benchmark(s) only in the baseline, not compared "
                       f"({_names(self.removed)})")
        return out

    @property
    def threshold(self) -> float:
        return self.options.threshold

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSED]

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "baseline": [str(r.path) for r in self.baseline],
            "candidate": str(self.candidate.path),
            "cross_machine": self.cross_machine, "options": asdict(self.options),
            "rows": [r.to_dict() for r in self.rows],
            "added": self.added, "removed": self.removed,
            "regressed": [r.fullname for r in self.regressions],
            "counts": {v: self.count(v) for v in VERDICTS},
            "shifts": [s.to_dict() for s in self.shifts],
            "reasons": self.reasons(),
            "columns": {"base_s, new_s": "the samples the verdict judged (geometric mean): "
                        "calibrated ones in seconds at the baseline runs' machine speed",
                        "change": "new_s / base_s - 1, the benchmark's own change",
                        "epoch_base_s, epoch_new_s": "raw median epoch wall times"},
        }


def _names(names: list[str], most: int = 3) -> str:
    short = [short_name(n) for n in names]
    text = ", ".join(short[:most])
    return text + (f" and {len(short) - most} more" if len(short) > most else "")


_SEVERITY = {REGRESSED: 3, INCONCLUSIVE: 2, IMPROVED: 1, UNCHANGED: 0, NOT_GATED: -1}


def _judge_metric(pairs: list, opts: GateOptions, metric: str
                  ) -> tuple[dict[str, Judgement], list[Shift]]:
    """Judge time (or throughput) of every benchmark: one family per method (normally one),
    benchmarks on a disturbed machine alone and inconclusive."""
    families: dict[str, list[Member]] = {}
    benches: dict[str, tuple] = {}
    disturbed: dict[str, str] = {}
    for name, new, runs in pairs:
        olds = [b for _, b in runs]
        kind = sample_kind([new, *olds], opts.sample) if metric == "time" else None
        has_calibration = is_calibrated([new, *olds], opts.calibration)
        # a ratio of two times of the same epochs: the machine's speed already cancels (but a
        # disturbed machine is still told by the reference workload, below)
        calibrated = kind != "excess" and has_calibration
        method = "calibrated" if calibrated else "raw"
        if metric == "time":
            label = f"{method}, {kind} times"

            def samples(b: Bench, kind=kind) -> list[float]:
                return b.time_samples(kind)
        else:
            samples, label = Bench.throughputs, method

        def level(b: Bench, samples=samples, calibrated=calibrated) -> Level:
            scale = b.calibration_s if calibrated else 1.0
            values = samples(b)
            if metric == "throughput" and calibrated:
                return Level.of([x * scale for x in values])  # images per reference time
            return Level.of(values, scale)

        member = Member(name, level(new), {i: level(b) for i, b in runs})
        # the baseline runs' machine speed (their reference workload's geometric mean)
        reference = math.exp(statistics.fmean(math.log(b.calibration_s) for b in olds)) \
            if has_calibration else 1.0
        # the unit the judged levels are shown in: seconds (images/s) at that speed, so that
        # new / base - 1 is the change judged
        base_speed = reference if calibrated else 1.0
        unit = 1 / base_speed if metric == "throughput" and calibrated else base_speed
        benches[name] = (new, olds, unit, label)
        if new.disturbed:
            disturbed[name] = f"a disturbed machine when it was measured: {new.disturbed}"
        elif has_calibration:
            speed = math.log(new.calibration_s / reference)
            if abs(speed) > math.log1p(DISTURBED):
                disturbed[name] = (f"a disturbed machine: the reference workload ran "
                                   f"{math.exp(speed):.2g}x its baseline time")
        if name in disturbed:
            families.setdefault(f"{label} (disturbed {name})", []).append(member)
            continue
        families.setdefault(label, []).append(member)

    judgements: dict[str, Judgement] = {}
    shifts: list[Shift] = []
    for label, members in families.items():
        method = "calibrated" if label.startswith("calibrated") else \
            "excess" if ", excess" in label else "raw"
        found, shift = judge_family(
            members, threshold=opts.threshold, confidence=opts.confidence, method=method,
            metric=metric, sign=1 if metric == "time" else -1, floor=opts.noise_floor,
            common_floor=opts.common_noise_floor, pool=opts.pool)
        for m, j in zip(members, found):
            new, olds, unit, kind = benches[m.name]
            j.method = kind
            j.base = math.exp(statistics.fmean(lv.mean for lv in m.baseline.values())) * unit
            j.new = math.exp(m.candidate.mean) * unit
            if m.name in disturbed:
                j.verdict = INCONCLUSIVE
                j.noise_source = disturbed[m.name]
            judgements[m.name] = j
        if not any(m.name in disturbed for m in members):
            shift.method = label
            shifts.append(shift)
    return judgements, shifts


def _with_whole_epochs(pairs: list, stepped: list, opts: GateOptions
                       ) -> tuple[dict[str, Judgement], list[Shift]]:
    """Time judged on three samples where the step sample can: the typical step (quiet; blind
    to a stall in some steps and to work after the step loop) at ``1 - epoch_share`` of the
    alpha; the whole epoch (sees everything; noisier) and the whole epoch over its typical step
    (the excess: sees a stall or a tail, and the machine's speed cancels from it, so one
    baseline run can see it) at half of ``epoch_share`` each. A benchmark's time verdict is the
    step sample's unless only the whole epoch, or else only the excess, found a change, whose
    judgement (samples, interval, change) then stands for the row, so that its columns agree."""
    alpha = 1 - opts.confidence
    step_opts = replace(opts, confidence=1 - alpha * (1 - opts.epoch_share))
    epoch_opts = replace(opts, confidence=1 - alpha * opts.epoch_share / 2, sample="epoch")
    excess_opts = replace(epoch_opts, sample="excess", noise_floor=None, common_noise_floor=None)
    step, step_shifts = _judge_metric(pairs, step_opts, "time")
    epoch, epoch_shifts = _judge_metric(stepped, epoch_opts, "time")
    ratios = [p for p in stepped if sample_kind([p[1], *(b for _, b in p[2])], "excess")
              == "excess"]
    excess, excess_shifts = _judge_metric(ratios, excess_opts, "time")
    moved = (REGRESSED, IMPROVED)
    out = dict(step)
    # a benchmark measured on a disturbed machine stays inconclusive whatever another sample says
    judged = {name for name, j in step.items() if j.verdict != INCONCLUSIVE or
              not j.noise_source.startswith("a disturbed machine")}
    for name, j in epoch.items():
        if name in judged and step[name].verdict not in moved and j.verdict in moved:
            j.method += " (the whole epoch: a change outside the typical step)"
            out[name] = j
    for name, j in excess.items():
        if name in judged and out[name].verdict not in moved and j.verdict in moved:
            j.method += " (the whole epoch over its typical step: a stall or work after the loop)"
            out[name] = j
    return out, [*step_shifts, *epoch_shifts, *excess_shifts]


def _judge_memory(new: Bench, olds: list[Bench], opts: GateOptions) -> Judgement:
    after = new.peak_cuda_memory
    before = [m for m in (b.peak_cuda_memory for b in olds) if m is not None]
    if after is None or not before:
        return Judgement("memory", NOT_GATED, 0.0, method="no CUDA memory recorded")
    base = max(before)
    change = after / base - 1
    if change > opts.memory_threshold:
        verdict = REGRESSED
    elif change < -opts.memory_threshold:
        verdict = IMPROVED
    else:
        verdict = UNCHANGED
    return Judgement("memory", verdict, change, method="ratio of maxima (deterministic)",
                     base=base, new=after)


def _judge_data_wait(new: Bench, olds: list[Bench], opts: GateOptions) -> Judgement:
    after = new.wait_shares()
    before = [s for b in olds for s in b.wait_shares()]
    if not after or not before:
        return Judgement("data_wait", NOT_GATED, 0.0, method="no data-wait share recorded")
    change = statistics.median(after) - statistics.median(before)
    apart_up = min(after) > max(before)
    apart_down = max(after) < min(before)
    if change > opts.data_wait_threshold and apart_up:
        verdict = REGRESSED
    elif change < -opts.data_wait_threshold and apart_down:
        verdict = IMPROVED
    elif abs(change) <= opts.data_wait_threshold:
        verdict = UNCHANGED
    else:
        verdict = INCONCLUSIVE
    return Judgement("data_wait", verdict, change, method="points of share, rounds apart",
                     base=statistics.median(before), new=statistics.median(after))


#: the gated metrics beyond time and throughput (which the noise model judges together): each
#: judges one benchmark's candidate against its baseline runs, ``(new, olds, options) ->
#: Judgement``; ``--gate-on NAME`` gates on it (docs/ARCHITECTURE.md: adding a gated metric)
METRIC_JUDGES: dict[str, Callable[[Bench, list[Bench], GateOptions], Judgement]] = {
    "memory": _judge_memory,
    "data_wait": _judge_data_wait,
    "counters": judge_counters,  # fer.bench.counts: exact counts per step, no noise
}
#: what --gate-on accepts
GATES = ("time", "throughput", *METRIC_JUDGES)

#: clock event reasons that are no throttling: an idle GPU, a clock setting, display, sync boost
NOT_THROTTLING = frozenset({"gpu_idle", "applications_clocks_setting", "sync_boost",
                            "display_clock_setting"})


def throttled_by(bench: Bench) -> set[str] | None:
    """The throttle reasons NVML saw during the benchmark's rounds (empty: none); None where
    its reasons were not sampled (a CPU, no NVML, a run before the sampling)."""
    reasons = bench.gpu_sampling.get("throttle_reasons")
    return None if reasons is None else set(reasons) - NOT_THROTTLING


def _uuids(run: Run) -> tuple[str, ...] | None:
    known = tuple(u for u in run.gpu_facts.get("uuids") or [] if u != "unknown")
    return known or None


def clock_setting(run: Run) -> str | None:
    """The run's GPU clock settings in words (one text per distinct setting of its GPUs);
    None where NVML read none of them."""
    texts = []
    for c in run.gpu_facts.get("clocks") or []:
        app, locked = str(c.get("applications_clocks", "unknown")), str(c.get("locked_clocks", "unknown"))
        offsets = {label: c[key] for key, label in (("gpc_clock_offset_mhz", "SM"),
                                                   ("mem_clock_offset_mhz", "memory"))
                   if isinstance(c.get(key), int) and c[key]}
        if app == locked == "unknown" and not offsets:
            continue
        text = f"applications clocks {app}"
        if app == "set":
            text += f" ({c.get('applications_sm_mhz')}/{c.get('applications_mem_mhz')} MHz SM/memory)"
        text += f", locked clocks {locked}" + "".join(
            f", {label} clock offset {value:+d} MHz" for label, value in offsets.items())
        texts.append(printable(text))
    return "; ".join(dict.fromkeys(texts)) or None


def _gpu_notes(base_runs: list[Run], candidate: Run, pairs: list) -> list[str]:
    """One line each where the baseline and the candidate ran on different physical GPUs,
    with different clock settings, or where throttling was seen on one side only."""
    notes = []
    new_ids = _uuids(candidate)
    other = [ids for r in base_runs if (ids := _uuids(r)) and new_ids and ids != new_ids]
    if other:
        notes.append(f"{len(other)} of {len(base_runs)} baseline run(s) ran on another physical "
                     f"GPU than the candidate ({', '.join(u[:12] for u in other[0])} vs "
                     f"{', '.join(u[:12] for u in new_ids)}): cards of one model differ by several "
                     "percent: part of a change may be the card's, not the code's")
    new_clock = clock_setting(candidate)
    other = [s for r in base_runs if (s := clock_setting(r)) and new_clock and s != new_clock]
    if other:
        notes.append(f"{len(other)} of {len(base_runs)} baseline run(s) ran with other GPU clock "
                     f"settings than the candidate ({other[0]} vs {new_clock}): part of a change "
                     "may be the clocks', not the code's")
    in_new: dict[str, set[str]] = {}
    in_base: dict[str, set[str]] = {}
    for name, new, runs in pairs:
        mine = throttled_by(new)
        theirs = [t for _, b in runs if (t := throttled_by(b)) is not None]
        if mine is None or not theirs:
            continue
        seen = set().union(*theirs)
        if mine and not seen:
            in_new[name] = mine
        elif seen and not mine:
            in_base[name] = seen
    for where, found in (("the candidate but not in the baseline", in_new),
                         ("baseline runs but not in the candidate", in_base)):
        if found:
            reasons = ", ".join(sorted(set().union(*found.values())))
            notes.append(f"{len(found)} benchmark(s) throttled in {where} ({reasons}; "
                         f"{_names(sorted(found))}): the card slowed itself, so part of a change "
                         "may be the card's, not the code's")
    return notes


def compare(baseline: Run | list[Run], candidate: Run, options: GateOptions | None = None, *,
            allow_cross_machine: bool = False) -> Comparison:
    """Judge ``candidate`` against one earlier run or a history of them (the baseline
    level is their mean; with ``MIN_HISTORY`` or more, their spread is the noise)."""
    opts = options or GateOptions()
    opts.check()
    base_runs = baseline if isinstance(baseline, list) else [baseline]
    copies = [r for r in base_runs if r.fingerprint == candidate.fingerprint]
    distinct: dict[str, Run] = {}
    for r in base_runs:
        if r.fingerprint != candidate.fingerprint:
            distinct.setdefault(r.fingerprint, r)
    twice = len(base_runs) - len(copies) - len(distinct)
    base_runs = list(distinct.values())
    if copies and not base_runs:
        raise CompareError(f"{copies[0].path} is the candidate {candidate.path} itself (the same "
                           "run): compare a run with earlier runs")
    if not base_runs:
        raise CompareError("nothing to compare against: the history holds no earlier run")
    new_key = machine_key(candidate.machine_info)
    foreign = [r for r in base_runs if machine_key(r.machine_info) != new_key]
    if foreign and not allow_cross_machine:
        other = machine_key(foreign[0].machine_info)
        raise CompareError(
            f"{foreign[0].path} ran on {other} but {candidate.path} on {new_key}; timings from "
            "different hardware or software are not comparable (pass --allow-cross-machine to "
            "compare anyway)")
    base_names = set().union(*(r.benchmarks for r in base_runs))
    pairs, notes, left_out, unjudged, other_work, mixed = [], [], 0, [], {}, 0
    if copies:
        notes.append(f"left {len(copies)} copy(ies) of the candidate itself out of the baseline")
    if twice:
        notes.append(f"read {twice} baseline run(s) given twice once")
    if candidate.interrupted:
        notes.append("the candidate is an interrupted run (stopped before the suite's end): "
                     "its missing benchmarks are listed as removed")
    for name, new in sorted(candidate.benchmarks.items()):
        found = [(i, r.benchmarks[name]) for i, r in enumerate(base_runs) if name in r.benchmarks]
        differences = [new.differs_from(b) for _, b in found]
        same = [ib for ib, differs in zip(found, differences) if not differs]  # the same work
        if found and not same:
            other_work[name] = differences[-1]
            continue
        mixed += len(same) < len(found)
        quiet = [(i, b) for i, b in same if b.disturbed is None]  # marked when saved
        left_out += len(same) - len(quiet)
        if same and not quiet:
            unjudged.append(name)
        elif quiet:
            pairs.append((name, new, quiet))
    if other_work:
        first = min(other_work)
        notes.append(f"{len(other_work)} benchmark(s) not compared: the baseline measured other "
                     f"work under the same name ({_names([first])}: "
                     f"{', '.join(other_work[first])})")
    if mixed:
        notes.append(f"{mixed} benchmark(s) compared with only the baseline runs of the same "
                     "work (others measured another scale, model, batch, precision, step or "
                     "device count)")
    if left_out:
        notes.append(f"left {left_out} benchmark run(s) that the suite marked disturbed when it "
                     "saved them out of the baseline and its noise")
    if unjudged:
        notes.append(f"{len(unjudged)} benchmark(s) not compared: every baseline run of them "
                     f"was disturbed ({_names(unjudged)})")
    notes += _gpu_notes(base_runs, candidate, pairs)
    by_metric, shifts = {}, []
    stepped = [p for p in pairs
               if sample_kind([p[1], *(b for _, b in p[2])], opts.sample) == "step"]
    if stepped and opts.epoch_share > 0:
        by_metric["time"], shifts = _with_whole_epochs(pairs, stepped, opts)
    else:
        by_metric["time"], shifts = _judge_metric(pairs, opts, "time")
    if "throughput" in opts.gate_on:
        by_metric["throughput"], found = _judge_metric(pairs, opts, "throughput")
        shifts += found
    rows = []
    for name, new, runs in pairs:
        judgements = {metric: judged[name] for metric, judged in by_metric.items()}
        olds = [b for _, b in runs]
        for metric in opts.gate_on:
            if metric in METRIC_JUDGES:
                judgements[metric] = METRIC_JUDGES[metric](new, olds, opts)
        t = judgements["time"]
        rows.append(Row(fullname=name, group=new.group, base_s=t.base, new_s=t.new,
                        change=t.change, verdict=UNCHANGED, method=t.method, base_runs=len(olds),
                        new_rounds=len(new.epoch_times()), judgements=judgements,
                        epoch_base_s=statistics.median(statistics.median(b.epoch_times())
                                                       for b in olds),
                        epoch_new_s=statistics.median(new.epoch_times()),
                        base_rounds=min(len(b.epoch_times()) for b in olds)))
    for r, (_, new, runs) in zip(rows, pairs):
        olds = [b for _, b in runs]
        gated = [j.verdict for k, j in r.judgements.items() if k in opts.gate_on]
        r.verdict = max(gated or [UNCHANGED], key=_SEVERITY.__getitem__)
        if r.verdict == NOT_GATED:
            r.verdict = UNCHANGED
        real = r.time.low is not None and (r.time.low > 0 or r.time.high < 0)
        if r.verdict in (REGRESSED, IMPROVED) or real:  # a change its own interval calls real
            r.explanation = explain(new, olds, r.change)
    return Comparison(
        baseline=base_runs, candidate=candidate, rows=rows,
        added=sorted(set(candidate.benchmarks) - base_names),
        removed=sorted(base_names - set(candidate.benchmarks)),
        cross_machine=bool(foreign), options=opts, shifts=shifts, notes=notes)
