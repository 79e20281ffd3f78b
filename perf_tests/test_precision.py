"""Precision: fp32, amp_fp16, amp_bf16, each with and without channels_last.

The study found mixed precision cut epoch time sharply (on a GPU).
"""

import pytest

from fer.perf import base_config, benchmark_epochs


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("precision", ["fp32", "amp_fp16", "amp_bf16"])
def test_precision(benchmark, perf_scale, perf_data, precision, channels_last):
    # CPU autocast runs ~8x slower than fp32 (no fast half-precision kernels on
    # most CPUs): on a CPU every parameter trains 5 steps an epoch, so the
    # group stays comparable and the smoke suite stays short.
    steps = 5 if perf_scale.device == "cpu" else None
    config = base_config(perf_scale, precision=precision, channels_last=channels_last,
                         max_steps_per_epoch=steps)
    records, summary = benchmark_epochs(
        benchmark, config, perf_data, group="precision", scale=perf_scale,
        extra={"precision": precision, "channels_last": channels_last})
    if precision != "amp_fp16":
        assert summary["skipped_steps"] == 0  # only fp16's GradScaler skips steps
    # every epoch trained: the loss moved from the warm-up epoch's
    assert records[-1].loss != records[0].loss
