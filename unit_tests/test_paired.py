"""fer.bench.paired: the paired statistics of fer ab."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer.bench.paired import (
    IMPROVED,
    LOOKS,
    REGRESSED,
    UNCHANGED,
    UNKNOWN,
    Benchmark,
    judge,
    judge_benchmark,
    looks,
    prior_of,
    run_shift,
)


def _pairs(ratios, a=1.0, epoch_ratios=None):
    """Pairs of records whose B/A step sample is ``ratios[i]`` (and epoch ``epoch_ratios``)."""
    out = []
    for i, r in enumerate(ratios):
        e = (epoch_ratios or ratios)[i]
        rec_a = {"wall_s": a, "steps": 10, "step_s": {"q25": a / 10}}
        rec_b = {"wall_s": a * e, "steps": 10, "step_s": {"q25": a * r / 10}}
        out.append({"a": rec_a, "b": rec_b, "order": "AB"})
    return out


def _noisy(change, n, sd, seed=0):
    rng = random.Random(seed)
    return [math.exp(math.log1p(change) + rng.gauss(0, sd)) for _ in range(n)]


def test_looks_grow_by_half_and_stop():
    assert looks(3) == [3, 5, 8, 12, 18] and len(looks(3)) == LOOKS


def test_a_clear_slowdown_regresses_and_a_clear_speedup_improves():
    up = judge([math.log(1.05) + d for d in (0.001, -0.001, 0.002, -0.002, 0.0)],
               sample="step", threshold=0.03, alpha=0.001)
    assert up.verdict == REGRESSED and up.low > 0 and math.isclose(up.change, 0.05, rel_tol=1e-3)
    down = judge([-x for x in [math.log(1.05) + d for d in (0.001, -0.001, 0.002, -0.002, 0.0)]],
                 sample="step", threshold=0.03, alpha=0.001)
    assert down.verdict == IMPROVED


def test_a_tiny_real_change_is_unchanged_not_regressed():
    """Significant but below a third of the threshold: within +-threshold, unchanged."""
    j = judge([math.log(1.005) + d for d in (0.0001, -0.0001, 0.0002, 0.0)], sample="step",
              threshold=0.03, alpha=0.01)
    assert j.low > 0 and j.verdict == UNCHANGED


def test_few_noisy_pairs_are_unknown_with_their_mde():
    j = judge([0.05, -0.04, 0.03], sample="step", threshold=0.03, alpha=0.001)
    assert j.verdict == UNKNOWN and j.mde > 0.03


def test_the_run_s_pooled_variance_lets_few_pairs_decide():
    logs = [math.log(1.06) + d for d in (0.004, -0.004, 0.0)]
    alone = judge(logs, sample="step", threshold=0.03, alpha=0.0005)
    prior = prior_of([[0.01, -0.01, 0.0, 0.005, -0.005]] * 4)
    helped = judge(logs, sample="step", threshold=0.03, alpha=0.0005, prior=prior)
    assert alone.verdict == UNKNOWN and helped.verdict == REGRESSED
    assert helped.mde < alone.mde


def test_one_burst_pair_is_left_out():
    logs = [0.001, -0.001, 0.0005, -0.0005, 0.0, 0.9]  # one epoch hit by a burst
    j = judge(logs, sample="step", threshold=0.03, alpha=0.01)
    assert j.dropped == 1 and j.verdict == UNCHANGED


def test_a_benchmark_alone_is_never_the_same_within_its_process_noise():
    """Two processes of the same code differ by PROCESS_NOISE: a threshold below about twice
    it can never be shown the same, however many pairs (hence the default of 5%)."""
    from fer.bench.paired import PROCESS_NOISE

    b = Benchmark("t", pairs=_pairs([1.0] * 18))
    judge_benchmark(b, threshold=1.5 * PROCESS_NOISE, alpha=0.05, benchmarks=1,
                    priors={"step": (1e-6, 12.0), "epoch": (1e-6, 12.0)})
    assert b.step.verdict == UNKNOWN and b.step.mde > PROCESS_NOISE


def test_a_stall_only_the_whole_epoch_sees_decides_the_benchmark():
    b = Benchmark("t", pairs=_pairs([1.0] * 8, epoch_ratios=_noisy(0.20, 8, 0.01)))
    judge_benchmark(b, threshold=0.05, alpha=0.025, benchmarks=10)
    assert b.step.verdict == UNCHANGED and b.epoch.verdict == REGRESSED
    assert b.verdict == REGRESSED and b.judged_by == "epoch" and b.shown is b.epoch


def test_a_same_step_with_an_unknown_epoch_stays_unknown():
    b = Benchmark("t", pairs=_pairs([1.0] * 3, epoch_ratios=[1.3, 0.8, 1.1]))
    judge_benchmark(b, threshold=0.05, alpha=0.025, benchmarks=10,
                    priors={"step": (1e-4, 12.0), "epoch": (1e-4, 12.0)})
    assert b.step.verdict == UNCHANGED and b.verdict == UNKNOWN


def test_the_run_as_a_whole_sees_a_shared_small_change():
    benches = []
    for i in range(12):
        b = Benchmark(f"t{i}", pairs=_pairs(_noisy(0.03, 3, 0.02, seed=i)))
        judge_benchmark(b, threshold=0.03, alpha=0.025, benchmarks=12)
        benches.append(b)
    shift = run_shift(benches, threshold=0.03, alpha=0.025)
    assert shift.verdict == REGRESSED and shift.low > 0
    assert sum(b.verdict == REGRESSED for b in benches) < 12  # the benchmarks alone see less


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=20),
       st.floats(0.005, 0.1), st.floats(1e-6, 0.2))
def test_swapping_the_sides_mirrors_the_verdict(logs, threshold, alpha):
    forward = judge(logs, sample="step", threshold=threshold, alpha=alpha)
    backward = judge([-x for x in logs], sample="step", threshold=threshold, alpha=alpha)
    mirror = {REGRESSED: IMPROVED, IMPROVED: REGRESSED, UNCHANGED: UNCHANGED, UNKNOWN: UNKNOWN}
    assert backward.verdict == mirror[forward.verdict]
    assert math.isclose((1 + forward.change) * (1 + backward.change), 1, rel_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=20), st.floats(0.005, 0.1))
def test_identical_sides_are_never_regressed(times, threshold):
    """An A/A of identical samples: every pair's ratio is exactly 1."""
    b = Benchmark("t", pairs=[{"a": {"wall_s": t, "steps": 4, "step_s": {"q25": t / 4}},
                               "b": {"wall_s": t, "steps": 4, "step_s": {"q25": t / 4}},
                               "order": "AB"} for t in times])
    judge_benchmark(b, threshold=threshold, alpha=0.025, benchmarks=3)
    assert b.verdict in (UNCHANGED, UNKNOWN) and b.step.change == 0


