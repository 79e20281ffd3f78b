"""Scaling efficiency and the other derived metrics."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fer.engine import EpochRecord
from fer.metrics import (
    data_loading_ratio,
    efficiency_by_batch,
    speedup,
    strong_scaling_efficiency,
    time_to_accuracy,
    weak_scaling_efficiency,
)

rates = st.floats(min_value=1e-3, max_value=1e6)
counts = st.integers(min_value=1, max_value=64)


@given(rate=rates, n=counts)
def test_linear_throughput_is_ideal_weak_scaling(rate, n):
    assert weak_scaling_efficiency(rate, n * rate, n) == pytest.approx(1.0)


@given(rate=rates, n=counts)
def test_no_gain_is_one_over_n(rate, n):
    assert weak_scaling_efficiency(rate, rate, n) == pytest.approx(1 / n)


@given(t=rates, n=counts)
def test_time_divided_by_n_is_ideal_strong_scaling(t, n):
    assert strong_scaling_efficiency(t, t / n, n) == pytest.approx(1.0)
    assert speedup(t, t / n) == pytest.approx(n)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        weak_scaling_efficiency(0, 1, 2)
    with pytest.raises(ValueError):
        strong_scaling_efficiency(1, 0, 2)


def test_efficiency_by_batch_is_the_studys_table():
    table = efficiency_by_batch({(1, 32): 100, (2, 32): 150, (1, 64): 200, (2, 64): 360,
                                 (4, 128): 999})
    assert table == {32: {1: 1.0, 2: 0.75}, 64: {1: 1.0, 2: 0.9}}


def _rec(epoch, wall, wait, val):
    return EpochRecord(epoch=epoch, images=10, steps=1, wall_s=wall, data_wait_s=wait,
                       compute_s=wall - wait, images_per_s=10 / wall, loss=1.0, train_acc=0.5,
                       lr=0.1, peak_mem_bytes=1, peak_mem_kind="x", val_acc=val)


def test_data_loading_ratio_and_time_to_accuracy():
    records = [_rec(0, 2.0, 1.0, 0.5), _rec(1, 2.0, 0.5, 0.8), _rec(2, 4.0, 0.4, 0.9)]
    assert data_loading_ratio(records) == pytest.approx(0.25)
    assert time_to_accuracy(records, 0.8) == pytest.approx(4.0)
    assert time_to_accuracy(records, 0.95) is None
