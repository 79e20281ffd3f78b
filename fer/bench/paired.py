"""Paired statistics of ``fer ab``: two sides measured in alternating epochs.

Each *pair* is one epoch of side A and one of side B of the same benchmark point, run one
right after the other (in the order AB, BA, BA, AB, ...: a linear drift adds as much to A as
to B over every four epochs). The pair's sample is the log of B's time over A's, so a change
of the machine's speed that lasts longer than two epochs cancels within the pair, and the
pairs of one benchmark are about independent: a one-sample t interval of their mean is the
benchmark's change.

Three samples are judged per benchmark, as ``fer compare`` does: the typical step (the epoch's
25th-percentile step time x its steps: quiet, blind to a stall in some steps or to work after
the step loop), the whole epoch (the whole ``train_epoch`` call: sees everything) and the
excess (the whole epoch over the typical step x steps: what the typical step does not explain,
a stall or a tail; the machine's speed of the epoch cancels out of it). Each answers:

* ``regressed`` / ``improved`` (Pinpoint's DIFFERENT): the interval excludes zero and the
  change is at least ``threshold / 3``;
* ``unchanged`` (SAME): the interval at the unsplit alpha lies within ``+-threshold`` (two
  one-sided tests: a wrong SAME misses a change, it never raises an alarm);
* ``unknown``: neither yet: more pairs would tell (the smallest change the pairs so far
  could have seen, the MDE, says how far they are).

The confidence holds for the run as a whole: one-sided ``alpha`` is split over the
benchmarks and the three samples (weighted by :data:`SHARES`) by a weighted
Benjamini-Hochberg step-up (:func:`discoveries`: when nothing changed, the chance of any false
flag is at most ``alpha``, as with Bonferroni; when the run changed, at most ``alpha`` of the
flags are expected false, and a change every benchmark shares is flagged on most of them), and
by Bonferroni over the :data:`LOOKS` looks of the adaptive loop (a benchmark is judged at the
pair counts of :func:`looks`; while pairs come in it stops on the Bonferroni bound alone). A
benchmark's few pairs borrow the run's pooled pair variance (:func:`prior_of`, worth at most
:data:`PRIOR_DF` degrees of freedom), so that three pairs can already decide.

Each benchmark is measured by ``processes`` pairs of worker processes (pair ``i`` by process
pair ``i % processes``): two processes of the same code differ in speed by a little, an offset
more pairs of the *same* processes cannot average away; it is a floor of a benchmark's
standard error, ``process noise / sqrt(processes)``. The process noise is
:data:`PROCESS_NOISE` moderated by what the run's own process pairs show
(:func:`process_noise_of`). The run as a whole is the mean of the benchmarks' changes, its
interval from their spread, on each sample (the alpha split as a benchmark's). No torch here.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from fer.bench.noise import t_quantile, t_sf
from fer.bench.storage import STEP_QUANTILE

REGRESSED, IMPROVED, UNCHANGED, UNKNOWN, INCONCLUSIVE = (
    "regressed", "improved", "unchanged", "unknown", "inconclusive")
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, UNKNOWN, INCONCLUSIVE)
#: how many times a benchmark is judged at most while pairs come in (the alpha is split so)
LOOKS = 5
#: the most degrees of freedom the run's pooled pair variance lends one benchmark
PRIOR_DF = 12
#: the sd of the speed difference of two worker processes of the same code, as a log ratio:
#: the floor of one process pair's standard error however many pairs it has (measured on a
#: 2-core CPU: 56 A/A benchmark changes beyond their pairs' spread, docs/ab.md); the prior of
#: :func:`process_noise_of`, worth :data:`PRIOR_DF` degrees of freedom
PROCESS_NOISE = 0.016
#: process pairs per benchmark by default (the floor above falls with their square root)
PROCESSES = 2
#: the samples judged and their shares of the alpha (as fer compare's): the quiet typical step
#: most; the whole epoch and the excess (what the typical step misses) a tenth each
SAMPLES = ("step", "epoch", "excess")
SHARES = {"step": 0.8, "epoch": 0.1, "excess": 0.1}
#: the fewest pairs judged
MIN_PAIRS = 3
#: a pair whose change is this many robust spreads (MAD) from the median pair is an outlier
OUTLIER_MADS = 6.0


def looks(min_pairs: int = MIN_PAIRS) -> list[int]:
    """The pair counts at which a benchmark is judged: ``min_pairs``, then each time the pairs
    grew by half (:data:`LOOKS` of them; the last is the most pairs a benchmark gets)."""
    out = [min_pairs]
    while len(out) < LOOKS:
        out.append(max(out[-1] + 1, math.ceil(out[-1] * 1.5)))
    return out


def is_look(pairs: int, min_pairs: int = MIN_PAIRS) -> bool:
    return pairs in looks(min_pairs)


def _expm1(x: float) -> float:
    """exp(x) - 1, infinite where it would overflow (an interval of one or two pairs)."""
    return math.inf if x > 700 else math.expm1(x)


@dataclass
class Paired:
    """One sample of one benchmark over its pairs, judged."""

    sample: str  # "step", "epoch" or "excess"
    pairs: int
    change: float  # exp(mean log ratio) - 1
    low: float
    high: float
    p_value: float  # one-sided, in the direction of the change, before the split
    noise: float  # the sd of one pair's log ratio
    mde: float  # the smallest change these pairs could flag
    verdict: str
    dropped: int = 0  # pairs left out as outliers

    def to_dict(self) -> dict:
        return asdict(self)


def _robust(logs: list[float]) -> tuple[list[float], int]:
    """``logs`` without the pairs far outside the rest (a burst of the machine that hit one
    side's epoch: more than :data:`OUTLIER_MADS` robust spreads from the median)."""
    if len(logs) < 5:
        return logs, 0
    mid = statistics.median(logs)
    mad = statistics.median(abs(x - mid) for x in logs) * 1.4826
    if mad <= 0:
        return logs, 0
    kept = [x for x in logs if abs(x - mid) <= OUTLIER_MADS * mad]
    return kept, len(logs) - len(kept)


Prior = tuple[float, float]  # (variance of one pair's log ratio, its degrees of freedom)


def prior_of(samples: list[list[float]]) -> Prior | None:
    """The pooled variance of one pair's log ratio over several benchmarks (each benchmark's
    pairs about their own mean), and its degrees of freedom capped at :data:`PRIOR_DF`: what
    one benchmark's few pairs borrow (as ``fer compare`` moderates its noise)."""
    found = [(statistics.variance(x), len(x) - 1) for x in (_robust(s)[0] for s in samples)
             if len(x) >= 2]
    df = sum(d for _, d in found)
    if not found or df == 0:
        return None
    return sum(v * d for v, d in found) / df, float(min(df, PRIOR_DF))


def _verdict(mean: float, low: float, high: float, threshold: float,
             same: tuple[float, float] | None = None) -> str:
    """DIFFERENT, SAME or UNKNOWN from a log change and its interval (``same``: the interval
    the SAME answer is read from, if another), symmetric in the sides (a change of +x and one
    of 1/(1+x) - 1 are judged alike: the bounds are in log terms)."""
    real = abs(mean) >= math.log1p(threshold / 3)
    if low > 0 and real:
        return REGRESSED
    if high < 0 and real:
        return IMPROVED
    low, high = same or (low, high)
    if -math.log1p(threshold) < low and high < math.log1p(threshold):
        return UNCHANGED
    return UNKNOWN


def judge(logs: list[float], *, sample: str, threshold: float, alpha: float,
          prior: Prior | None = None, process_noise: float = 0.0, processes: int = 1,
          same_alpha: float | None = None) -> Paired:
    """Judge one sample's pair log ratios at one-sided ``alpha`` (already split); with a
    ``prior``, the variance is moderated towards the run's pooled one (more degrees of
    freedom: few pairs can decide); ``processes`` pairs of processes measured the pairs, each
    with its own offset of sd ``process_noise``."""
    kept, dropped = _robust(logs)
    n = len(kept)
    if n < 2:
        return Paired(sample, n, _expm1(kept[0]) if kept else 0.0, -math.inf, math.inf, 1.0,
                      math.nan, math.inf, UNKNOWN, dropped)
    mean = statistics.fmean(kept)
    var, df = statistics.variance(kept), n - 1
    if prior is not None:
        var = (prior[0] * prior[1] + var * df) / (prior[1] + df)
        df = prior[1] + df
    sd = math.sqrt(var)
    # a benchmark's pairs share a few pairs of processes: their own speeds differ by a little
    # (measured in A/A runs, PROCESS_NOISE), which more pairs of the same processes cannot
    # average away; more process pairs can
    se = max(math.sqrt(sd * sd / n + process_noise ** 2 / max(processes, 1)), 1e-12)
    q = t_quantile(1 - alpha, df)
    low, high = mean - q * se, mean + q * se
    p = t_sf(abs(mean) / se, df)
    # the smallest change flagged at this alpha with 80% power (one-sided)
    mde = _expm1((q + t_quantile(0.8, df)) * se)
    same = None
    if same_alpha is not None:  # SAME is two one-sided tests at the unsplit alpha (a wrong
        q_same = t_quantile(1 - same_alpha, df)  # SAME misses a change; it never raises an alarm)
        same = (mean - q_same * se, mean + q_same * se)
    verdict = _verdict(mean, low, high, threshold, same)
    return Paired(sample, n, _expm1(mean), _expm1(low), _expm1(high), p, sd, mde,
                  verdict, dropped)


@dataclass
class Benchmark:
    """One benchmark point of an A/B run: its pairs, and the verdict they reached."""

    name: str
    pairs: list[dict] = field(default_factory=list)  # {"a": record, "b": record, "order": "AB"}
    skipped: str | None = None
    disturbed_pairs: int = 0  # pairs left out: another process used the machine during them
    step: Paired | None = None
    epoch: Paired | None = None
    excess: Paired | None = None
    verdict: str = UNKNOWN
    judged_by: str = ""  # which sample decided: "step", "epoch", "excess" (or "counters")
    counters: dict | None = None  # fer.bench.counts' judgement of the two sides' counters
    why: str | None = None
    seconds: dict = field(default_factory=dict)  # "pairs": its pairs; "whole": start to end
    gpus: dict = field(default_factory=dict)  # side -> the UUIDs of the GPUs it saw (NVML)

    def logs(self, sample: str, proc: int | None = None) -> list[float]:
        """The pairs' log ratios of ``sample`` (of process pair ``proc`` alone, if given)."""
        times = [(sample_seconds(p["a"], sample), sample_seconds(p["b"], sample))
                 for p in self.pairs if proc is None or p.get("proc", 0) == proc]
        return [math.log(b / a) for a, b in times if a and b]

    @property
    def process_ids(self) -> list[int]:
        """The process pairs that measured its pairs."""
        return sorted({p.get("proc", 0) for p in self.pairs})

    @property
    def processes(self) -> int:
        """How many pairs of worker processes measured its pairs."""
        return len(self.process_ids) or 1

    @property
    def busy(self) -> bool:
        """Other processes used the machine during more of its pairs than not: inconclusive."""
        return self.disturbed_pairs > len(self.pairs)

    def to_dict(self) -> dict:
        out = asdict(self)
        for sample in SAMPLES:
            judged = getattr(self, sample)
            out[sample] = judged.to_dict() if judged else None
        return out

    @property
    def decided(self) -> bool:
        return self.verdict in (REGRESSED, IMPROVED, UNCHANGED)

    @property
    def shown(self) -> Paired | None:
        """The judgement the row shows: the sample that decided."""
        return getattr(self, self.judged_by) if self.judged_by in SAMPLES else self.step

    def judged(self) -> list[tuple[str, Paired]]:
        """Its samples judged so far, with their names."""
        return [(s, getattr(self, s)) for s in SAMPLES if getattr(self, s) is not None]


def sample_seconds(record: dict, sample: str) -> float | None:
    """One epoch's time of ``sample``: the whole ``train_epoch`` call (``call_s``; the engine's
    wall time where the call was not timed), the typical step (storage.STEP_QUANTILE, the
    suite's step sample) x the steps, or the excess: the first over the second (a ratio, not
    seconds: the log of B's over A's is the change of what the typical step does not explain)."""
    whole = record.get("call_s") or record.get("wall_s")
    if sample == "epoch":
        return whole
    typical, steps = (record.get("step_s") or {}).get(STEP_QUANTILE), record.get("steps")
    step = typical * steps if typical and steps else None
    if sample == "excess":
        return whole / step if whole and step else None
    return step


def judge_benchmark(b: Benchmark, *, threshold: float, alpha: float, benchmarks: int,
                    priors: dict[str, Prior | None] | None = None,
                    process: dict[str, float] | None = None, discovered: int = 1) -> None:
    """Judge ``b`` on each of :data:`SAMPLES`, the run's alpha split over ``benchmarks``, the looks
    and the samples (``priors``: the run's pooled pair variance per sample; ``process``: the
    process noise per sample, :data:`PROCESS_NOISE` where not given; ``discovered``: the
    Benjamini-Hochberg step the run reached, :func:`discoveries`: 1 is Bonferroni); set its
    verdict: the typical step's, unless only the whole epoch found a change, or neither did
    and the excess did (a stall or a tail the typical step cannot see, which the whole epoch's
    noise hid) where :func:`excess_counts`."""
    per = alpha / max(benchmarks, 1) / LOOKS * max(discovered, 1)
    priors, process = priors or {}, process or {}
    for sample in SAMPLES:
        setattr(b, sample, judge(b.logs(sample), sample=sample, threshold=threshold,
                                 alpha=per * SHARES[sample], prior=priors.get(sample),
                                 process_noise=process.get(sample, PROCESS_NOISE),
                                 processes=b.processes, same_alpha=alpha))
    moved = (REGRESSED, IMPROVED)
    if b.step.pairs == 0:  # no step times (an older side): the whole epoch alone
        b.verdict, b.judged_by = b.epoch.verdict, "epoch"
    elif b.step.verdict not in moved and b.epoch.verdict in moved:
        b.verdict, b.judged_by = b.epoch.verdict, "epoch"
    elif b.step.verdict not in moved and excess_counts(b.excess, b.epoch, b.step):
        b.verdict, b.judged_by = b.excess.verdict, "excess"
    elif b.step.verdict == UNCHANGED and b.epoch.verdict == UNKNOWN:
        # the typical step is the same, the whole epoch not yet known: more pairs would tell
        b.verdict, b.judged_by = UNKNOWN, "epoch"
    else:
        b.verdict, b.judged_by = b.step.verdict, "step"


def excess_counts(excess, epoch, step) -> bool:
    """Whether a DIFFERENT excess speaks of the training (each a :class:`Paired` or a
    :class:`RunShift`): only where the whole epoch moved its way (a change of the same sign, not
    shown the same) and the typical step did not move the other way. A faster step under the
    same per-epoch work (the loader's start, the work after the loop) raises the excess
    without slowing anything."""
    if excess is None or excess.verdict not in (REGRESSED, IMPROVED) or epoch is None:
        return False
    if epoch.verdict == UNCHANGED or (epoch.change > 0) != (excess.change > 0):
        return False
    opposite = IMPROVED if excess.verdict == REGRESSED else REGRESSED
    return step is None or step.verdict != opposite


def judge_all(benches: list[Benchmark], *, threshold: float, alpha: float, benchmarks: int,
              priors: dict[str, Prior | None] | None = None,
              process: dict[str, float] | None = None) -> int:
    """The final verdicts of a run's ``benches`` (those with pairs; a benchmark whose
    ``disturbed_pairs`` outnumber its pairs is left out of the step-up: it will be
    inconclusive): each judged at the Benjamini-Hochberg step the run reached
    (:func:`discoveries`), which is returned."""
    def judge_at(step: int) -> None:
        for b in benches:
            judge_benchmark(b, threshold=threshold, alpha=alpha, benchmarks=benchmarks,
                            priors=priors, process=process, discovered=step)

    judge_at(1)
    found = discoveries(benches, alpha=alpha, benchmarks=benchmarks)
    if found > 1:
        judge_at(found)
    return found


def discoveries(benches: list[Benchmark], *, alpha: float, benchmarks: int) -> int:
    """The weighted Benjamini-Hochberg step-up over every judged sample of ``benches`` (each
    judged at step 1, Bonferroni): the largest ``k`` such that ``k`` samples have a p-value
    within ``k`` times their own Bonferroni alpha. Judging every sample again at ``k`` times
    its alpha flags exactly those ``k``; at least 1. Under an A/A (nothing changed) the chance
    of any flag stays within ``alpha`` (Simes); the looks keep their Bonferroni split."""
    per = alpha / max(benchmarks, 1) / LOOKS
    ratios = []
    for b in benches:
        if b.busy:
            continue
        for sample, judged in b.judged():
            if judged.pairs >= 2:
                ratios.append(judged.p_value / (per * SHARES[sample]))
    ratios.sort()
    found = [k for k, r in enumerate(ratios, 1) if r <= k]
    return max(found, default=1)


def process_noise_of(benches: list[Benchmark], sample: str) -> float:
    """The process noise of ``sample``: :data:`PROCESS_NOISE` (as a prior worth
    :data:`PRIOR_DF` degrees of freedom) moderated by the run's own process pairs. A benchmark
    measured by two or more process pairs shows the offset between them: the variance of its
    process pairs' mean log ratios beyond what their pairs' spread explains estimates the
    process variance (one degree of freedom a benchmark with two process pairs). Never below
    half the prior: pairs taken in the same seconds share the machine's slow moods, which the
    process pairs' contrast cannot see."""
    total, df = PROCESS_NOISE ** 2 * PRIOR_DF, float(PRIOR_DF)
    for b in benches:
        if b.busy:
            continue
        groups = [_robust(b.logs(sample, proc))[0] for proc in b.process_ids]
        groups = [g for g in groups if len(g) >= 2]
        if len(groups) < 2:
            continue
        means = [statistics.fmean(g) for g in groups]
        within = statistics.fmean(statistics.variance(g) / len(g) for g in groups)
        # var(means) = process variance + within (per group): the excess is the process's
        total += max(statistics.variance(means) - within, 0.0) * (len(groups) - 1)
        df += len(groups) - 1
    return max(math.sqrt(total / df), PROCESS_NOISE / 2)


@dataclass
class RunShift:
    """The run as a whole: the mean of the benchmarks' changes of one sample."""

    benchmarks: int
    change: float
    low: float
    high: float
    mde: float
    verdict: str
    sample: str = "step"
    counted: bool = True  # False: an excess that moved where the whole epoch did not

    def to_dict(self) -> dict:
        return asdict(self)


def run_shifts(benches: list[Benchmark], *, threshold: float, alpha: float) -> list[RunShift]:
    """The run as a whole on each sample, ``alpha`` split as a benchmark's is (:data:`SHARES`)."""
    found = {sample: run_shift(benches, threshold=threshold, alpha=alpha * SHARES[sample],
                               sample=sample) for sample in SAMPLES}
    excess = found["excess"]
    if excess is not None and excess.verdict in (REGRESSED, IMPROVED):
        excess.counted = excess_counts(excess, found["epoch"], found["step"])
    return [s for s in found.values() if s is not None]


def run_shift(benches: list[Benchmark], *, threshold: float, alpha: float,
              sample: str = "step") -> RunShift | None:
    """The benchmarks' mean change of one sample (``step``: each benchmark's typical step, or
    its whole epoch where it has no step times; ``epoch``: the whole epoch; ``excess``: the
    excess, where it has step times) and its t interval from their spread: a change the whole
    run shares is seen here long before any one benchmark can see it."""
    changes = []
    for b in benches:
        shown = getattr(b, sample)
        if sample == "step" and (shown is None or not shown.pairs):
            shown = b.epoch
        if shown is not None and shown.pairs >= 2 and b.verdict != INCONCLUSIVE:
            changes.append(math.log1p(shown.change))
    n = len(changes)
    if n < 3:
        return None
    mean, sd = statistics.fmean(changes), statistics.stdev(changes)
    se = max(sd / math.sqrt(n), 1e-12)
    q = t_quantile(1 - alpha, n - 1)
    low, high = mean - q * se, mean + q * se
    verdict = _verdict(mean, low, high, threshold)
    mde = _expm1((q + t_quantile(0.8, n - 1)) * se)
    return RunShift(n, _expm1(mean), _expm1(low), _expm1(high), mde, verdict, sample)
