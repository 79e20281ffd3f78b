"""Verdicts: is a candidate run slower than its baseline, given the noise that applies?

The noise model (what ``fer compare`` weighs a change against), per benchmark:

* **the samples** are, per timed epoch (``extra_info.records``, warm-up
  excluded), its typical step (the 25th percentile of its step times, from the
  engine's per-step clock) times its steps where every run recorded step times
  (``--sample``), else the epoch's wall time (older runs: the round times, or
  the median). With ``--calibration`` (auto: where both sides recorded it) each is
  divided by the median time of the reference workload timed between the
  rounds of the same benchmark (:mod:`fer.suite.calibration`): the machine's
  speed of the moment, which no change to fer can move;
* **a run's level** is the mean log time of its samples; a change is the
  difference of levels, ``d = level(candidate) - level(baseline)``, so ratios
  are compared on a log scale: swapping two runs negates ``d``, scaling every
  time by ``k`` leaves it unchanged;
* **run-to-run noise** ``tau`` is the standard deviation of a run's level
  around the truth. Learned from the baseline history when it holds at least
  ``MIN_HISTORY`` runs of the benchmark (the spread of their levels, Student's t
  with ``m - 1`` degrees of freedom); otherwise a stated floor
  (:data:`DEFAULT_NOISE`, per method, measured by ``benchmarks/gate_power.py``).
  It is never below the within-run spread of the rounds (``sd / sqrt(n)``) nor
  below :data:`MIN_NOISE`;
* ``se = tau * sqrt(1 + 1/m)`` for a baseline of ``m`` runs (the baseline level
  is their mean).

Four verdicts, from the confidence interval ``d ± c·se`` against the threshold
band ``±log(1 + threshold)``:

* **unchanged**: the whole interval lies inside the band (shown to be within
  ±threshold);
* **regressed** / **improved**: the interval lies above / below zero — the
  change is real — and reaches past the band's edge, and the one-sided p-value
  survives Holm's correction over every benchmark of the comparison (a gate of
  30 benchmarks at 5% each would otherwise cry wolf on most unchanged runs);
* **inconclusive**: anything else — the noise is too large to tell at this
  threshold. The minimum detectable effect, ``(c + z_0.8)·se`` (80% power), is
  printed beside every benchmark.

Beyond time (``--gate-on``): peak CUDA memory is deterministic and gated by a
tight threshold on the ratio of maxima; throughput (images/s) uses the same
noise model; the data-wait share gates on a rise of more than
``data_wait_threshold`` points with the rounds of the two runs not overlapping.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from fer.bench.storage import Bench, CompareError, Run, machine_key

IMPROVED, UNCHANGED, REGRESSED, INCONCLUSIVE = "improved", "unchanged", "regressed", "inconclusive"
NOT_GATED = "n/a"
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE)

GATES = ("time", "memory", "throughput", "data_wait")
DEFAULT_GATES = ("time", "memory")
#: the history needed to learn a benchmark's run-to-run noise
MIN_HISTORY = 3
#: run-to-run noise assumed without enough history, per method (a fraction, log scale):
#: the medians measured on a 2-core shared CPU by benchmarks/gate_power.py (see README)
DEFAULT_NOISE = {"calibrated": 0.06, "raw": 0.09}
#: no benchmark is ever judged quieter than this
MIN_NOISE = 0.005
#: calibrated verdicts need a machine of about the baseline's speed: when the reference
#: workload ran more than this much slower or faster than in the baseline runs, the
#: machine was disturbed (a busy neighbour, throttling) and the time verdict is inconclusive
DISTURBED = 0.5
#: power for the minimum detectable effect
POWER = 0.8

# kept for callers of the first version
METRICS = ("median_images_per_s", "median_data_wait_share", "peak_mem_bytes")


def _z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def _t(p: float, df: int | None) -> float:
    if df is None:
        return _z(p)
    from scipy.stats import t  # only when a history gives degrees of freedom

    return float(t.ppf(p, df))


# ------------------------------------------------------------ samples --

def _timed_records(b: Bench) -> list[dict]:
    records = [r for r in (b.extra_info.get("records") or []) if isinstance(r, dict)]
    if any("warmup" in r for r in records):
        return [r for r in records if not r.get("warmup")]
    return records[1:] if len(records) > 1 else records


def epoch_times(b: Bench) -> list[float]:
    """The benchmark's timed epochs, seconds: the engine's records, else the round times."""
    times = [float(r["wall_s"]) for r in _timed_records(b) if r.get("wall_s")]
    return times or list(b.data or []) or [b.median]


#: the quantile of an epoch's step times that stands for the epoch with --sample step
STEP_QUANTILE = "q25"


def step_times(b: Bench) -> list[float] | None:
    """Per timed epoch, its typical step (the :data:`STEP_QUANTILE` of its step times) times
    its steps: an epoch time that a burst of a busy machine cannot move much. None when
    the records hold no step times (older runs)."""
    out = []
    for r in _timed_records(b):
        steps = r.get("step_s")
        if not isinstance(steps, dict) or not steps.get(STEP_QUANTILE) or not steps.get("n"):
            return None
        out.append(float(steps[STEP_QUANTILE]) * int(steps["n"]))
    return out or None


def throughputs(b: Bench) -> list[float]:
    rates = [float(r["images_per_s"]) for r in _timed_records(b) if r.get("images_per_s")]
    if rates:
        return rates
    value = b.metric("median_images_per_s")
    return [value] if value else []


def wait_shares(b: Bench) -> list[float]:
    shares = []
    for r in _timed_records(b):
        wall, wait = r.get("wall_s"), r.get("data_wait_s")
        if wall and wait is not None:
            shares.append(float(wait) / float(wall))
    if shares:
        return shares
    value = b.metric("median_data_wait_share")
    return [value] if value is not None else []


def calibration_s(b: Bench) -> float | None:
    """The median time of the reference workload measured beside this benchmark."""
    cal = b.extra_info.get("calibration")
    value = cal.get("median_s") if isinstance(cal, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def peak_cuda_memory(b: Bench) -> int | None:
    """Peak CUDA memory over the benchmark's epochs; None off CUDA (RSS is not a gate)."""
    records = [r for r in (b.extra_info.get("records") or []) if isinstance(r, dict)]
    peaks = [int(r["peak_mem_bytes"]) for r in records
             if r.get("peak_mem_kind") == "cuda_max_allocated" and r.get("peak_mem_bytes")]
    return max(peaks) if peaks else None


