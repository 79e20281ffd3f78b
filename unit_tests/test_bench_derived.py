"""fer.bench.derived: scaling efficiency and the other figures derived from stored runs."""

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fer.bench.derived import scaling_points, speedup, weak_scaling_efficiency
from fer.bench.storage import Bench, load_run

rates = st.floats(min_value=1e-3, max_value=1e6)
counts = st.integers(min_value=1, max_value=64)


@given(rate=rates, n=counts)
def test_linear_throughput_is_ideal_weak_scaling(rate, n):
    assert weak_scaling_efficiency(rate, n * rate, n) == pytest.approx(1.0)


@given(rate=rates, n=counts)
def test_no_gain_is_one_over_n(rate, n):
    assert weak_scaling_efficiency(rate, rate, n) == pytest.approx(1 / n)


@given(t=rates, n=counts)
def test_time_divided_by_n_is_a_speedup_of_n(t, n):
    assert speedup(t, t / n) == pytest.approx(n)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        weak_scaling_efficiency(0, 1, 2)


# ------------------------------------------------------- scaling_points --

SMOKE_RUN = Path(__file__).parent / "fixtures" / "report" / "smoke-run.json"


def _dp(devices, batch, rate, experiment="dataparallel"):
    """A schema-2 DataParallel benchmark with throughput ``rate``."""
    extra = {"schema": 2, "experiment": experiment,
             "params": {"devices": devices, "per_device_batch": batch},
             "config": {"batch_size": batch},
             "summary": {"median_images_per_s": rate, "median_wall_s": 1000 / rate},
             "scaling_efficiency": 0.123}  # old runs stored one; it must be ignored
    return Bench(f"t::dp[{devices}-{batch}]", f"dp[{devices}-{batch}]",
                 f"dataparallel-b{batch}", 1000 / rate, None, extra)


DP = [_dp(1, 32, 100), _dp(2, 32, 150), _dp(4, 32, 200),
      _dp(1, 64, 200), _dp(2, 64, 360), _dp(4, 64, 640)]


def _by_key(points):
    return {(p.experiment, p.per_device_batch, p.devices): p.efficiency for p in points}


def test_scaling_points_are_weak_scaling_against_one_device():
    eff = _by_key(scaling_points(DP))
    assert eff == pytest.approx({
        ("dataparallel", 32, 1): 1.0, ("dataparallel", 32, 2): 0.75, ("dataparallel", 32, 4): 0.5,
        ("dataparallel", 64, 1): 1.0, ("dataparallel", 64, 2): 0.9, ("dataparallel", 64, 4): 0.8})
    point = next(p for p in scaling_points(DP) if p.devices == 2 and p.per_device_batch == 64)
    assert point.median_images_per_s == 360 and point.median_wall_s == pytest.approx(1000 / 360)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_any_subset_with_its_one_device_run_gives_the_same_efficiency(size):
    full = _by_key(scaling_points(DP))
    multi = [b for b in DP if b.params["devices"] > 1]
    for chosen in itertools.combinations(multi, size):
        ones = [b for b in DP if b.params["devices"] == 1]
        for order in (list(chosen) + ones, ones + list(chosen)):  # the run order does not matter
            sub = _by_key(scaling_points(order))
            assert all(sub[k] == pytest.approx(full[k]) for k in sub)


def test_without_a_one_device_run_there_is_no_efficiency():
    points = scaling_points([_dp(2, 32, 150), _dp(1, 64, 200)])
    assert _by_key(points) == {("dataparallel", 32, 2): None, ("dataparallel", 64, 1): 1.0}


def test_experiments_do_not_share_baselines():
    points = scaling_points([_dp(1, 32, 100), _dp(2, 32, 150, experiment="pose_dataparallel")])
    assert _by_key(points)[("pose_dataparallel", 32, 2)] is None


def test_legacy_ddp_run_recomputes_the_stored_efficiency():
    run = load_run(SMOKE_RUN)
    ddp = [b for b in run.benchmarks.values() if b.experiment == "ddp"]
    points = scaling_points(ddp)
    assert [(p.devices, p.per_device_batch) for p in points] == [(1, 64), (2, 64)]
    raw = json.loads(SMOKE_RUN.read_text())
    stored = next(b["extra_info"]["scaling_efficiency"] for b in raw["benchmarks"]
                  if b["name"] == "test_ddp[2]")
    assert points[1].efficiency == pytest.approx(stored)
    # the full run (every experiment) gives the same DDP figures as the DDP benchmarks alone
    full = [p for p in scaling_points(run.benchmarks.values()) if p.experiment == "ddp"]
    assert full == points


def test_ddp_per_device_batch_falls_back_to_the_config():
    extra = {"schema": 2, "experiment": "ddp", "params": {"world_size": 2},
             "config": {"batch_size": 48},
             "summary": {"median_images_per_s": 10.0, "median_wall_s": 1.0}}
    (point,) = scaling_points([Bench("t::ddp[2]", "ddp[2]", "ddp", 1.0, None, extra)])
    assert point.per_device_batch == 48 and point.devices == 2 and point.efficiency is None
