"""Precision: fp32, amp_fp16, amp_bf16, each with and without channels_last.

The study found mixed precision cut epoch time sharply (on a GPU).
"""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["precision"]


@EXPERIMENT.parametrize()
def test_precision(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    if params["precision"] != "amp_fp16":
        assert summary["skipped_steps"] == 0  # only fp16's GradScaler skips steps
    # every epoch trained: the loss moved from the warm-up epoch's
    assert records[-1].loss != records[0].loss