@dataclass(frozen=True)
class Level:
    """One run's level for one benchmark: mean log sample and its within-run spread."""

    mean: float
    sd: float  # of the log samples (0 with one sample)
    n: int

    @classmethod
    def of(cls, samples: list[float], scale: float = 1.0) -> Level:
        logs = [math.log(x / scale) for x in samples]
        sd = statistics.stdev(logs) if len(logs) > 1 else 0.0
        return cls(statistics.fmean(logs), sd, len(logs))


# ------------------------------------------------------------ the noise model --

@dataclass
class Judgement:
    """One metric of one benchmark, judged."""

    metric: str  # time, throughput, memory, data_wait
    verdict: str
    change: float  # new / base - 1 (data_wait: the change in share, points)
    low: float | None = None  # the confidence interval of the change (same units)
    high: float | None = None
    p_value: float | None = None  # one-sided, in the direction of the change, before Holm
    noise: float | None = None  # tau: run-to-run noise used (fraction)
    noise_source: str = ""  # "history (m runs)", "floor", "within-run"
    mde: float | None = None  # the minimum detectable effect (fraction)
    method: str = ""  # calibrated / raw / ratio of maxima / non-overlap
    base: float | None = None  # baseline value shown (seconds, images/s, bytes, share)
    new: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateOptions:
    threshold: float = 0.05  # time and throughput, a fraction
    memory_threshold: float = 0.02
    data_wait_threshold: float = 0.05  # points of share
    confidence: float = 0.95  # one-sided, per benchmark; Holm across benchmarks
    calibration: str = "auto"  # auto, on, off
    sample: str = "auto"  # time samples: epoch (wall), step (typical step x steps), auto
    noise_floor: float | None = None  # overrides DEFAULT_NOISE when no history
    gate_on: tuple[str, ...] = DEFAULT_GATES

    def check(self) -> None:
        if not 0 < self.threshold < 10:
            raise CompareError(f"--threshold must be in (0, 10), got {self.threshold}")
        if not 0 < self.memory_threshold < 10:
            raise CompareError(f"--memory-threshold must be in (0, 10), got {self.memory_threshold}")
        if not 0 < self.data_wait_threshold < 1:
            raise CompareError(f"--data-wait-threshold must be in (0, 1), got "
                               f"{self.data_wait_threshold}")
        if not 0.5 < self.confidence < 1:
            raise CompareError(f"--confidence must be in (0.5, 1), got {self.confidence}")
        if self.sample not in ("auto", "epoch", "step"):
            raise CompareError(f"--sample {self.sample!r} is not one of: auto, epoch, step")
        if self.calibration not in ("auto", "on", "off"):
            raise CompareError(f"--calibration {self.calibration!r} is not one of: auto, on, off")
        if self.noise_floor is not None and not 0 < self.noise_floor < 1:
            raise CompareError(f"--noise-floor must be in (0, 1), got {self.noise_floor}")
        unknown = [g for g in self.gate_on if g not in GATES]
        if unknown or not self.gate_on:
            raise CompareError(f"--gate-on {','.join(self.gate_on)}: use a comma-separated list "
                               f"of {', '.join(GATES)}")


