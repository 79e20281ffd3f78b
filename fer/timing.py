"""The one place that reads a clock around device work.

CUDA runs asynchronously: a clock read while kernels are queued measures the
queueing, not the work. :func:`synchronize` waits for the device, and every
timed region (an epoch, an evaluation) starts and ends with it. Inside an
epoch nothing synchronises per step: the time the host spends blocked on the
loader's next batch is the data wait, and the rest of the epoch is compute —
when the device is the bottleneck the host blocks in kernel launches instead,
which is correctly counted as compute.
"""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued work on ``device`` (a no-op off CUDA)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)  # note: a CPU-GPU sync point, only at region edges


def now(device: torch.device | str | None = None) -> float:
    """``time.perf_counter()`` after the device's queued work has finished."""
    synchronize(device)
    return time.perf_counter()


class Region:
    """``with Region(device) as r: ...`` then ``r.seconds``: a synchronised wall time."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = device
        self.seconds = 0.0

    def __enter__(self) -> Region:
        self._start = now(self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = now(self.device) - self._start
