"""The whole training step in one CUDA graph (``--cuda-graph``).

At 48x48 an EfficientNet step is hundreds of small kernels, and the host that
launches them, not the GPU, sets the pace. A CUDA graph records the step's
kernels once and replays them with a single launch. This follows PyTorch's
recipe for whole-network capture (the CUDA semantics notes, "CUDA Graphs"):

1. **Warm-up**: the first :data:`WARMUP_STEPS` steps run eagerly on a side
   stream. They are real training steps on real batches (nothing is thrown
   away); they create the optimizer's lazy state, pick cuDNN/cuBLAS kernels
   and, under ``--compile``, compile the model.
2. **Capture**: with the gradients set to None, forward, loss, backward and the
   optimizer step are captured once, reading *static* input and target
   buffers, and adding the loss, the bad-loss count and the accuracy counts
   into static device accumulators. Capture records work without running it,
   so the batch it was captured on is then replayed like any other.
3. **Replay**: each step copies its batch into the static buffers (from either
   loader: the DataLoader's pinned batch or the device loader's gathered one)
   and replays the graph; the accumulators are read once per epoch.

What a graph cannot hold is handled as PyTorch documents: autocast runs with
``cache_enabled=False`` (in every step of a graphed run, warm-up included, so that a
compiled model is not recompiled for the capture); the optimizer is built ``capturable`` (Adam/AdamW keep
their step count on the device); with ``amp_fp16`` the GradScaler's step reads
the found-inf flag on the host, so the graph holds forward, loss and the scaled
backward, and ``scaler.step``/``scaler.update`` run after each replay. A batch
of another shape (a last partial batch, when a loader keeps one) runs as an
ordinary eager step with the same model and optimizer, so no image is dropped.
Combinations that cannot be captured (a CPU, DataParallel, DDP, schedules) are
refused by :class:`fer.config.TrainConfig` before any work; a capture that fails on
the machine (an op a graph cannot hold, an allocator error) raises
:class:`CaptureFailed`, and the trainer falls back to the eager step and records why.

The backend is injectable: :class:`CudaBackend` is the real one; tests on a
CPU use a stand-in that keeps the captured function and calls it on replay,
which exercises the static buffers, accumulators and fallbacks, not CUDA.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch

#: eager steps before the capture (PyTorch's examples use 3 to 11; 3 covers Adam's lazy state)
WARMUP_STEPS = 3


class CaptureFailed(RuntimeError):
    """The step could not be captured on this machine; its cause is torch's error."""


