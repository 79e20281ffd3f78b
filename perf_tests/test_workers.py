"""DataLoader num_workers: epoch time, images/s and the data-wait share.

The study found the data-loading share of an epoch first falls, then rises,
with more workers (best near 8 on its machine).
"""

import os

import pytest

from fer.perf import base_config, benchmark_epochs

WORKERS = [0, 1, 2, 4, 8, 16]


# more workers than CPUs is part of the experiment (the share rises again)
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("num_workers", WORKERS)
def test_workers(benchmark, perf_scale, perf_data, num_workers):
    if perf_scale.name == "smoke" and num_workers > 4 * (os.cpu_count() or 1):
        pytest.skip(f"smoke scale: {num_workers} workers on {os.cpu_count()} CPUs only measures "
                    "oversubscription; run --perf-scale full on a larger machine")
    config = base_config(perf_scale, loader="dataloader", num_workers=num_workers,
                         persistent_workers=num_workers > 0)
    records, summary = benchmark_epochs(benchmark, config, perf_data, group="workers",
                                        scale=perf_scale, extra={"num_workers": num_workers})
    assert 0 <= summary["median_data_wait_share"] <= 1
    if num_workers == 0:
        # the main process decodes and augments every image: it must show as data wait
        assert summary["median_data_wait_s"] > 0
