"""Optimizers: epoch time and the loss/accuracy curve over consecutive epochs.

The study found Adam converged fastest.
"""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["optimizer"]


@EXPERIMENT.parametrize()
def test_optimizer(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    assert all(r.val_acc is not None for r in records)  # validated after every epoch
    assert len(records) == perf_scale.rounds + 1
