"""The one record type and the ``extra_info`` schema: what every layer speaks.

The engine produces an :class:`EpochRecord` per epoch; the perf harness stores
them (and their :func:`summarize`-d medians) in a benchmark's ``extra_info``;
``fer compare``, ``fer report`` and the charts read them back from the JSON.
Nothing here imports torch.

``extra_info`` of a perf-suite benchmark (schema 2)::

    schema        2
    experiment    the registry name (fer.suite.experiments): "workers", "dataparallel", ...
    params        the factor values of this benchmark, e.g. {"num_workers": 4}
    scale         the perf scale (name, model, images, rounds, ...)
    model, device, devices, global_batch, config   what ran (config: the resolved plan)
    records       every EpochRecord (as dicts), the warm-up first with "warmup": true
    summary       medians over the timed epochs (:func:`summarize`)
    gpu_sampling  NVML utilisation, memory, SM/memory clocks, temperature, power and the
                  throttle reasons seen during its rounds (GPU only)
    step_breakdown  a few profiled steps after the timed epochs (fer.profiling)
    counters      exact counts per step after the timed epochs (fer.counters)
    step_mode     the step asked for, the step that ran, and each fallback with its reason
    load          other processes' CPU share per round (fer.suite.load)
    ...           experiment-specific extras (convergence curves, profiler categories)

Runs written before schema 2 (no ``schema`` key) named the experiment by its
benchmark group and kept the parameters at the top level;
:func:`upgrade_extra_info` reads them into this shape, once, when a run is loaded.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any

SCHEMA = 2

#: parameters that runs before schema 2 kept at the top level of extra_info
_LEGACY_PARAMS = ("num_workers", "precision", "channels_last", "optimizer", "batch_size",
                  "devices", "per_device_batch", "loader", "world_size")


@dataclass
class EpochRecord:
    """What one epoch measured. The one record type the CLI, the perf tests,
    the comparer and the charts all speak."""

    epoch: int
    images: int
    steps: int
    wall_s: float
    data_wait_s: float
    compute_s: float
    images_per_s: float
    loss: float
    train_acc: float
    lr: float
    peak_mem_bytes: int
    peak_mem_kind: str  # "cuda_max_allocated" or "process_peak_rss"
    skipped_steps: int = 0
    val_loss: float | None = None
    val_acc: float | None = None
    eval_s: float | None = None
    #: the epoch's step times (this process): n, min, q10, q25, median, q75, q90, max seconds
    step_s: dict | None = None
    #: the median host time to issue one step (launching its kernels; on a CPU, running them):
    #: beside ``step_s`` it tells a launch-bound step (host time close to the step time)
    host_step_s: float | None = None

    @property
    def data_wait_share(self) -> float:
        """The study's "data-loading ratio": data-wait time over epoch time."""
        return self.data_wait_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "data_wait_share": self.data_wait_share}

    @classmethod
    def from_dict(cls, d: dict) -> EpochRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def timed(records: list) -> list:
    """The timed epochs of a benchmark's records — the one rule every reader uses: the records
    not flagged ``"warmup"`` (the harness flags the warm-up since schema 2); in records without
    the flag (older runs, the engine's own list) every record but the first. A run of its
    warm-up alone has no timed epoch."""
    if any(isinstance(r, dict) and "warmup" in r for r in records):
        return [r for r in records if isinstance(r, dict) and not r.get("warmup")]
    return list(records[1:])


def summarize(records: list[EpochRecord]) -> dict:
    """Medians over the timed epochs (:func:`timed`); a one-epoch run (``fer train --epochs
    1``) has only its warm-up, whose figures then stand (flagged by the reader, not here)."""
    timed_records = timed(records) or records
    last = records[-1]
    return {
        "median_wall_s": statistics.median(r.wall_s for r in timed_records),
        "median_images_per_s": statistics.median(r.images_per_s for r in timed_records),
        "median_data_wait_s": statistics.median(r.data_wait_s for r in timed_records),
        "median_compute_s": statistics.median(r.compute_s for r in timed_records),
        "median_data_wait_share": statistics.median(r.data_wait_share for r in timed_records),
        "peak_mem_bytes": max(r.peak_mem_bytes for r in records),
        "final_loss": last.loss,
        "final_train_acc": last.train_acc,
        "final_val_acc": last.val_acc,
        "skipped_steps": sum(r.skipped_steps for r in records),
    }


def legacy_experiment(group: str | None, extra: dict) -> str | None:
    """The registry name of a benchmark written before schema 2."""
    name = extra.get("experiment") or group
    if not isinstance(name, str):
        return None
    if name.startswith("pose-dataparallel"):
        return "pose_dataparallel"
    if name.startswith("dataparallel"):
        return "dataparallel"
    return name


def upgrade_extra_info(extra: dict, group: str | None) -> dict:
    """``extra`` in schema 2 (a copy when it had to change; schema-2 input is returned as is)."""
    if extra.get("schema") == SCHEMA:
        return extra
    out = dict(extra)
    out["schema"] = SCHEMA
    out["experiment"] = legacy_experiment(group, extra)
    params = {k: extra[k] for k in _LEGACY_PARAMS if k in extra}
    if out["experiment"] == "ddp" and "world_size" in params:
        params.setdefault("per_device_batch", extra.get("per_device_batch"))
    out["params"] = params
    return out


def param(extra: dict, name: str, default: Any = None) -> Any:
    """One parameter of a benchmark (schema 2: ``extra_info["params"]``)."""
    params = extra.get("params")
    if isinstance(params, dict) and name in params:
        return params[name]
    return default