@pytest.mark.parametrize("seed", range(20))
def test_a_a_noise_is_not_regressed_at_the_run_s_alpha(seed):
    """Pure noise (sd 2% per pair), 30 benchmarks, the run's alpha: no false regression."""
    benches = []
    for i in range(30):
        b = Benchmark(f"t{i}", pairs=_pairs(_noisy(0.0, 5, 0.02, seed=1000 * seed + i)))
        judge_benchmark(b, threshold=0.03, alpha=0.025, benchmarks=30,
                        priors={"step": (0.02 ** 2, 12.0), "epoch": (0.02 ** 2, 12.0)})
        benches.append(b)
    assert REGRESSED not in {b.verdict for b in benches}


def test_the_run_as_a_whole_sees_a_shared_stall_on_the_whole_epoch():
    """Every benchmark +16% on the whole epoch, the typical step unmoved: the step's run shift
    is unchanged, the epoch's regressed."""
    from fer.bench.paired import run_shifts

    benches = []
    for i in range(8):
        b = Benchmark(f"t{i}", pairs=_pairs(_noisy(0.0, 5, 0.01, seed=i),
                                            epoch_ratios=_noisy(0.16, 5, 0.04, seed=50 + i)))
        judge_benchmark(b, threshold=0.03, alpha=0.025, benchmarks=8)
        benches.append(b)
    step, epoch, excess = run_shifts(benches, threshold=0.03, alpha=0.025)
    assert (step.sample, epoch.sample, excess.sample) == ("step", "epoch", "excess")
    assert step.verdict == UNCHANGED and epoch.verdict == excess.verdict == REGRESSED


