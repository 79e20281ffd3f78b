"""A fixed reference workload, timed between benchmark rounds: the machine's speed of the moment.

Most run-to-run noise of the perf suite is common-mode: on a shared or
throttling machine the whole run is faster or slower together. This workload
measures that speed. It is plain torch (a small fixed CNN, forward and backward
on fixed inputs), built from nothing in fer, so a change to fer's code cannot
move it, while a slower machine, a busy neighbour or a throttled GPU moves it
as much as it moves the benchmarks. The harness times it in pedantic's
untimed ``setup`` before every round and stores the samples in
``extra_info["calibration"]``; ``fer compare`` can then judge each benchmark's
epoch time relative to it (``--calibrate``, see :mod:`fer.bench.stats`).

The work is fixed per device type (``WORKLOAD``), never tuned to the machine,
so calibration times of two runs of the same hardware class compare directly.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from fer import timing

WORKLOAD = "conv-fwd-bwd-v1"
#: (batch, repeats) per device type: about 40 ms on a 2-core CPU, a few ms on a GPU
_SIZE = {"cpu": (16, 2), "cuda": (256, 8)}


class _Reference(nn.Module):
    """EfficientNet's ingredients (conv, depthwise conv, batch norm, SiLU, pooling, linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.SiLU(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.SiLU(),
            nn.Conv2d(32, 64, 1), nn.BatchNorm2d(64), nn.SiLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1, groups=64), nn.BatchNorm2d(64), nn.SiLU(),
            nn.Conv2d(64, 128, 1), nn.BatchNorm2d(128), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Calibrator:
    """Times the reference workload on one device; ``sample()`` returns seconds."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        batch, self.repeats = _SIZE.get(self.device.type, _SIZE["cpu"])
        generator = torch.Generator().manual_seed(0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.model = _Reference().to(self.device)
        self.inputs = torch.randn(batch, 1, 48, 48, generator=generator).to(self.device)
        self.targets = torch.randint(0, 7, (batch,), generator=generator).to(self.device)
        self.loss = nn.CrossEntropyLoss()
        self.samples: list[float] = []
        self._run()  # first touch: allocations, kernel selection

    def _run(self) -> None:
        for _ in range(self.repeats):
            self.model.zero_grad(set_to_none=True)
            self.loss(self.model(self.inputs), self.targets).backward()

    def sample(self) -> float:
        """One timed pass of the workload (synchronised on CUDA); kept in ``samples``."""
        start = timing.now(self.device)
        self._run()
        seconds = timing.now(self.device) - start
        self.samples.append(seconds)
        return seconds

    def summary(self) -> dict:
        ordered = sorted(self.samples)
        n = len(ordered)
        median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 if n else None
        return {"workload": WORKLOAD, "device": self.device.type, "samples_s": list(self.samples),
                "median_s": median, "measured_at": time.time()}
