"""Derived metrics: scaling efficiency, data-loading ratio, time to accuracy.

All take numbers the engine measured (EpochRecords or their medians); none
re-measures anything.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

from fer.engine import EpochRecord


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
