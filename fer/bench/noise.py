"""The noise model and the four verdicts: is a change larger than the noise that applies?

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
from dataclasses import asdict, dataclass, field

IMPROVED, UNCHANGED, REGRESSED, INCONCLUSIVE = "improved", "unchanged", "regressed", "inconclusive"
NOT_GATED = "n/a"
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE)

#: the history needed to learn a benchmark's run-to-run noise
MIN_HISTORY = 3
#: run-to-run noise assumed without enough history, per method, as (common, specific)
#: fractions on a log scale: what benchmarks/gate_power.py measured over sets of six
#: unchanged smoke runs on a 2-core shared CPU, pooled (root mean square) and rounded (step times,
#: calibrated: 1.4% / 6.3%, 7.3% / 7.5%, 1.9% / 7.3%; raw: 5.2% / 8.1%, 8.8% / 10.6%,
#: 5.7% / 12.4%; the README's gate section)
DEFAULT_NOISE = {"calibrated": (0.05, 0.07), "raw": (0.07, 0.105),
                 # the whole epoch over its typical step (a ratio the machine's speed cancels
                 # from): three unchanged smoke runs of the 8 optimizer benchmarks on the 2-core
                 # CPU split 1.7% / 5.2%, rounded up (docs/compare.md)
                 "excess": (0.02, 0.055)}
POOLS = ("run", "none")
#: no benchmark is ever judged quieter than this
MIN_NOISE = 0.005
#: power for the minimum detectable effect
POWER = 0.8


def _z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def t_quantile(p: float, df: int | None) -> float:
    """Student's t quantile (the normal one without degrees of freedom)."""
    if df is None:
        return _z(p)
    from scipy.stats import t  # lazy: scipy only when a history gives degrees of freedom

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
    detail: str = ""  # what moved, in words (the counters: which counter, which operators)

    def to_dict(self) -> dict:
        return asdict(self)


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


@dataclass(frozen=True)
class NoiseSplit:
    """The run-to-run spread of a table of levels, in its two parts."""

    common: float  # sd of a run's mean deviation over the benchmarks
    common_df: int
    specific: dict[str, float]  # per benchmark with enough runs: its residual sd
    pooled_specific: float | None  # the residuals of every benchmark pooled (two-way layout)


def split_noise(levels: dict[str, dict[int, float]], *, min_runs: int = 2) -> NoiseSplit:
    """Split the spread of benchmark levels (name -> run -> mean log time) into the part common
    to a run (every benchmark of it moved together: the machine's speed over the run) and the
    part specific to one benchmark (its residual once the run's common deviation is removed).
    The one estimator of the gate (:func:`_learn_noise`) and of ``benchmarks/gate_power.py``."""
    runs = sorted(set().union(*levels.values()))
    mu = {name: statistics.fmean(by_run.values()) for name, by_run in levels.items()}
    deviation = {j: statistics.fmean(by_run[j] - mu[name] for name, by_run in levels.items()
                                     if j in by_run) for j in runs}
    specific, residuals = {}, []
    for name, by_run in levels.items():
        if len(by_run) >= min_runs:
            shared = statistics.fmean(deviation[j] for j in by_run)
            resid = [x - mu[name] - (deviation[j] - shared) for j, x in by_run.items()]
            specific[name] = math.sqrt(sum(r * r for r in resid) / (len(resid) - 1))
            residuals += resid
    dof = (len(runs) - 1) * (len(specific) - 1)
    pooled = math.sqrt(sum(r * r for r in residuals) / dof) if dof > 0 else None
    return NoiseSplit(statistics.stdev(deviation.values()), len(runs) - 1, specific, pooled)


def _learn_noise(members: list[Member], method: str, floor: float | None,
                 common_floor: float | None) -> _Noise:
    """Common and specific run-to-run noise: from the history, else the floors."""
    default_common, default_specific = DEFAULT_NOISE[method]
    runs = sorted(set().union(*(m.baseline for m in members)))
    specific: dict[str, float] = {}
    specific_df: dict[str, int | None] = {}
    if len(runs) >= MIN_HISTORY:
        split = split_noise({m.name: {j: lv.mean for j, lv in m.baseline.items()} for m in members},
                            min_runs=MIN_HISTORY)
        common, common_df, own = split.common, split.common_df, split.specific
        source = f"history ({len(runs)} runs)"
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
    return 1 - statistics.NormalDist().cdf(x) if df is None else t_sf(x, df)


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
    c = t_quantile(1 - decide, shift_df)
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
        c_family = t_quantile(1 - decide / family, alone_df)
        common = dict(metric=metric, change=math.expm1(d[n]), method=method,
                      noise=math.expm1(math.sqrt(noise.common**2 + noise.specific[n] ** 2)),
                      noise_source=noise.source,
                      mde_alone=math.expm1((c_family + z_power) * alone_se))
        if n in together and pool == "run" and family > 1:
            j = Judgement(verdict=result.verdict, low=result.low, high=result.high,
                          p_value=shift_p, mde=shift_mde, estimate=result.change,
                          judged="with the run", **common)
        else:
            c_alone = t_quantile(1 - decide, alone_df)
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


def t_sf(x: float, df: int) -> float:
    """Student's t survival function: a one-sided p-value."""
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