class CudaBackend:
    """torch.cuda's graph capture, side stream and synchronisation."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.index is not None:
            # replays and torch.cuda.graph's capture stream follow the current device
            torch.cuda.set_device(device)
        self.stream = torch.cuda.Stream(device=device)

    @contextlib.contextmanager
    def side_stream(self):
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def capture(self, body: Callable[[], None]):
        graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(self.device)
        # on the trainer's side stream (its device); thread_local: a DataLoader's pin-memory
        # thread may call CUDA during the capture without invalidating it
        try:
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                body()
        except BaseException:
            torch.cuda.set_stream(current)  # a failed capture_end leaves the side stream current
            raise
        return graph

    def replay(self, graph) -> None:
        graph.replay()

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)


class GraphedStep:
    """Replaces ``Trainer._train_step`` under ``--cuda-graph`` (see the module's docstring)."""

    def __init__(self, trainer, backend=None) -> None:
        self.trainer = trainer
        self.backend = backend or CudaBackend(trainer.device)
        self.graph = None
        self.static_inputs: torch.Tensor | None = None
        self.static_targets: torch.Tensor | None = None
        self.static_grads: list[torch.Tensor | None] = []
        self.warmed = 0
        self.eager_steps = 0  # batches of another shape, run eagerly
        self.replays = 0
        self.warmup_s: float | None = None  # the eager warm-up steps (with a compile in them)
        self.capture_s: float | None = None  # the capture itself, seconds (synchronised)
        self._started: float | None = None
        device = trainer.device
        self.acc_loss = torch.zeros((), device=device)
        self.acc_correct = torch.zeros((), device=device, dtype=torch.long)
        self.acc_trials = torch.zeros((), device=device, dtype=torch.long)
        self.acc_bad = torch.zeros((), device=device, dtype=torch.long)

    @property
    def split_optimizer(self) -> bool:
        """fp16: the GradScaler's step syncs, so it runs outside the graph."""
        return self.trainer.precision.uses_scaler

    # ------------------------------------------------------------------ step --

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, sums) -> None:
        t = self.trainer
        if self.graph is None:
            if self.warmed == 0:
                self.backend.synchronize()
                self._started = time.perf_counter()
            if self.warmed < WARMUP_STEPS:
                with self.backend.side_stream():
                    t._train_step(inputs, targets, sums)
                self.warmed += 1
                return
            self._capture(inputs, targets)
        if inputs.shape != self.static_inputs.shape or targets.shape != self.static_targets.shape:
            self._eager(inputs, targets, sums)
            return
        self.static_inputs.copy_(inputs, non_blocking=True)
        self.static_targets.copy_(targets, non_blocking=True)
        self.backend.replay(self.graph)
        self.replays += 1
        if self.split_optimizer:
            sums.skipped += self._scaler_step()
        t.scheduler.step()
        sums.images += len(inputs)
        sums.steps += 1

    def _body(self) -> None:
        """What the graph holds: one step on the static buffers, sums into the accumulators."""
        t = self.trainer
        with t.precision.autocast(cache_enabled=False):
            logits = t.model(self.static_inputs)
            loss = t.task.loss(logits, self.static_targets)
        if self.split_optimizer:
            t.precision.scaler.scale(loss).backward()
        else:
            loss.backward()
            t.optimizer.step()
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        self.acc_bad += (~finite).long()
        self.acc_loss += torch.where(finite, loss, 0.0) * self.static_inputs.shape[0]
        hits, tried = t.task.hits(logits.detach(), self.static_targets)
        self.acc_correct += hits
        self.acc_trials += tried

    def _capture(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        t = self.trainer
        self.static_inputs = inputs.detach().clone()
        self.static_targets = targets.detach().clone()
        t.optimizer.zero_grad(set_to_none=True)  # the graph allocates its own gradients
        self.backend.synchronize()
        start = time.perf_counter()
        self.warmup_s = start - (self._started or start)
        try:
            self.graph = self.backend.capture(self._body)
        except Exception as exc:
            raise CaptureFailed(f"the CUDA graph capture failed: {exc}") from exc
        self.static_grads = [p.grad for p in self._params()]
        self.backend.synchronize()
        self.capture_s = time.perf_counter() - start

    def _scaler_step(self) -> int:
        """fp16 after a replay: unscale, step unless inf/NaN, update the scale."""
        scaler, optimizer = self.trainer.precision.scaler, self.trainer.optimizer
        before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        return int(scaler.get_scale() < before)

    def _eager(self, inputs: torch.Tensor, targets: torch.Tensor, sums) -> None:
        """A batch of another shape: an ordinary step, then the graph's gradients back in place."""
        self.trainer._train_step(inputs, targets, sums)
        self.eager_steps += 1
        for p, g in zip(self._params(), self.static_grads):
            p.grad = g

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.trainer.optimizer.param_groups for p in group["params"]]

    # ----------------------------------------------------------------- epoch --

    def drain(self, sums) -> None:
        """Add the graph's accumulated sums into the epoch's (on the device) and zero them."""
        sums.loss += self.acc_loss
        sums.correct += self.acc_correct
        sums.trials += self.acc_trials
        sums.bad_losses += self.acc_bad
        for acc in (self.acc_loss, self.acc_correct, self.acc_trials, self.acc_bad):
            acc.zero_()

    def summary(self) -> dict:
        """Step counts; the warm-up and capture seconds are in ``Trainer.setup_s``."""
        return {"warmup_steps": self.warmed, "replays": self.replays,
                "eager_steps": self.eager_steps}
