"""Exact counts of what one training step does: no clock, so no noise.

A time needs many repeats to see a 1% change on a noisy machine; a count does not.
:func:`count_steps` trains a few steps after the timed epochs with a
``TorchDispatchMode`` that sees every aten operator the step dispatches (the
forward, the backward, the optimizer and the batch's trip to the device), and reports
per step:

==================  =====================================================================
``aten_ops``        operators dispatched (after autograd; composite ops decomposed)
``syncs``           host reads of a tensor's value (``.item()``, ``bool(t)``,
                    data-dependent shapes): each is a host-device synchronisation on a
                    GPU (on CUDA, ``torch.cuda.set_sync_debug_mode`` counts the rest)
``allocations``     tensors the operators created (outputs that alias no input)
``allocated_bytes`` their bytes
``h2d_copies``      host-to-device copies and their bytes (``h2d_bytes``); CUDA only
``d2h_copies``      device-to-host copies and their bytes (``d2h_bytes``); CUDA only
``cuda_mallocs``    the caching allocator's calls to cudaMalloc (CUDA only)
``peak_allocated``  the peak of allocated CUDA memory over the counted steps (CUDA only)
==================  =====================================================================

and ``ops``, each operator's count per step (so that a rise names its operator). The
steps are counted twice, in two windows of the same schedule; a counter that differs
between them is not deterministic and ``variation`` says by how much (fer's gate allows
a counter its measured variation, and no more). The first step of each window is not
counted (a new pass over the data starts there).

This module imports nothing of fer: ``fer ab`` loads it by its path into a worker that
runs another checkout's code, so that both sides are counted by the same counter.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: the counters every device has, then the CUDA-only ones, in the order shown
COUNTERS = ("aten_ops", "syncs", "allocations", "allocated_bytes")
CUDA_COUNTERS = ("h2d_copies", "h2d_bytes", "d2h_copies", "d2h_bytes", "cuda_mallocs",
                 "peak_allocated")
#: counters that depend only on the code that ran (the dispatched operators), never on
#: kernel selection or the allocator's state: gated by fer's ``--gate-on counters``
GATED = ("aten_ops", "syncs", "allocations", "allocated_bytes", "h2d_copies", "h2d_bytes",
         "d2h_copies", "d2h_bytes")
#: operators that read a tensor's value on the host (a sync on a GPU)
HOST_READS = frozenset({"_local_scalar_dense", "nonzero", "masked_select", "_unique2",
                        "unique_consecutive", "repeat_interleave"})
STEPS = 4


class _Counting(TorchDispatchMode):
    """Counts every operator dispatched while it is active (this thread and autograd's)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()
        self.values: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name in HOST_READS:
            self.values["syncs"] += 1
        if name in ("copy_", "_to_copy", "_copy_from"):
            self._copy(name, args, kwargs, out)
        fresh = [r.alias_info is None for r in func._schema.returns]
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for new, t in zip(fresh, outs):
            if new and isinstance(t, torch.Tensor):
                self.values["allocations"] += 1
                self.values["allocated_bytes"] += t.numel() * t.element_size()
        return out

    def _copy(self, name: str, args, kwargs, out) -> None:
        if name == "copy_":
            dst, src = args[0], args[1]
        elif name == "_copy_from":
            src, dst = args[0], args[1]
        else:
            src, dst = args[0], out
        if not (isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor)):
            return
        way = {("cpu", "cuda"): "h2d", ("cuda", "cpu"): "d2h"}.get((src.device.type,
                                                                     dst.device.type))
        if way:
            self.values[f"{way}_copies"] += 1
            self.values[f"{way}_bytes"] += src.numel() * src.element_size()


def _window(trainer, steps: int) -> tuple[dict[str, float], dict[str, float]]:
    """One counted window: ``steps`` steps after one uncounted step; per-step counters and
    per-step operator counts."""
    mode = _Counting()
    cuda = trainer.device.type == "cuda"
    state = {"on": False}
    caught: list = []
    before: dict = {}

    def on_step(step: int, images: int, wait: float) -> None:
        if step == 1:  # after the first step: count the next ``steps`` whole steps
            if cuda:
                torch.cuda.synchronize(trainer.device)
                torch.cuda.reset_peak_memory_stats(trainer.device)
                before.update(torch.cuda.memory_stats(trainer.device))
            mode.__enter__()
            state["on"] = True
        elif step == steps + 1 and state["on"]:
            mode.__exit__(None, None, None)
            state["on"] = False

    sync_mode = torch.cuda.get_sync_debug_mode() if cuda else 0
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if cuda:
                torch.cuda.set_sync_debug_mode(1)  # warn on every synchronising call
            trainer.run_steps(steps + 1, on_step=on_step)
    finally:
        if state["on"]:
            mode.__exit__(None, None, None)
        if cuda:
            torch.cuda.set_sync_debug_mode(sync_mode)
    values = {k: float(mode.values.get(k, 0)) for k in COUNTERS}
    values["aten_ops"] = float(sum(mode.ops.values()))
    if cuda:
        torch.cuda.synchronize(trainer.device)
        after = torch.cuda.memory_stats(trainer.device)
        for k in ("h2d_copies", "h2d_bytes", "d2h_copies", "d2h_bytes"):
            values[k] = float(mode.values.get(k, 0))
        syncs = sum("synchroniz" in str(w.message) for w in caught)
        values["syncs"] = float(max(values["syncs"], syncs))
        key = "segment.all.allocated"
        values["cuda_mallocs"] = float(after.get(key, 0) - before.get(key, 0))
    per_step = {k: v / steps for k, v in values.items()}
    if cuda:  # a peak, not a sum
        per_step["peak_allocated"] = float(torch.cuda.max_memory_allocated(trainer.device))
    ops = {name: n / steps for name, n in sorted(mode.ops.items())}
    return per_step, ops


def count_steps(trainer, *, steps: int = STEPS) -> dict:
    """Count ``steps`` training steps of ``trainer`` twice (it trains ``2 * (steps + 1)``
    steps: never call it inside a timed region). Returns what the perf suite stores as
    ``extra_info["counters"]``."""
    ran = getattr(trainer, "ran", None) or {}  # the step that runs (after any fallback)
    if ran.get("compile", getattr(trainer.config, "compile", "none")) != "none":
        return {"skipped": "torch.compile'd steps are not counted (the counting mode would "
                           "change what dynamo traces)"}
    start = time.perf_counter()
    first, ops = _window(trainer, steps)
    second, _ = _window(trainer, steps)
    return {
        "steps": steps,
        "windows": 2,
        "device": trainer.device.type,
        "per_step": first,
        "variation": {k: abs(second.get(k, 0.0) - v) for k, v in first.items()},
        "ops": ops,
        "cost_s": time.perf_counter() - start,
    }
