"""Loader path: the DataLoader (2 workers) against the device-resident path."""

import pytest

from fer.perf import base_config, benchmark_epochs


@pytest.mark.parametrize("loader", ["dataloader", "device"])
def test_loader(benchmark, perf_scale, perf_data, loader):
    workers = 2 if loader == "dataloader" else 0
    config = base_config(perf_scale, loader=loader, num_workers=workers,
                         persistent_workers=workers > 0)
    records, summary = benchmark_epochs(benchmark, config, perf_data, group="loader",
                                        scale=perf_scale, extra={"loader": loader})
    if loader == "device":
        # no worker processes, no per-sample Python: the loop barely waits for data
        assert summary["median_data_wait_share"] < 0.5