def test_a_stall_the_whole_epoch_s_noise_hides_is_judged_by_the_excess():
    """Each pair's machine moved both sides' epochs by up to +-12% (sd) and the candidate
    stalls for 15% of its epoch: the whole epoch cannot tell yet, the typical step sees
    nothing, the excess (the epoch over its typical step x steps) cancels the machine and
    flags it: the row is decided by it and shows its change."""
    rng = random.Random(7)
    pairs = []
    for _ in range(12):
        machine = rng.gauss(0, 0.12)  # the same within one epoch: step and epoch alike
        step = math.exp(machine)
        pairs += _pairs([step], epoch_ratios=[step * 1.15 * math.exp(rng.gauss(0, 0.005))])
    b = Benchmark("t", pairs=pairs)
    priors = {"step": (0.12 ** 2, 12.0), "epoch": (0.12 ** 2, 12.0), "excess": (0.005 ** 2, 12.0)}
    judge_benchmark(b, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors)
    assert b.step.verdict == UNKNOWN and b.epoch.verdict == UNKNOWN
    assert b.excess.verdict == REGRESSED and b.verdict == REGRESSED
    assert b.judged_by == "excess" and b.shown is b.excess
    assert b.excess.change == pytest.approx(0.15, abs=0.01)
    assert set(b.to_dict()) >= {"step", "epoch", "excess"}


def _sped_up_run(seed=0):
    """8 benchmarks whose every step is 20% faster (sd 0.5% a pair) under the same per-epoch
    work (30% of the base epoch): the whole epoch -14%, the excess +7.5%."""
    rng, benches = random.Random(seed), []
    for i in range(8):
        pairs = []
        for j in range(6):
            step = 0.8 * math.exp(rng.gauss(0, 0.005))
            rec_a = {"wall_s": 1.0, "steps": 10, "step_s": {"q25": 0.07}}
            rec_b = {"wall_s": 0.7 * step + 0.3, "steps": 10, "step_s": {"q25": 0.07 * step}}
            pairs.append({"a": rec_a, "b": rec_b, "order": "AB", "proc": j % 2})
        benches.append(Benchmark(f"t{i}", pairs=pairs))
    return benches


def test_a_faster_step_under_fixed_work_is_never_a_regression_of_the_excess():
    """The excess rises when every step gets faster and the per-epoch work stays: it must not
    turn a speed-up into a regression, of a row or of the run (its shift is not counted)."""
    from fer.bench.paired import excess_counts, judge_all, run_shifts

    benches = _sped_up_run()
    priors = {s: (0.005 ** 2, 12.0) for s in ("step", "epoch", "excess")}  # as the run pools
    judge_all(benches, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors)
    assert all(b.excess.verdict == REGRESSED for b in benches)  # the excess did rise ...
    assert {b.verdict for b in benches} == {IMPROVED}  # ... the training got faster
    step, epoch, excess = run_shifts(benches, threshold=0.05, alpha=0.025)
    assert step.verdict == epoch.verdict == IMPROVED
    assert excess.verdict == REGRESSED and excess.counted is False
    assert step.counted and epoch.counted
    # a row whose step and epoch are not yet known, the epoch faster, the excess higher
    b = benches[0]
    b.step.verdict, b.epoch.verdict = UNKNOWN, UNKNOWN
    assert not excess_counts(b.excess, b.epoch, b.step)
    b.epoch.change = 0.04  # the whole epoch slower, its way: then it speaks
    assert excess_counts(b.excess, b.epoch, b.step)
    b.epoch.verdict = UNCHANGED  # shown within the threshold: the excess cannot overrule it
    assert not excess_counts(b.excess, b.epoch, b.step)