#: the weight, in runs, of the prior (the pooled spread of all benchmarks of the history)
#: in each benchmark's moderated noise estimate
PRIOR_RUNS = 4


def noise_model(candidate: Level, baseline: list[Level], method: str,
                floor: float | None = None, prior: float | None = None
                ) -> tuple[float, str, int | None]:
    """(tau, where it came from, degrees of freedom or None for the normal).

    With a history, a benchmark's own spread (m - 1 degrees of freedom) is moderated
    by ``prior``, the pooled spread of every benchmark of the same history, worth
    :data:`PRIOR_RUNS` runs — the empirical-Bayes variance of Smyth's moderated t
    (2004): a benchmark whose few runs happened to agree is not trusted to be quiet,
    and the t quantile has ``m - 1 + PRIOR_RUNS`` degrees of freedom, not ``m - 1``."""
    within = max(candidate.sd / math.sqrt(candidate.n),
                 *(b.sd / math.sqrt(b.n) for b in baseline)) if baseline else 0.0
    if len(baseline) >= MIN_HISTORY:
        spread = statistics.stdev(b.mean for b in baseline)
        df = len(baseline) - 1
        if prior is not None:
            spread = math.sqrt((PRIOR_RUNS * prior**2 + df * spread**2) / (PRIOR_RUNS + df))
            df += PRIOR_RUNS
        tau, source = spread, f"history ({len(baseline)} runs)"
    else:
        tau, source, df = floor if floor is not None else DEFAULT_NOISE[method], "floor", None
    if within > tau:
        tau, source = within, "within-run"
    if MIN_NOISE > tau:
        tau, source = MIN_NOISE, "minimum"
    return tau, source, df


