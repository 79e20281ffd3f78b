"""Derived figures, computed after the run from what the engine measured.

Weak-scaling efficiency and speed-up take medians; :func:`scaling_points` takes stored benchmarks
and finds each one's 1-device baseline in the same set of runs, so any subset
of tests (``-k``, xdist, one file) gives the same numbers. Nothing here
re-measures anything, and nothing imports torch.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from fer.bench.storage import Bench


def weak_scaling_efficiency(images_per_s_1: float, images_per_s_n: float, n: int) -> float:
    """Weak scaling (the per-device batch is fixed, so the global batch grows with n):
    throughput on n devices over n times the throughput on one. 1.0 is ideal:
    n devices process n times the images per second."""
    if n < 1 or images_per_s_1 <= 0:
        raise ValueError("need n >= 1 and a positive 1-device throughput")
    return images_per_s_n / (n * images_per_s_1)


def speedup(epoch_s_1: float, epoch_s_n: float) -> float:
    return epoch_s_1 / epoch_s_n


class ScalingPoint(NamedTuple):
    """One benchmark of a scaling experiment (DataParallel, DDP, pose DataParallel)."""

    experiment: str
    per_device_batch: int | None
    devices: int
    median_images_per_s: float
    median_wall_s: float
    efficiency: float | None  # weak scaling vs the 1-device benchmark; None without one


def per_device_batch_of(bench: Bench) -> int | None:
    """The per-device batch: the ``per_device_batch`` parameter, else the config's batch size."""
    batch = bench.params.get("per_device_batch")
    if batch is None:
        batch = bench.config.get("batch_size")
    return int(batch) if batch is not None else None


def scaling_points(benches: Iterable[Bench]) -> list[ScalingPoint]:
    """Every benchmark with a throughput, with its weak-scaling efficiency.

    The baseline of a benchmark is the 1-device (world size 1) benchmark of the
    same experiment and per-device batch among ``benches`` (the median of them
    when several runs hold one). Any ``scaling_efficiency`` stored by old runs
    is ignored: it depended on which tests ran in the same session.
    Sorted by experiment, per-device batch, devices.
    """
    rows = []
    for b in benches:
        rate, wall = b.summary.get("median_images_per_s"), b.summary.get("median_wall_s")
        if b.experiment is None or rate is None or wall is None:
            continue
        rows.append((b.experiment, per_device_batch_of(b), b.devices, float(rate),
                     float(wall)))
    base: dict[tuple[str, int | None], list[float]] = {}
    for experiment, batch, devices, rate, _ in rows:
        if devices == 1:
            base.setdefault((experiment, batch), []).append(rate)
    points = []
    for experiment, batch, devices, rate, wall in rows:
        ones = base.get((experiment, batch))
        one = statistics.median(ones) if ones else None
        efficiency = weak_scaling_efficiency(one, rate, devices) if one else None
        points.append(ScalingPoint(experiment, batch, devices, rate, wall, efficiency))
    return sorted(points, key=lambda p: (p.experiment, p.per_device_batch or 0, p.devices))