def _shifted_run(change, n_benches=8, pairs=6, sd=0.015, seed=0, processes=2):
    benches = []
    for i in range(n_benches):
        b = Benchmark(f"t{i}", pairs=_pairs(_noisy(change, pairs, sd, seed=100 * seed + i)))
        for j, pair in enumerate(b.pairs):
            pair["proc"] = j % processes
        benches.append(b)
    return benches


def test_a_change_every_benchmark_shares_is_flagged_on_most_by_the_step_up():
    """+5% on each of 8 benchmarks: Bonferroni over the 8 (step 1) flags fewer of them than
    the Benjamini-Hochberg step-up, whose flags' intervals then exclude zero."""
    from fer.bench.paired import judge_all

    benches = _shifted_run(0.05)
    priors = {"step": (0.015 ** 2, 12.0), "epoch": (0.015 ** 2, 12.0)}  # as the run pools
    for b in benches:
        judge_benchmark(b, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors)
    bonferroni = sum(b.verdict == REGRESSED for b in benches)
    found = judge_all(benches, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors)
    assert found >= 8 and bonferroni < 8  # (the whole epochs, with a fifth of the alpha, some)
    flagged = [b for b in benches if b.verdict == REGRESSED]
    assert len(flagged) >= 7 and all(b.shown.low > 0 for b in flagged)  # one drew +3.4%


@pytest.mark.parametrize("seed", range(10))
def test_the_step_up_never_flags_an_a_a(seed):
    from fer.bench.paired import judge_all

    benches = _shifted_run(0.0, n_benches=20, seed=seed)
    found = judge_all(benches, threshold=0.05, alpha=0.025, benchmarks=20,
                      priors={"step": (0.015 ** 2, 12.0), "epoch": (0.015 ** 2, 12.0)})
    assert found == 1 and REGRESSED not in {b.verdict for b in benches}


def test_a_disturbed_benchmark_is_left_out_of_the_step_up():
    from fer.bench.paired import discoveries, judge_all

    priors = {"step": (0.015 ** 2, 12.0), "epoch": (0.015 ** 2, 12.0)}
    benches = _shifted_run(0.05)
    assert judge_all(benches, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors) >= 8
    for b in benches[1:]:
        b.disturbed_pairs = 99  # inconclusive: their p-values must not help the first's
    found = judge_all(benches, threshold=0.05, alpha=0.025, benchmarks=8, priors=priors)
    assert found == discoveries(benches[:1], alpha=0.025, benchmarks=8) <= 2


def test_more_process_pairs_lower_a_benchmark_s_floor():
    from fer.bench.paired import PROCESS_NOISE

    logs = [0.0] * 18
    one = judge(logs, sample="step", threshold=0.05, alpha=0.01, process_noise=PROCESS_NOISE,
                processes=1, prior=(1e-6, 12.0))
    two = judge(logs, sample="step", threshold=0.05, alpha=0.01, process_noise=PROCESS_NOISE,
                processes=2, prior=(1e-6, 12.0))
    assert math.isclose(one.mde / two.mde, math.sqrt(2), rel_tol=0.02)


def test_the_process_noise_is_read_from_the_run_s_process_pairs():
    """Process pairs whose means sit 3% apart (far beyond their pairs' spread) raise the
    process noise above the prior; process pairs that agree lower it, never below half."""
    from fer.bench.paired import PROCESS_NOISE, process_noise_of

    apart, agree = [], []
    for i in range(20):
        offset = 0.03 if i % 2 else -0.03
        b = Benchmark(f"t{i}", pairs=_pairs([math.exp(offset * (1 if j % 2 else -1))
                                             for j in range(8)]))
        c = Benchmark(f"t{i}", pairs=_pairs([1.0] * 8))
        for bench in (b, c):
            for j, pair in enumerate(bench.pairs):
                pair["proc"] = j % 2
        apart.append(b)
        agree.append(c)
    assert process_noise_of(apart, "step") > 2 * PROCESS_NOISE
    assert PROCESS_NOISE / 2 <= process_noise_of(agree, "step") < 0.7 * PROCESS_NOISE
    assert process_noise_of(agree * 10, "step") == PROCESS_NOISE / 2  # the floor
    assert process_noise_of([], "step") == PROCESS_NOISE
