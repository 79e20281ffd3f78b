"""DataLoader num_workers: epoch time, images/s and the data-wait share.

The study found the data-loading share of an epoch first falls, then rises,
with more workers (best near 8 on its machine).
"""

import pytest

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["workers"]


# more workers than CPUs is part of the experiment (the share rises again)
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@EXPERIMENT.parametrize()
def test_workers(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    assert 0 <= summary["median_data_wait_share"] <= 1
    if params["num_workers"] == 0:
        # the main process decodes and augments every image: it must show as data wait
        assert summary["median_data_wait_s"] > 0
