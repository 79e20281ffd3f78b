"""DataParallel: time per epoch across device counts and per-device batch sizes.

Scaling efficiency (weak scaling: the per-device batch is fixed) is computed
after the run from the JSON (``fer.bench.derived``), against the 1-device run
of the same per-device batch. The study found it never ideal, best at a
per-device batch of 64.
"""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["dataparallel"]


@EXPERIMENT.parametrize()
def test_dataparallel(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    assert summary["median_images_per_s"] > 0
    assert len({r.steps for r in records}) == 1  # every epoch ran the same steps
