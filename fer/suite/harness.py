"""The perf suite's harness: scales, and one benchmark = consecutive epochs of one run.

``benchmark_epochs(benchmark, config, data)`` builds a :class:`Trainer` and
hands ``Trainer.train_epoch`` to ``benchmark.pedantic`` as the timed function:
one warm-up round, then ``rounds`` timed rounds, each the next epoch of the
same run (so a round is a real epoch: optimizer state, allocator and caches
carry over as in training). Validation runs in pedantic's untimed ``setup``
between rounds. Everything measured goes into ``benchmark.extra_info``.
"""

from __future__ import annotations

import gc
import math
import statistics
from dataclasses import asdict, dataclass

import torch

from fer.config import TrainConfig
from fer.data import FERData
from fer.engine import EpochRecord, Trainer
from fer.gpu import UtilizationSampler

SCALE_CHOICES = ("smoke", "full", "auto")


@dataclass(frozen=True)
class PerfScale:
    """How big the perf suite's runs are."""

    name: str
    model: str
    synthetic_size: int  # images in all splits; 80% train like FER2013
    rounds: int  # timed epochs per benchmark (after one warm-up epoch)
    batch_size: int
    device: str
    pose_size: str  # HRNet pose input for the pose experiments
    pose_images: int  # synthetic stick figures (80% train)

    @property
    def train_images(self) -> int:
        return round(self.synthetic_size * 28709 / 35887)


#: smoke: CI on a 2-core CPU, whole suite in minutes. full: the study's model
#: on a FER2013-sized epoch (28,709 training images), for a GPU.
SCALES = {
    "smoke": dict(model="test_efficientnet", synthetic_size=1600, rounds=3, batch_size=64,
                  pose_size="64x64", pose_images=320),
    "full": dict(model="efficientnet_b0", synthetic_size=35887, rounds=3, batch_size=64,
                 pose_size="256x192", pose_images=4096),
}


def resolve_scale(name: str, rounds: int | None = None) -> PerfScale:
    if name not in SCALE_CHOICES:
        raise ValueError(f"--perf-scale {name!r} is not one of {', '.join(SCALE_CHOICES)}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"--perf-rounds must be >= 1, got {rounds}")
    cuda = torch.cuda.is_available()
    if name == "auto":
        name = "full" if cuda else "smoke"
    values = dict(SCALES[name])
    if rounds is not None:
        values["rounds"] = rounds
    return PerfScale(name=name, device="cuda" if cuda else "cpu", **values)


def pose_config(scale: PerfScale, **changes) -> TrainConfig:
    """The pose experiments' defaults: hrnet_w18_small on synthetic stick figures."""
    values = dict(task="pose", model="hrnet_w18_small", pose_size=scale.pose_size,
                  synthetic_size=scale.pose_images, batch_size=32, learning_rate=1e-3)
    values.update(changes)
    return base_config(scale, **values)


def base_config(scale: PerfScale, **changes) -> TrainConfig:
    """The defaults every experiment starts from; each varies one factor."""
    values = dict(model=scale.model, device=scale.device, batch_size=scale.batch_size,
                  epochs=scale.rounds + 1, synthetic_size=scale.synthetic_size, optimizer="adam",
                  precision="fp32", loader="device")
    values.update(changes)
    return TrainConfig(**values)


def summarize(records: list[EpochRecord]) -> dict:
    """Medians over the timed epochs (the warm-up epoch is excluded)."""
    timed = records[1:] or records
    last = records[-1]
    return {
        "median_wall_s": statistics.median(r.wall_s for r in timed),
        "median_images_per_s": statistics.median(r.images_per_s for r in timed),
        "median_data_wait_s": statistics.median(r.data_wait_s for r in timed),
        "median_compute_s": statistics.median(r.compute_s for r in timed),
        "median_data_wait_share": statistics.median(r.data_wait_share for r in timed),
        "peak_mem_bytes": max(r.peak_mem_bytes for r in records),
        "final_loss": last.loss,
        "final_train_acc": last.train_acc,
        "final_val_acc": last.val_acc,
        "skipped_steps": sum(r.skipped_steps for r in records),
    }


def check_records(records: list[EpochRecord], *, expected_images: int,
                  round_times: list[float] | None = None) -> None:
    """The run really happened: images counted, times positive, parts summing, and the
    engine's epoch time agreeing with the benchmark's round time (a ratio, same run)."""
    assert records, "no epoch ran"
    for r in records:
        assert r.images == expected_images, f"epoch {r.epoch}: {r.images} != {expected_images} images"
        assert r.steps > 0 and r.wall_s > 0 and r.images_per_s > 0
        assert 0 <= r.data_wait_s <= r.wall_s and r.compute_s >= 0
        assert math.isclose(r.data_wait_s + r.compute_s, r.wall_s, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isfinite(r.loss), f"epoch {r.epoch}: loss {r.loss}"
    if round_times:
        timed = records[-len(round_times):]
        for r, t in zip(timed, round_times):
            # the round's time includes the epoch plus a little harness overhead
            assert r.wall_s <= t * 1.001 + 1e-4, f"epoch {r.epoch}: {r.wall_s} s > round {t} s"
            assert r.wall_s >= 0.5 * t, f"epoch {r.epoch}: {r.wall_s} s is under half its round"


def benchmark_epochs(benchmark, config: TrainConfig, data: FERData, *, group: str,
                     scale: PerfScale | None = None, extra: dict | None = None
                     ) -> tuple[list[EpochRecord], dict]:
    """Time ``config.epochs - 1`` epochs (after one warm-up) of one run; fill extra_info.

    Returns the records (warm-up first) and the summary. An out-of-memory
    error skips the test with its reason (the suite goes on).
    """
    import pytest

    rounds = config.epochs - 1
    trainer = None
    try:
        trainer = Trainer(config, data=data)
        records: list[EpochRecord] = []

        def train_one_epoch() -> None:
            records.append(trainer.train_epoch())
            trainer.epoch += 1

        def validate_previous() -> None:  # untimed: pedantic's setup
            if records and records[-1].val_acc is None:
                r = records[-1]
                r.val_loss, r.val_acc, r.eval_s = trainer.evaluate()

        benchmark.group = group
        with UtilizationSampler(trainer.device) as sampler:
            benchmark.pedantic(train_one_epoch, setup=validate_previous, rounds=rounds,
                               warmup_rounds=1, iterations=1)
        validate_previous()
    except torch.cuda.OutOfMemoryError as exc:
        del trainer
        gc.collect()
        torch.cuda.empty_cache()
        pytest.skip(f"out of memory at batch {config.batch_size} x {config.devices or 1} "
                    f"device(s): {str(exc).splitlines()[0]}")

    summary = summarize(records)
    benchmark.extra_info.update({
        "experiment": group,
        "scale": asdict(scale) if scale else None,
        "model": trainer.model_name,
        "device": str(trainer.device),
        "devices": trainer.devices,
        "global_batch": trainer.global_batch,
        "config": config.to_dict(),
        "records": [dict(r.to_dict(), warmup=i == 0) for i, r in enumerate(records)],
        "summary": summary,
        "gpu_sampling": sampler.summary(),
        **(extra or {}),
    })
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    expected = min(trainer.train_loader.num_images, trainer.steps_per_epoch * trainer.global_batch)
    check_records(records, expected_images=expected,
                  round_times=list(getattr(stats, "data", []) or []))
    return records, summary
