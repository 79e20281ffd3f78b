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


class StepClock:
    """Per-step times without a synchronisation per step.

    On a CPU, ``time.perf_counter()`` marks; on CUDA, events recorded on the
    current stream (``enable_timing``), read once by :meth:`seconds` after the
    epoch's closing synchronisation. Each step's time runs from the end of the
    previous step (the epoch's start for the first) to the end of this one, so
    it includes the wait for its batch.
    """

    def __init__(self, device: torch.device | str | None) -> None:
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        if len(self.marks) < 2:
            return []
        if self.cuda:
            self.marks[-1].synchronize()
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def step_quantiles(seconds: list[float]) -> dict | None:
    """The distribution of an epoch's step times: n, min, q10, q25, median, q75, q90, max."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    n = len(ordered)

    def q(p: float) -> float:
        x = p * (n - 1)
        lo = int(x)
        hi = min(lo + 1, n - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (x - lo)

    return {"n": n, "min": ordered[0], "q10": q(0.10), "q25": q(0.25), "median": q(0.5),
            "q75": q(0.75), "q90": q(0.9), "max": ordered[-1]}
