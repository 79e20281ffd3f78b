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
* **run-to-run noise has two parts.** A *common* part moves every benchmark of
  a run together (the machine's speed over the whole run; calibration removes
  most of it) and a *specific* part moves each benchmark alone (the machine's
  speed during that benchmark's few seconds). Measured on a shared 2-core CPU
  (``benchmarks/gate_power.py``, two sets of six unchanged runs, step times):
  calibrated, common 1.4% / 7.3% and specific 6.3% / 7.5% (the second set's common
  part is one run whose epochs ran 15% faster than its reference workload said);
  raw, 5.2% / 8.8% and 8.1% / 10.6%. With at least ``MIN_HISTORY`` baseline runs both are
  learned from the history (a run's common part is its mean deviation over
  the benchmarks; a benchmark's specific spread is moderated by the pooled
  spread of all benchmarks, worth :data:`PRIOR_RUNS` runs, as in Smyth's
  moderated t, 2004; Student's t with Satterthwaite's degrees of freedom);
  otherwise stated floors (:data:`DEFAULT_NOISE`). The specific part is never
  below the within-run spread of the rounds (``sd / sqrt(n)``) nor below
  :data:`MIN_NOISE`;
* **benchmarks that moved together are judged together** (``--pool run``, the
  default). A change to the engine, the data path or the machine moves most
  benchmarks of a run alike, and their mean change (weighted by their
  precision) averages the specific noise away: over 16 benchmarks its noise is
  the common part plus a quarter of the specific. A benchmark whose change
  differs from the run's (its deviation from the mean of the others is
  significant, two-sided, Holm over the run; removed one at a time) is judged
  *apart*, on its own change and noise, with Holm's correction over the run.
  ``--pool none`` judges every benchmark apart.

Four verdicts, from the confidence interval ``d ± c·se`` against the threshold
band ``±log(1 + threshold)``:

* **unchanged**: the whole interval lies inside the band (shown to be within
  ±threshold);
* **regressed** / **improved**: the interval lies above / below zero — the
  change is real — and reaches past the band's edge (for benchmarks judged
  apart, the one-sided p-value must also survive Holm's correction over every
  benchmark of the comparison);
* **inconclusive**: anything else — the noise is too large to tell at this
  threshold. The minimum detectable effect, ``(c + z_0.8)·se`` (80% power), is
  printed beside every benchmark, and, for a change of that benchmark alone,
  beside the run's.

Beyond time (``--gate-on``): peak CUDA memory is deterministic and gated by a
tight threshold on the ratio of maxima; throughput (images/s) uses the same
noise model; the data-wait share gates on a rise of more than
``data_wait_threshold`` points with the rounds of the two runs not overlapping.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from fer.bench.explain import explain
from fer.bench.storage import (
    CALIBRATIONS,
    SAMPLE_KINDS,
    Bench,
    CompareError,
    Run,
    is_calibrated,
    machine_key,
    sample_kind,
)

IMPROVED, UNCHANGED, REGRESSED, INCONCLUSIVE = "improved", "unchanged", "regressed", "inconclusive"
NOT_GATED = "n/a"
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE)

DEFAULT_GATES = ("time", "memory")
#: the history needed to learn a benchmark's run-to-run noise
MIN_HISTORY = 3
#: run-to-run noise assumed without enough history, per method, as (common, specific)
#: fractions on a log scale: what benchmarks/gate_power.py measured over sets of six
#: unchanged smoke runs on a 2-core shared CPU, pooled (root mean square) and rounded (step times,
#: calibrated: 1.4% / 6.3%, 7.3% / 7.5%, 1.9% / 7.3%; raw: 5.2% / 8.1%, 8.8% / 10.6%,
#: 5.7% / 12.4%; the README's gate section)
DEFAULT_NOISE = {"calibrated": (0.05, 0.07), "raw": (0.07, 0.105)}
POOLS = ("run", "none")
#: no benchmark is ever judged quieter than this
MIN_NOISE = 0.005
#: calibrated verdicts need a machine of about the baseline's speed: when the reference
#: workload ran more than this much slower or faster than in the baseline runs, the
#: machine was disturbed (a busy neighbour, throttling) and the time verdict is inconclusive
DISTURBED = 0.5
#: power for the minimum detectable effect
POWER = 0.8


