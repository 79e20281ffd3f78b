"""Batch size: epoch time and convergence per epoch at a fixed learning rate.

The study found larger batches cut time per epoch but slowed convergence. A
batch that does not fit in memory is skipped with the reason; the suite goes on.
"""

import pytest

from fer.perf import base_config, benchmark_epochs

BATCH_SIZES = [32, 64, 128, 256, 512]


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_batch_size(benchmark, perf_scale, perf_data, batch_size):
    if batch_size > perf_scale.train_images:
        pytest.skip(f"batch {batch_size} exceeds the {perf_scale.train_images}-image epoch "
                    f"of --perf-scale {perf_scale.name}")
    config = base_config(perf_scale, batch_size=batch_size)
    records, summary = benchmark_epochs(benchmark, config, perf_data, group="batch_size",
                                        scale=perf_scale, extra={"batch_size": batch_size})
    benchmark.extra_info["convergence"] = {
        "val_acc": [r.val_acc for r in records],
        "images_seen": [r.images * (i + 1) for i, r in enumerate(records)],
    }
    assert records[0].steps == perf_scale.train_images // batch_size
