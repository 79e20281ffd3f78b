"""Derived figures, computed after the run from what the engine measured.

Scaling efficiency, speed-up, the data-loading ratio and time to accuracy take
EpochRecords or their medians; :func:`scaling_points` takes stored benchmarks
and finds each one's 1-device baseline in the same set of runs, so any subset
of tests (``-k``, xdist, one file) gives the same numbers. Nothing here
re-measures anything, and nothing imports torch.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from fer.records import EpochRecord

if TYPE_CHECKING:
    from fer.bench.storage import Bench


def weak_scaling_efficiency(images_per_s_1: float, images_per_s_n: float, n: int) -> float:
    """Weak scaling (the per-device batch is fixed, so the global batch grows with n):
    throughput on n devices over n times the throughput on one. 1.0 is ideal:
    n devices process n times the images per second."""
    if n < 1 or images_per_s_1 <= 0:
        raise ValueError("need n >= 1 and a positive 1-device throughput")
    return images_per_s_n / (n * images_per_s_1)


def strong_scaling_efficiency(epoch_s_1: float, epoch_s_n: float, n: int) -> float:
    """Strong scaling (the global batch is fixed, split over n devices): the
    1-device epoch time over n times the n-device epoch time. 1.0 is ideal:
    n devices finish the same epoch n times sooner."""
    if n < 1 or epoch_s_n <= 0:
        raise ValueError("need n >= 1 and a positive n-device epoch time")
    return epoch_s_1 / (n * epoch_s_n)


def speedup(epoch_s_1: float, epoch_s_n: float) -> float:
    return epoch_s_1 / epoch_s_n


def efficiency_by_batch(images_per_s: Mapping[tuple[int, int], float]) -> dict[int, dict[int, float]]:
    """The study's view: weak-scaling efficiency per per-device batch size.

    ``images_per_s`` maps ``(devices, per_device_batch)`` to throughput; the
    result maps each batch size to ``{devices: efficiency}`` against the
    1-device run of the same batch (batches without one are left out).
    """
    out: dict[int, dict[int, float]] = {}
    for (devices, batch), rate in sorted(images_per_s.items()):
        base = images_per_s.get((1, batch))
        if base:
            out.setdefault(batch, {})[devices] = weak_scaling_efficiency(base, rate, devices)
    return out


def data_loading_ratio(records: Iterable[EpochRecord]) -> float:
    """Median share of the epoch spent waiting for data (the study's ratio)."""
    return statistics.median(r.data_wait_share for r in records)


def time_to_accuracy(records: Sequence[EpochRecord], target: float) -> float | None:
    """Training seconds until validation accuracy first reaches ``target``; None if never."""
    elapsed = 0.0
    for r in records:
        elapsed += r.wall_s
        if r.val_acc is not None and r.val_acc >= target:
            return elapsed
    return None


class ScalingPoint(NamedTuple):
    """One benchmark of a scaling experiment (DataParallel, DDP, pose DataParallel)."""

    experiment: str
    per_device_batch: int | None
    devices: int
    median_images_per_s: float
    median_wall_s: float
    efficiency: float | None  # weak scaling vs the 1-device benchmark; None without one


def devices_of(bench: Bench) -> int:
    """Devices (DataParallel) or processes (DDP) a benchmark trained on."""
    params = bench.params
    n = params.get("world_size") or params.get("devices") or bench.extra_info.get("devices") or 1
    return int(n)


def per_device_batch_of(bench: Bench) -> int | None:
    """The per-device batch: the ``per_device_batch`` parameter, else the config's batch size."""
    batch = bench.params.get("per_device_batch")
    if batch is None:
        batch = (bench.extra_info.get("config") or {}).get("batch_size")
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
        rows.append((b.experiment, per_device_batch_of(b), devices_of(b), float(rate),
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
