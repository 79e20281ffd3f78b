"""The profiler's overhead and where the time goes.

Overhead: time per step of steps under torch.profiler against an epoch
without it, the same run. The study found convolutions dominate the profile.
"""

import math

from fer.profiling import profile_training
from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import extra_info, point_config

EXPERIMENT = EXPERIMENTS["profiler"]


def test_profiler_overhead_and_categories(benchmark, perf_scale, perf_data):
    from fer.engine import build_trainer

    config = point_config(EXPERIMENT, {}, perf_scale)
    trainer = build_trainer(config, data=perf_data)
    trainer.train_epoch()  # warm-up
    plain = trainer.train_epoch()
    steps = trainer.steps_per_epoch
    summaries = []

    def profiled_epoch():
        summaries.append(profile_training(trainer, wait=0, warmup=1, steps=steps - 1,
                                          record_shapes=False, profile_memory=False))

    benchmark.group = "profiler"
    benchmark.pedantic(profiled_epoch, rounds=1, iterations=1)
    summary = summaries[-1]
    per_step_plain = plain.wall_s / plain.steps
    per_step_profiled = summary.profiled_wall_s / summary.profiled_steps
    overhead = per_step_profiled / per_step_plain
    benchmark.extra_info.update(extra_info(
        experiment=EXPERIMENT.name, params={}, scale=perf_scale, records=trainer.records,
        config=config.to_dict(), plan=trainer.plan.to_dict(),
        plain_epoch=plain.to_dict(),
        profiled_wall_s=summary.profiled_wall_s,
        profiled_steps=summary.profiled_steps,
        overhead_ratio=overhead,
        time_basis=summary.time_basis,
        categories=summary.categories,
        dominant_category=summary.dominant_category,
        top_ops=[op.__dict__ for op in summary.top_ops[:10]],
    ))
    assert summary.profiled_steps == steps
    assert math.isclose(sum(summary.categories.values()), 1.0, rel_tol=1e-9)
    assert summary.categories["convolution"] > 0
    assert overhead > 0