def judge_levels(candidate: Level, baseline: list[Level], *, threshold: float, confidence: float,
                 method: str, floor: float | None, metric: str, sign: int = 1,
                 family: int = 1, prior: float | None = None) -> Judgement:
    """Judge ``candidate`` against the mean of ``baseline`` levels. ``sign`` is +1 when a
    larger value is worse (time), -1 when smaller is worse (throughput). ``family`` is the
    number of benchmarks judged together (for the detectable effect; Holm is applied later)."""
    tau, source, df = noise_model(candidate, baseline, method, floor, prior)
    m = len(baseline)
    base = statistics.fmean(b.mean for b in baseline)
    d = candidate.mean - base
    se = tau * math.sqrt(1 + 1 / m)
    c = _t(confidence, df)
    low, high = d - c * se, d + c * se
    band = math.log1p(threshold)
    worse = sign * d
    p = 1 - statistics.NormalDist().cdf(abs(d) / se) if df is None else _t_sf(abs(d) / se, df)
    if -band < low and high < band:
        verdict = UNCHANGED
    elif (low > 0 and high >= band) or (high < 0 and low <= -band):
        verdict = REGRESSED if worse > 0 else IMPROVED  # provisional: Holm may demote it
    else:
        verdict = INCONCLUSIVE
    c_family = _t(1 - (1 - confidence) / max(family, 1), df)
    mde = math.expm1((c_family + _z(POWER)) * se)
    return Judgement(metric=metric, verdict=verdict, change=math.expm1(d), low=math.expm1(low),
                     high=math.expm1(high), p_value=p, noise=math.expm1(tau), noise_source=source,
                     mde=mde, method=method)


def _t_sf(x: float, df: int) -> float:
    from scipy.stats import t

    return float(t.sf(x, df))


def holm(judgements: list[Judgement], alpha: float) -> None:
    """Demote regressed/improved verdicts whose p-value does not survive Holm's step-down
    correction over the family (in place)."""
    flagged = sorted((j for j in judgements if j.verdict in (REGRESSED, IMPROVED)),
                     key=lambda j: j.p_value)
    k = len(judgements)
    for rank, j in enumerate(flagged):
        if j.p_value > alpha / (k - rank):
            for rest in flagged[rank:]:
                rest.verdict = INCONCLUSIVE
            break


# ------------------------------------------------------------ comparing runs --

@dataclass
class Row:
    fullname: str
    group: str | None
    base_median: float  # seconds, the baseline runs' median epoch time
    new_median: float
    change: float  # time: new / base - 1 (calibrated when the method is)
    verdict: str  # the worst verdict over the gated metrics
    method: str
    base_runs: int
    new_rounds: int
    judgements: dict[str, Judgement] = field(default_factory=dict)
    explanation: str | None = None  # what moved, for regressed and improved benchmarks

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
        }


_SEVERITY = {REGRESSED: 3, INCONCLUSIVE: 2, IMPROVED: 1, UNCHANGED: 0, NOT_GATED: -1}


def _method(new: Bench, olds: list[Bench], calibration: str) -> str:
    have = calibration_s(new) is not None and all(calibration_s(b) is not None for b in olds)
    if calibration == "on" and not have:
        raise CompareError(f"--calibration on: {new.fullname} has no calibration in every run "
                           "(runs written before calibration, or by another harness); use "
                           "--calibration auto")
    return "calibrated" if have and calibration != "off" else "raw"


def _time_samples(new: Bench, olds: list[Bench], sample: str):
    """The sample function and its name: step times where every run recorded them (auto)."""
    have = all(step_times(b) for b in (new, *olds))
    if sample == "step" and not have:
        raise CompareError(f"--sample step: {new.fullname} has no step times in every run "
                           "(runs written before step timing); use --sample auto")
    if sample in ("step", "auto") and have:
        return step_times, "step"
    return epoch_times, "epoch"


def _judge_time(new: Bench, olds: list[Bench], opts: GateOptions, family: int,
                metric: str = "time", prior: float | None = None) -> Judgement:
    method = _method(new, olds, opts.calibration)
    if metric == "time":
        samples, kind = _time_samples(new, olds, opts.sample)
        method = f"{method}, {kind} times"
    else:
        samples = throughputs

    calibrated = method.startswith("calibrated")

    def level(b: Bench) -> Level:
        scale = calibration_s(b) if calibrated else 1.0
        values = samples(b)
        if metric == "throughput" and calibrated:
            return Level.of([v * scale for v in values])  # images per reference-workload time
        return Level.of(values, scale)

    j = judge_levels(level(new), [level(b) for b in olds], threshold=opts.threshold,
                     confidence=opts.confidence,
                     method="calibrated" if calibrated else "raw", floor=opts.noise_floor,
                     metric=metric, sign=1 if metric == "time" else -1, family=family,
                     prior=prior)
    j.method = method
    if calibrated:
        speed = math.log(calibration_s(new)) - statistics.fmean(
            math.log(calibration_s(b)) for b in olds)
        if abs(speed) > math.log1p(DISTURBED):
            j.verdict = INCONCLUSIVE
            j.noise_source = (f"a disturbed machine: the reference workload ran "
                              f"{math.exp(speed):.2g}x its baseline time")
    j.base = statistics.median(statistics.median(samples(b)) for b in olds)
    j.new = statistics.median(samples(new))
    return j


