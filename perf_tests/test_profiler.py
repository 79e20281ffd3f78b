"""The profiler's overhead and where the time goes.

Overhead: time per step of an epoch under torch.profiler against an epoch
without it, the same run. The study found convolutions dominate the profile.
"""

import math

from fer.engine import Trainer
from fer.perf import base_config
from fer.profiling import profile_training


def test_profiler_overhead_and_categories(benchmark, perf_scale, perf_data):
    trainer = Trainer(base_config(perf_scale), data=perf_data)
    trainer.train_epoch()  # warm-up
    trainer.epoch += 1
    plain = trainer.train_epoch()
    trainer.epoch += 1
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
    benchmark.extra_info.update({
        "experiment": "profiler",
        "plain_epoch": plain.to_dict(),
        "profiled_wall_s": summary.profiled_wall_s,
        "profiled_steps": summary.profiled_steps,
        "overhead_ratio": overhead,
        "time_basis": summary.time_basis,
        "categories": summary.categories,
        "dominant_category": summary.dominant_category,
        "top_ops": [op.__dict__ for op in summary.top_ops[:10]],
    })
    assert summary.profiled_steps == steps
    assert math.isclose(sum(summary.categories.values()), 1.0, rel_tol=1e-9)
    assert summary.categories["convolution"] > 0
    assert overhead > 0
