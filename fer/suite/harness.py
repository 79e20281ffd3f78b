"""The perf suite's harness: one benchmark = consecutive epochs of one run.

``run_point(benchmark, experiment, params, scale, data)`` turns one grid point
of a registry experiment (:mod:`fer.suite.experiments`) into a TrainConfig,
skips it with the reason when this machine cannot run it, and times it with
:func:`benchmark_epochs`: a trainer is built and ``Trainer.train_epoch`` goes
to ``benchmark.pedantic`` as the timed function — one warm-up round, then
``rounds`` timed rounds, each the next epoch of the same run (so a round is a
real epoch: optimizer state, allocator and caches carry over as in training).
Validation runs in pedantic's untimed ``setup`` between rounds. Everything
measured goes into ``benchmark.extra_info`` in the schema of
:mod:`fer.records`, with ``step_mode``: the step asked for, the step that ran
and why it fell back where a step mode failed on this machine
(:attr:`fer.engine.Trainer.step_mode`).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
from dataclasses import asdict

import pytest
import torch

from fer.config import TrainConfig
from fer.counters import count_steps
from fer.engine import build_trainer
from fer.gpu import UtilizationSampler
from fer.profiling import step_breakdown
from fer.records import SCHEMA, EpochRecord, summarize
from fer.suite.calibration import Calibrator
from fer.suite.experiments import Experiment, Machine, Params
from fer.suite.load import LoadSampler
from fer.suite.scales import PerfScale

__all__ = ["base_config", "benchmark_epochs", "check_records", "extra_info", "machine",
           "point_config", "replay_epochs", "run_point", "skip_reason", "summarize"]

#: what every pose experiment starts from (hrnet_w18_small on stick figures)
POSE_DEFAULTS = dict(task="pose", model="hrnet_w18_small", batch_size=32, learning_rate=1e-3)


def machine() -> Machine:
    """The facts skip rules ask about this machine."""
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Machine(cuda_devices=cuda, cpus=os.cpu_count() or 1)


def base_config(scale: PerfScale, task: str = "fer", *, fast_step: bool = False,
                **changes) -> TrainConfig:
    """The defaults every experiment starts from (Adam, fp32, the scale's batch, input and
    loader; the scale's fastest honest step with ``fast_step``); each experiment varies
    one factor."""
    values = dict(model=scale.model, device=scale.device, batch_size=scale.batch_size,
                  epochs=scale.rounds + 1, synthetic_size=scale.synthetic_size, optimizer="adam",
                  precision="fp32", loader=scale.loader, num_workers=scale.num_workers,
                  persistent_workers=scale.num_workers > 0, image_size=scale.image_size,
                  channels=scale.channels, compile_budget=scale.compile_budget)
    if fast_step and scale.graph_step and scale.device == "cuda":
        values["cuda_graph"] = True
    if task == "pose":
        values.update(POSE_DEFAULTS, pose_size=scale.pose_size, synthetic_size=scale.pose_images,
                      loader="device", num_workers=0, persistent_workers=False, image_size=48,
                      channels=1)
    values.update(changes)
    if scale.epoch_images and changes.get("max_steps_per_epoch") is None:
        values["max_steps_per_epoch"] = max(1, scale.epoch_images // values["batch_size"])
    return TrainConfig(**values)


def point_config(experiment: Experiment, params: Params, scale: PerfScale, **changes) -> TrainConfig:
    """The TrainConfig of one grid point."""
    return base_config(scale, experiment.task, fast_step=experiment.fast_step,
                       **{**experiment.configure(params, scale), **changes})


def skip_reason(experiment: Experiment, params: Params, scale: PerfScale) -> str | None:
    return experiment.skip(params, scale, machine())


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


def extra_info(*, experiment: str, params: Params, scale: PerfScale | None, records: list[EpochRecord],
               config: dict, plan: dict | None = None, **more) -> dict:
    """A benchmark's ``extra_info`` in the schema of :mod:`fer.records`."""
    return {
        "schema": SCHEMA,
        "experiment": experiment,
        "params": dict(params),
        "scale": asdict(scale) if scale else None,
        "config": config,
        "plan": plan,
        "records": [dict(r.to_dict(), warmup=i == 0) for i, r in enumerate(records)],
        "summary": summarize(records),
        **more,
    }


def benchmark_epochs(benchmark, config: TrainConfig, data, *, experiment: str, group: str,
                     params: Params | None = None, scale: PerfScale | None = None,
                     extra: dict | None = None, with_breakdown: bool = True
                     ) -> tuple[list[EpochRecord], dict]:
    """Time ``config.epochs - 1`` epochs (after one warm-up) of one run; fill extra_info.

    After them (untimed) a few profiled steps give ``extra_info["step_breakdown"]``:
    per-category time per step, ops and kernels per step, host vs device time, and
    the profiling's own cost; a few counted steps give ``extra_info["counters"]``
    (:mod:`fer.counters`: operators, host reads, allocations, copies per step). Returns
    the records (warm-up first) and the summary. An out-of-memory error skips the test
    with its reason (the suite goes on).
    """
    rounds = config.epochs - 1
    trainer = None
    try:
        trainer = build_trainer(config, data=data)
        calibrator = Calibrator(trainer.device)

        def validate_previous() -> None:
            if trainer.records:
                trainer.validate(trainer.records[-1])

        load = LoadSampler()  # other processes' CPU time, per round

        def between_rounds() -> None:  # untimed: pedantic's setup, before every round
            load.mark()  # the first mark closes the build; each next one closes an epoch
            validate_previous()
            calibrator.sample()  # the machine's speed of the moment, beside each epoch

        benchmark.group = group
        with UtilizationSampler(trainer.device) as sampler:
            benchmark.pedantic(trainer.train_epoch, setup=between_rounds, rounds=rounds,
                               warmup_rounds=1, iterations=1)
        load.mark()
        validate_previous()
        # untimed, after the timed rounds: where a step's time goes (fer compare's "why")
        breakdown = step_breakdown(trainer) if with_breakdown else None
        counters = count_steps(trainer)  # exact counts per step: the gate's noiseless half
    except torch.cuda.OutOfMemoryError as exc:
        del trainer
        gc.collect()
        torch.cuda.empty_cache()
        pytest.skip(f"out of memory at batch {config.batch_size} x {config.devices or 1} "
                    f"device(s): {str(exc).splitlines()[0]}")

    records = trainer.records
    info = extra_info(
        experiment=experiment, params=params or {}, scale=scale, records=records,
        config=config.to_dict(), plan=trainer.plan.to_dict(), model=trainer.model_name,
        device=str(trainer.device), devices=trainer.devices, global_batch=trainer.global_batch,
        gpu_sampling=sampler.summary(), calibration=calibrator.summary(), load=load.summary(),
        step_breakdown=breakdown, counters=counters, setup_s=dict(trainer.setup_s),
        step_mode=trainer.step_mode,
        graph=trainer.step_graph.summary() if trainer.step_graph is not None else None,
        **(extra or {}))
    benchmark.extra_info.update(info)  # the plugin reads it for the summary when the test ends
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    expected = min(trainer.train_loader.num_images, trainer.steps_per_epoch * trainer.global_batch)
    check_records(records, expected_images=expected,
                  round_times=list(getattr(stats, "data", []) or []))
    return records, info["summary"]


class _ReplayClock:
    """pytest-benchmark's timer, advanced by epoch times measured elsewhere."""

    __name__ = "fer.suite.harness.replayed_epoch_clock"

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replay_epochs(benchmark, seconds: list[float]) -> None:
    """Hand epoch times measured outside this process (inside torchrun's ranks, by the
    engine's synchronised clock) to pytest-benchmark as its rounds, so that the benchmark's
    statistics, ``fer compare`` and the gate see epochs — not the launch around them."""
    if not seconds:
        raise ValueError("no epoch times to replay")
    clock, times = _ReplayClock(), iter(seconds)

    def epoch() -> None:
        clock.now += next(times)

    with _timer_of(benchmark, clock):
        benchmark.pedantic(epoch, rounds=len(seconds), warmup_rounds=0, iterations=1)


@contextlib.contextmanager
def _timer_of(benchmark, clock):
    """The one private attribute of pytest-benchmark fer touches: ``BenchmarkFixture._timer``,
    the clock its runner reads when each round starts (tested here with pytest-benchmark 5.2,
    the version CI installs; a fixture without it, e.g. a test double, times with its own
    clock)."""
    timer = getattr(benchmark, "_timer", None)
    benchmark._timer = clock
    try:
        yield
    finally:
        if timer is not None:
            benchmark._timer = timer


def run_point(benchmark, experiment: Experiment, params: Params, scale: PerfScale, data, *,
              extra: dict | None = None, **changes) -> tuple[list[EpochRecord], dict]:
    """One grid point of ``experiment``: skipped with the reason where this machine
    cannot run it, else timed by :func:`benchmark_epochs`."""
    reason = skip_reason(experiment, params, scale)
    if reason:
        pytest.skip(reason)
    config = point_config(experiment, params, scale, **changes)
    breakdown = experiment.step_breakdown_on_cpu or scale.device != "cpu"
    return benchmark_epochs(benchmark, config, data, experiment=experiment.name,
                            group=experiment.group(params), params=params, scale=scale, extra=extra,
                            with_breakdown=breakdown)