def _judge_memory(new: Bench, olds: list[Bench], opts: GateOptions) -> Judgement:
    after = peak_cuda_memory(new)
    before = [m for m in (peak_cuda_memory(b) for b in olds) if m is not None]
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
    after = wait_shares(new)
    before = [s for b in olds for s in wait_shares(b)]
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


def _pooled_spread(pairs: list, opts: GateOptions) -> float | None:
    """The median run-to-run spread of the benchmarks' time levels over the baseline
    history (the prior of each benchmark's moderated noise); None without a history."""
    spreads = []
    for _, new, olds in pairs:
        if len(olds) < MIN_HISTORY:
            continue
        method = _method(new, olds, opts.calibration)
        samples, _ = _time_samples(new, olds, opts.sample)
        levels = [Level.of(samples(b), calibration_s(b) if method == "calibrated" else 1.0).mean
                  for b in olds]
        spreads.append(statistics.stdev(levels))
    return statistics.median(spreads) if spreads else None


def compare(baseline: Run | list[Run], candidate: Run, options: GateOptions | None = None, *,
            allow_cross_machine: bool = False) -> Comparison:
    """Judge ``candidate`` against one earlier run or a history of them (the baseline
    level is their mean; with ``MIN_HISTORY`` or more, their spread is the noise)."""
    opts = options or GateOptions()
    opts.check()
    base_runs = baseline if isinstance(baseline, list) else [baseline]
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
    pairs = [(name, new, [r.benchmarks[name] for r in base_runs if name in r.benchmarks])
             for name, new in sorted(candidate.benchmarks.items())]
    pairs = [p for p in pairs if p[2]]
    family = len(pairs)
    prior = _pooled_spread(pairs, opts)
    rows = []
    for name, new, olds in pairs:
        judgements = {"time": _judge_time(new, olds, opts, family, prior=prior)}
        if "throughput" in opts.gate_on:
            judgements["throughput"] = _judge_time(new, olds, opts, family, metric="throughput",
                                                   prior=prior)
        if "memory" in opts.gate_on:
            judgements["memory"] = _judge_memory(new, olds, opts)
        if "data_wait" in opts.gate_on:
            judgements["data_wait"] = _judge_data_wait(new, olds, opts)
        t = judgements["time"]
        rows.append(Row(fullname=name, group=new.group, base_median=t.base, new_median=t.new,
                        change=t.change, verdict=UNCHANGED, method=t.method, base_runs=len(olds),
                        new_rounds=len(epoch_times(new)), judgements=judgements))
    alpha = 1 - opts.confidence
    for metric in ("time", "throughput"):
        holm([r.judgements[metric] for r in rows if metric in r.judgements], alpha)
    from fer.bench.explain import explain

    for r, (_, new, olds) in zip(rows, pairs):
        gated = [j.verdict for k, j in r.judgements.items() if k in opts.gate_on]
        r.verdict = max(gated or [UNCHANGED], key=_SEVERITY.__getitem__)
        if r.verdict == NOT_GATED:
            r.verdict = UNCHANGED
        real = r.time.low is not None and (r.time.low > 0 or r.time.high < 0)
        if r.verdict in (REGRESSED, IMPROVED) or real:  # a change its own interval calls real
            r.explanation = explain(new, olds)
    return Comparison(
        baseline=base_runs, candidate=candidate, rows=rows,
        added=sorted(set(candidate.benchmarks) - base_names),
        removed=sorted(base_names - set(candidate.benchmarks)),
        cross_machine=bool(foreign), options=opts)