def _z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def _t(p: float, df: int | None) -> float:
    if df is None:
        return _z(p)
    # lazy: scipy only when a history gives degrees of freedom
    # lazy: scipy only when a history gives degrees of freedom
    # lazy: scipy only when a history gives degrees of freedom
    from scipy.stats import t  # only when a history gives degrees of freedom

    return float(t.ppf(p, df))


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
    mde: float | None = None  # the minimum detectable effect as judged (fraction)
    method: str = ""  # calibrated / raw / ratio of maxima / non-overlap
    base: float | None = None  # baseline value shown (seconds, images/s, bytes, share)
    new: float | None = None
    estimate: float | None = None  # the change judged: the run's shift when judged together
    judged: str = ""  # "with the run" (pooled), "apart" (alone), "" (not a noise-model metric)
    mde_alone: float | None = None  # what a change of this benchmark alone must exceed

    def to_dict(self) -> dict:
        return asdict(self)


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
        if self.pool not in POOLS:
            raise CompareError(f"GateOptions.pool {self.pool!r} is not one of: {', '.join(POOLS)}")
        gates = ("time", "throughput", *METRIC_JUDGES)  # read now: a metric may be added later
        unknown = [g for g in self.gate_on if g not in gates]
        if unknown or not self.gate_on:
            raise CompareError(f"--gate-on {','.join(self.gate_on)}: use a comma-separated list "
                               f"of {', '.join(gates)}")


#: the weight, in runs, of the prior (the pooled spread of all benchmarks of the history)
#: in each benchmark's moderated specific noise
PRIOR_RUNS = 4


@dataclass(frozen=True)
class Member:
    """One benchmark of a family judged together: its candidate level and its baseline
    levels keyed by baseline run (so that a run's common deviation can be learned)."""

    name: str
    candidate: Level
    baseline: dict[int, Level]


