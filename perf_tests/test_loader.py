"""Loader path: the DataLoader (2 workers) against the device-resident path."""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["loader"]


@EXPERIMENT.parametrize()
def test_loader(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    if params["loader"] == "device":
        # no worker processes, no per-sample Python: the loop barely waits for data
        assert summary["median_data_wait_share"] < 0.5
