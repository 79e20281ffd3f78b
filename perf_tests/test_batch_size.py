"""Batch size: epoch time and convergence per epoch at a fixed learning rate.

The study found larger batches cut time per epoch but slowed convergence. A
batch that does not fit in memory is skipped with the reason; the suite goes on.
"""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["batch_size"]


@EXPERIMENT.parametrize()
def test_batch_size(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    assert records[0].steps == perf_scale.train_images // params["batch_size"]
    assert all(r.val_acc is not None for r in records)  # the convergence curve is complete