@dataclass
class Shift:
    """The run as a whole: the mean change of the benchmarks that moved together."""

    metric: str
    method: str
    verdict: str
    change: float
    low: float
    high: float
    p_value: float
    noise: float  # the common run-to-run noise (fraction)
    noise_source: str
    mde: float
    together: list[str] = field(default_factory=list)
    apart: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _satterthwaite(parts: list[tuple[float, int | None]]) -> int | None:
    """Degrees of freedom of a sum of variance estimates (None: known, the normal)."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / df for v, df in parts if df is not None and v > 0)
    if total <= 0 or denominator <= 0:
        return None
    return max(1, int(total * total / denominator))


@dataclass
class _Noise:
    common: float  # per-run sd of the common part (log scale)
    common_df: int | None
    specific: dict[str, float]  # per benchmark, per-run sd of the specific part
    specific_df: dict[str, int | None]
    source: str


def _learn_noise(members: list[Member], method: str, floor: float | None,
                 common_floor: float | None) -> _Noise:
    """Common and specific run-to-run noise: from the history, else the floors."""
    default_common, default_specific = DEFAULT_NOISE[method]
    runs = sorted(set().union(*(m.baseline for m in members)))
    specific: dict[str, float] = {}
    specific_df: dict[str, int | None] = {}
    if len(runs) >= MIN_HISTORY:
        mu = {m.name: statistics.fmean(lv.mean for lv in m.baseline.values()) for m in members}
        deviation = {j: statistics.fmean(m.baseline[j].mean - mu[m.name] for m in members
                                         if j in m.baseline) for j in runs}
        common, common_df = statistics.stdev(deviation.values()), len(runs) - 1
        source = f"history ({len(runs)} runs)"
        own = {}
        for m in members:
            if len(m.baseline) >= MIN_HISTORY:
                shared = statistics.fmean(deviation[j] for j in m.baseline)
                resid = [lv.mean - mu[m.name] - (deviation[j] - shared)
                         for j, lv in m.baseline.items()]
                own[m.name] = math.sqrt(sum(r * r for r in resid) / (len(resid) - 1))
        prior = statistics.median(own.values()) if len(own) > 1 else None
        for m in members:
            if m.name not in own:
                specific[m.name] = floor if floor is not None else default_specific
                specific_df[m.name] = None
                continue
            df = len(m.baseline) - 1
            sd = own[m.name]
            if prior is not None:
                sd = math.sqrt((PRIOR_RUNS * prior**2 + df * sd**2) / (PRIOR_RUNS + df))
                df += PRIOR_RUNS
            specific[m.name], specific_df[m.name] = sd, df
    else:
        common = common_floor if common_floor is not None else default_common
        common_df, source = None, "floor"
        for m in members:
            specific[m.name] = floor if floor is not None else default_specific
            specific_df[m.name] = None
    for m in members:  # never quieter than the rounds themselves, nor than MIN_NOISE
        within = max(m.candidate.sd / math.sqrt(m.candidate.n),
                     *(lv.sd / math.sqrt(lv.n) for lv in m.baseline.values()))
        specific[m.name] = max(specific[m.name], within, MIN_NOISE)
    return _Noise(common, common_df, specific, specific_df, source)


def _verdict(d: float, low: float, high: float, band: float, sign: int) -> str:
    if -band < low and high < band:
        return UNCHANGED
    if (low > 0 and high >= band) or (high < 0 and low <= -band):
        return REGRESSED if sign * d > 0 else IMPROVED
    return INCONCLUSIVE


def _p_one_sided(d: float, se: float, df: int | None) -> float:
    if se <= 0:
        return 0.0 if d else 1.0
    x = abs(d) / se
    return 1 - statistics.NormalDist().cdf(x) if df is None else _t_sf(x, df)


def judge_family(members: list[Member], *, threshold: float, confidence: float, method: str,
                 metric: str, sign: int = 1, floor: float | None = None,
                 common_floor: float | None = None, pool: str = "run"
                 ) -> tuple[list[Judgement], Shift]:
    """Judge the benchmarks of one run together (see the module's docstring): those that
    moved with the run by the run's shift, those that moved apart alone (Holm over all)."""
    noise = _learn_noise(members, method, floor, common_floor)
    runs = len(set().union(*(m.baseline for m in members)))
    common_var = noise.common**2 * (1 + 1 / runs)
    d = {m.name: m.candidate.mean - statistics.fmean(lv.mean for lv in m.baseline.values())
         for m in members}
    v = {m.name: noise.specific[m.name] ** 2 * (1 + 1 / len(m.baseline)) for m in members}
    family = len(members)
    # the deviation test only sorts benchmarks (at the full alpha); the gate's decisions are
    # two tests, the run's shift and the benchmarks apart (Holm): each gets half the alpha,
    # so that the gate as a whole keeps its confidence (Bonferroni over the two)
    alpha = 1 - confidence
    decide = alpha / 2 if pool == "run" and family > 1 else alpha
    band = math.log1p(threshold)
    z_power = _z(POWER)

    # who moved apart from the run: the most significant deviation first, one at a time
    apart: list[str] = []
    if pool == "run":
        while family - len(apart) >= 2:
            together = [m.name for m in members if m.name not in apart]
            weight = sum(1 / v[n] for n in together)
            mean = sum(d[n] / v[n] for n in together) / weight
            tests = []
            for n in together:
                var = max(v[n] - 1 / weight, 1e-18)
                df = _satterthwaite([(v[n], noise.specific_df[n])])
                tests.append((2 * _p_one_sided(d[n] - mean, math.sqrt(var), df), n))
            p, worst = min(tests)
            if p > alpha / len(together):  # Holm's first step over those still together
                break
            apart.append(worst)
    together = [m.name for m in members if m.name not in apart]

    weight = sum(1 / v[n] for n in together)
    shift = sum(d[n] / v[n] for n in together) / weight
    shift_var = common_var + 1 / weight
    shift_df = _satterthwaite([(common_var, noise.common_df),
                               (1 / weight, _satterthwaite(
                                   [(v[n], noise.specific_df[n]) for n in together]))])
    c = _t(1 - decide, shift_df)
    se = math.sqrt(shift_var)
    low, high = shift - c * se, shift + c * se
    shift_p = _p_one_sided(shift, se, shift_df)
    shift_mde = math.expm1((c + z_power) * se)
    result = Shift(metric=metric, method=method, verdict=_verdict(shift, low, high, band, sign),
                   change=math.expm1(shift), low=math.expm1(low), high=math.expm1(high),
                   p_value=shift_p, noise=math.expm1(noise.common), noise_source=noise.source,
                   mde=shift_mde, together=together, apart=list(apart))
    if pool == "none":
        result.verdict = NOT_GATED  # every benchmark is judged alone; the shift is shown only

    judgements = []
    alone_family = []
    for m in members:
        n = m.name
        alone_var = common_var + v[n]
        alone_df = _satterthwaite([(common_var, noise.common_df), (v[n], noise.specific_df[n])])
        alone_se = math.sqrt(alone_var)
        c_family = _t(1 - decide / family, alone_df)
        common = dict(metric=metric, change=math.expm1(d[n]), method=method,
                      noise=math.expm1(math.sqrt(noise.common**2 + noise.specific[n] ** 2)),
                      noise_source=noise.source,
                      mde_alone=math.expm1((c_family + z_power) * alone_se))
        if n in together and pool == "run" and family > 1:
            j = Judgement(verdict=result.verdict, low=result.low, high=result.high,
                          p_value=shift_p, mde=shift_mde, estimate=result.change,
                          judged="with the run", **common)
        else:
            c_alone = _t(1 - decide, alone_df)
            lo, hi = d[n] - c_alone * alone_se, d[n] + c_alone * alone_se
            j = Judgement(verdict=_verdict(d[n], lo, hi, band, sign), low=math.expm1(lo),
                          high=math.expm1(hi), p_value=_p_one_sided(d[n], alone_se, alone_df),
                          mde=common["mde_alone"], estimate=math.expm1(d[n]),
                          judged="apart" if family > 1 else "alone", **common)
            alone_family.append(j)
        judgements.append(j)
    holm(alone_family, decide, family)
    return judgements, result


def judge_levels(candidate: Level, baseline: list[Level], *, threshold: float, confidence: float,
                 method: str, floor: float | None, metric: str, sign: int = 1,
                 common_floor: float | None = None) -> Judgement:
    """Judge one benchmark alone against the mean of ``baseline`` levels (one per run)."""
    member = Member("benchmark", candidate, dict(enumerate(baseline)))
    judgements, _ = judge_family([member], threshold=threshold, confidence=confidence,
                                 method=method, metric=metric, sign=sign, floor=floor,
                                 common_floor=common_floor)
    return judgements[0]


def _t_sf(x: float, df: int) -> float:  # lazy: scipy only when a history gives degrees of freedom
    from scipy.stats import t  # lazy: scipy only when a history gives degrees of freedom

    return float(t.sf(x, df))


def holm(judgements: list[Judgement], alpha: float, family: int | None = None) -> None:
    """Demote regressed/improved verdicts whose p-value does not survive Holm's step-down
    correction over a family of ``family`` tests (default: the judgements given), in place."""
    flagged = sorted((j for j in judgements if j.verdict in (REGRESSED, IMPROVED)),
                     key=lambda j: j.p_value)
    k = max(family or len(judgements), len(judgements))
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
    shifts: list[Shift] = field(default_factory=list)  # the run as a whole, per metric

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
        }


