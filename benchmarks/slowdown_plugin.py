"""A pytest plugin that really slows training down: every training step waits
``FER_SLOWDOWN`` (a fraction, e.g. 0.10) of its own measured duration.

Used by ``benchmarks/gate_power.py`` and the gate tests to make a real,
proportional regression of the engine (``-p benchmarks.slowdown_plugin``):
the epoch's compute grows by that fraction, the data path and the calibration
workload do not move — exactly what a slower training step looks like.
"""

from __future__ import annotations

import os
import time

from fer.engine import Trainer

FRACTION = float(os.environ.get("FER_SLOWDOWN", "0") or 0)

if FRACTION > 0:
    _step = Trainer._train_step

    def _slow_step(self, inputs, targets, sums):
        start = time.perf_counter()
        _step(self, inputs, targets, sums)
        elapsed = time.perf_counter() - start
        deadline = time.perf_counter() + FRACTION * elapsed
        while time.perf_counter() < deadline:  # a busy wait: sleep() overshoots short waits
            pass

    Trainer._train_step = _slow_step