_SEVERITY = {REGRESSED: 3, INCONCLUSIVE: 2, IMPROVED: 1, UNCHANGED: 0, NOT_GATED: -1}


def _judge_metric(pairs: list, opts: GateOptions, metric: str
                  ) -> tuple[dict[str, Judgement], list[Shift]]:
    """Judge time (or throughput) of every benchmark: one family per method (normally one),
    benchmarks on a disturbed machine alone and inconclusive."""
    families: dict[str, list[Member]] = {}
    benches: dict[str, tuple] = {}
    disturbed: dict[str, float] = {}
    for name, new, runs in pairs:
        olds = [b for _, b in runs]
        calibrated = is_calibrated([new, *olds], opts.calibration)
        method = "calibrated" if calibrated else "raw"
        if metric == "time":
            kind = sample_kind([new, *olds], opts.sample)
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
        benches[name] = (new, olds, samples, label)
        if calibrated:
            speed = math.log(new.calibration_s) - statistics.fmean(
                math.log(b.calibration_s) for b in olds)
            if abs(speed) > math.log1p(DISTURBED):
                disturbed[name] = math.exp(speed)
                families.setdefault(f"{label} (disturbed {name})", []).append(member)
                continue
        families.setdefault(label, []).append(member)

    judgements: dict[str, Judgement] = {}
    shifts: list[Shift] = []
    for label, members in families.items():
        method = "calibrated" if label.startswith("calibrated") else "raw"
        found, shift = judge_family(
            members, threshold=opts.threshold, confidence=opts.confidence, method=method,
            metric=metric, sign=1 if metric == "time" else -1, floor=opts.noise_floor,
            common_floor=opts.common_noise_floor, pool=opts.pool)
        for m, j in zip(members, found):
            new, olds, samples, kind = benches[m.name]
            j.method = kind
            j.base = statistics.median(statistics.median(samples(b)) for b in olds)
            j.new = statistics.median(samples(new))
            if m.name in disturbed:
                j.verdict = INCONCLUSIVE
                j.noise_source = (f"a disturbed machine: the reference workload ran "
                                  f"{disturbed[m.name]:.2g}x its baseline time")
            judgements[m.name] = j
        if not any(m.name in disturbed for m in members):
            shift.method = label
            shifts.append(shift)
    return judgements, shifts


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
}
#: what --gate-on accepts
GATES = ("time", "throughput", *METRIC_JUDGES)


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
    pairs = [(name, new, [(i, r.benchmarks[name]) for i, r in enumerate(base_runs)
                          if name in r.benchmarks])
             for name, new in sorted(candidate.benchmarks.items())]
    pairs = [p for p in pairs if p[2]]
    by_metric, shifts = {}, []
    for metric in ("time", "throughput"):
        if metric == "time" or metric in opts.gate_on:
            by_metric[metric], found = _judge_metric(pairs, opts, metric)
            shifts += found
    rows = []
    for name, new, runs in pairs:
        judgements = {metric: judged[name] for metric, judged in by_metric.items()}
        olds = [b for _, b in runs]
        for metric in opts.gate_on:
            if metric in METRIC_JUDGES:
                judgements[metric] = METRIC_JUDGES[metric](new, olds, opts)
        t = judgements["time"]
        rows.append(Row(fullname=name, group=new.group, base_median=t.base, new_median=t.new,
                        change=t.change, verdict=UNCHANGED, method=t.method, base_runs=len(olds),
                        new_rounds=len(new.epoch_times()), judgements=judgements))
    for r, (_, new, runs) in zip(rows, pairs):
        olds = [b for _, b in runs]
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
        cross_machine=bool(foreign), options=opts, shifts=shifts)
