"""The training engine: epochs timed and split into data-wait and compute.

``build_trainer(config)`` does the construction — the device, the DDP process
group, the resolved :class:`~fer.config.Plan`, data, loaders, model, optimizer
and precision — and hands the parts to :class:`Trainer`, which only holds the
run's state and trains:

* ``train_epoch()`` trains the next epoch, appends its :class:`EpochRecord` and
  advances ``trainer.epoch``; the perf suite times exactly this call;
* ``run_epoch()`` adds validation (when due) and the checkpoint; ``fit()`` runs
  the remaining epochs;
* ``run_steps(n)`` trains ``n`` steps across epoch boundaries without a record
  (the profiler's way in).

Step modes, one knob each: ``--optimizer-impl`` (forloop, foreach, fused),
``--compile MODE`` (the first step's time, which holds the compilation, is kept
in ``trainer.setup_s["compile_s"]``) and ``--cuda-graph`` (the whole step
captured once and replayed, :mod:`fer.graphs`; warm-up and capture time in
``trainer.setup_s["capture_s"]``). Both setup times fall in the perf suite's
untimed warm-up epoch and are recorded apart from the timed ones. A mode that fails
on the machine falls back to the next honest step — a failed capture to the eager
step, a failed compile (at ``torch.compile`` or the first compiled step) to the
uncompiled model, an implementation torch refuses to :func:`fer.optim.fallback_impl`'s
— and ``trainer.step_mode`` records the step asked for, the step that ran and why.

The step itself reads top to bottom in ``_train_step``: forward under the
resolved precision, backward and optimizer step through it, loss and accuracy
summed on the device (read once per epoch, never per step).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import resource
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.profiler import record_function

from fer import checkpoint, timing
from fer.checkpoint import CHECKPOINT_NAME
from fer.config import Plan, TrainConfig
from fer.data.loaders import LoaderOptions
from fer.errors import ConfigError, FERError
from fer.graphs import CaptureFailed, GraphedStep
from fer.optim import ImplRefused, create_optimizer, create_scheduler, fallback_impl
from fer.parallel import (
    DistInfo,
    all_reduce_max,
    all_reduce_sum,
    init_distributed,
    visible_cuda_devices,
    wrap,
)
from fer.precision import Precision, resolve_precision
from fer.records import EpochRecord
from fer.tasks import make_task

__all__ = ["CHECKPOINT_NAME", "STEP_KNOBS", "EpochRecord", "StepsDone", "Trainer", "TrainingError",
           "build_trainer", "peak_memory", "resolve_device", "seed_everything"]

log = logging.getLogger(__name__)

# A GradScaler that skips an overflowing fp16 step also skips optimizer.step();
# the schedule still advances one step, which is what we want: not a mistake.
warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
_NAN_CHECK_EVERY = 50  # steps between checks for a diverged loss (each check syncs)

#: called as ``on_step(steps_done, images_done, data_wait_s)`` after each step
OnStep = Callable[[int, int, float], None]

#: the step modes: each falls back to the next honest step when it fails on the machine
STEP_KNOBS = ("cuda_graph", "compile", "optimizer_impl")


class CompileBudgetExceeded(BaseException):
    """The first compiled step ran past --compile-budget (raised by its alarm). A
    BaseException, as KeyboardInterrupt is: the ``except Exception`` of the code it lands in
    (Dynamo's, Inductor's autotuning) lets it through instead of swallowing it."""


def _budget_cause(exc: BaseException) -> CompileBudgetExceeded | None:
    """The budget's alarm behind ``exc``, where other code wrapped it in an error of its own."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, CompileBudgetExceeded):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


@contextlib.contextmanager
def compile_budget(seconds: float, mode: str, optimizer: torch.optim.Optimizer | None = None):
    """Interrupt the block (the first compiled step) after ``seconds`` with
    :class:`CompileBudgetExceeded`, through SIGALRM: Dynamo and Inductor compile in Python on
    this thread, so the alarm lands between their bytecodes (and again each second, should
    something hold it). The alarm is disarmed when ``optimizer`` starts its step (a hook): the
    compiled forward and backward are over, and a step interrupted there would update the
    weights twice when the batch runs again. Only on the main thread of a POSIX process
    (elsewhere the block runs unbounded). The previous handler and timer (pytest-timeout's,
    say) are restored with the time they had left; a timer due before the budget is left to
    fire first."""
    usable = (hasattr(signal, "setitimer") and
              threading.current_thread() is threading.main_thread())
    before = signal.getitimer(signal.ITIMER_REAL) if usable else (0.0, 0.0)
    if not usable or 0 < before[0] <= seconds:
        yield
        return

    def alarm(signum, frame):
        raise CompileBudgetExceeded(f"compile {mode} took over its budget of {seconds:g} s "
                                    "(--compile-budget): skipped, trained uncompiled")

    armed = [True]
    begun = time.monotonic()
    previous = signal.signal(signal.SIGALRM, alarm)

    def disarm(*args) -> None:
        if armed[0]:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if before[0] > 0:  # the earlier timer, with what it had left
                left = before[0] - (time.monotonic() - begun)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), before[1])

    hook = optimizer.register_step_pre_hook(disarm) if optimizer is not None else None
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        disarm()
        if hook is not None:
            hook.remove()


def _step_name(knob: str, value) -> str:
    """A step mode as the fallback lines say it: cuda_graph / eager, compile default / no
    compile, fused optimizer."""
    if knob == "cuda_graph":
        return "cuda_graph" if value else "eager"
    if knob == "compile":
        return "no compile" if value == "none" else f"compile {value}"
    return "torch's default optimizer" if value == "auto" else f"{value} optimizer"


def _why(exc: BaseException) -> str:
    """One line of the root error (its type and first line, through causes and dynamo's
    ``inner_exception``), at most 200 characters."""
    while (inner := exc.__cause__ or getattr(exc, "inner_exception", None)) is not None:
        exc = inner
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class TrainingError(FERError):
    """The run cannot go on (the loss diverged, a checkpoint does not fit)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda``/``cuda:N`` checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA device is visible on this machine; "
                              "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) "
                              f"visible (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif device.type != "cpu":
        raise ConfigError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024), "process_peak_rss"


@dataclass
class StepsDone:
    """What :meth:`Trainer.run_steps` ran."""

    steps: int
    images: int
    wall_s: float
    data_wait_s: float


class _Sums:
    """An epoch's running sums, kept on the device so that no step syncs."""

    def __init__(self, device: torch.device) -> None:
        zero = dict(device=device, dtype=torch.long)
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), **zero)
        self.trials = torch.zeros((), **zero)
        self.bad_losses = torch.zeros((), **zero)
        self.skipped = 0
        self.images = self.steps = 0
        self.data_wait = 0.0
        self.host: list[float] = []  # per step, the host's time to issue it


def build_trainer(config: TrainConfig, data=None) -> Trainer:
    """Everything a run needs, built from ``config``: joins the DDP process group
    under torchrun, resolves the plan, loads the data (unless ``data`` is given),
    and resumes from ``--checkpoint-dir`` with ``--resume``.

    Everything that can refuse the run is checked before the data is read: the
    checkpoint folder (no fresh run over a checkpoint without ``--overwrite``; with
    ``--resume`` the checkpoint is read and its config compared, see
    :mod:`fer.checkpoint`); stale temporaries of a killed write are removed."""
    resume_state = None
    if config.checkpoint_dir:
        ckpt_path = Path(config.checkpoint_dir) / CHECKPOINT_NAME
        checkpoint.check_fresh_run(config)
        if config.resume:
            resume_state = checkpoint.check_resume(config, ckpt_path)
        checkpoint.clean_stale_temporaries(ckpt_path)
    device = resolve_device(config.device)
    if config.cuda_graph and device.type != "cuda":
        raise ConfigError(f"--cuda-graph needs a CUDA device; --device {config.device} "
                          f"resolved to {device} (no CUDA device visible): drop --cuda-graph")
    dist = DistInfo()
    if config.parallel == "ddp":
        dist, device = init_distributed(device)
    plan = config.resolve(device=str(device), cuda_devices=visible_cuda_devices(),
                          world_size=dist.world_size, rank=dist.rank)
    seed_everything(config.seed)
    task = make_task(config)
    data = data if data is not None else task.load_data(config, plan)
    train, val = data.split("train"), data.split("val")
    if len(train) == 0:
        raise ConfigError(f"{data.source}: has no training rows (Usage 'Training')")
    task.check_data(train, data)

    options = LoaderOptions(
        kind=plan.loader, device=device, num_workers=config.num_workers,
        pin_memory=plan.pin_memory, persistent_workers=config.persistent_workers,
        prefetch_factor=config.prefetch_factor, seed=config.seed,
        image_size=config.image_size if config.image_size != 48 else None,
        rank=dist.rank, world_size=dist.world_size, channels=config.channels)
    # one loader batch is what one process feeds its model(s): under DDP each
    # process loads batch_size; DataParallel splits batch_size x devices
    train_loader = task.make_loader(train, train=True, batch_size=plan.loader_batch, options=options)
    val_loader = task.make_loader(val, train=False, batch_size=max(plan.loader_batch, 256),
                                  options=options)

    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = task.build_model(plan.model, data, config)
    model.to(device)
    model.to(memory_format=memory_format)
    wrapped, _ = wrap(model, config.parallel, device=device, devices=plan.devices)
    # DDP's forward syncs buffers across ranks; shards of the validation set
    # differ in length, so evaluation runs the bare model and all-reduces sums
    eval_model = model if config.parallel == "ddp" else wrapped
    failed: list[tuple[str, object, BaseException]] = []  # (knob, what runs instead, why)
    if config.compile != "none":
        try:
            wrapped = torch.compile(wrapped, mode=None if config.compile == "default"
                                    else config.compile)
        except Exception as exc:  # e.g. a Python this torch cannot compile for
            failed.append(("compile", "none", exc))

    impl = config.optimizer_impl
    while True:
        try:
            optimizer = create_optimizer(model, config.optimizer, lr=plan.lr,
                                         momentum=config.momentum, weight_decay=config.weight_decay,
                                         impl=impl, capturable=config.cuda_graph)
            break
        except ImplRefused as exc:
            impl = fallback_impl(config.optimizer, impl)
            if impl is None:
                raise
            failed.append(("optimizer_impl", impl, exc))
    steps_per_epoch = len(train_loader)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    scheduler = create_scheduler(optimizer, config.scheduler,
                                 total_steps=config.epochs * steps_per_epoch,
                                 warmup_steps=config.warmup_epochs * steps_per_epoch)
    trainer = Trainer(
        config=config, plan=plan, device=device, dist=dist, task=task, data=data,
        train_loader=train_loader, val_loader=val_loader, model=wrapped, raw_model=model,
        eval_model=eval_model, optimizer=optimizer, scheduler=scheduler,
        precision=resolve_precision(config.precision, device), steps_per_epoch=steps_per_epoch,
        memory_format=memory_format)
    for knob, instead, exc in failed:
        trainer._fall_back(knob, instead, exc)
    if resume_state is not None:
        checkpoint.load(trainer, ckpt_path, resume_state)
    return trainer


class Trainer:
    """One training run's state: its parts (built by :func:`build_trainer`), the
    next epoch to run and the records of the epochs run so far."""

    def __init__(self, *, config: TrainConfig, plan: Plan, device: torch.device, dist: DistInfo,
                 task, data, train_loader, val_loader, model: torch.nn.Module,
                 raw_model: torch.nn.Module, eval_model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, scheduler, precision: Precision,
                 steps_per_epoch: int, memory_format: torch.memory_format) -> None:
        self.config, self.plan, self.device, self.dist = config, plan, device, dist
        self.task, self.data = task, data
        self.train_loader, self.val_loader = train_loader, val_loader
        self.model, self.raw_model, self.eval_model = model, raw_model, eval_model
        self.optimizer, self.scheduler, self.precision = optimizer, scheduler, precision
        self.steps_per_epoch = steps_per_epoch
        self.memory_format = memory_format
        self.epoch = 0  # the next epoch to run
        self.records: list[EpochRecord] = []
        self._compile_s: float | None = None  # the first compiled step, compilation included
        self.ran = {knob: getattr(config, knob) for knob in STEP_KNOBS}  # the step that runs
        self.fallbacks: list[dict] = []  # {"knob", "from", "to", "why"}, in order
        self.step_graph = None
        if config.cuda_graph:
            self.step_graph = GraphedStep(self)

    @property
    def step_mode(self) -> dict:
        """The step asked for, the step that ran and each fallback between them with its
        reason (``extra_info["step_mode"]``; ``--metrics-json``)."""
        return {"asked": {knob: getattr(self.config, knob) for knob in STEP_KNOBS},
                "ran": dict(self.ran), "fallbacks": [dict(f) for f in self.fallbacks]}

    def _fall_back(self, knob: str, instead, exc: BaseException) -> None:
        """Record that ``knob`` failed on this machine (``exc``) and ``instead`` runs."""
        self.fallbacks.append({"knob": knob, "from": _step_name(knob, self.ran[knob]),
                               "to": _step_name(knob, instead), "why": _why(exc)})
        self.ran[knob] = instead

    @property
    def setup_s(self) -> dict[str, float]:
        """One-off setup seconds, kept apart from the epochs: ``compile_s`` (the first compiled
        step), ``graph_warmup_s`` and ``capture_s`` (the CUDA graph's), once they happened."""
        out = {} if self._compile_s is None else {"compile_s": self._compile_s}
        g = self.step_graph
        if g is not None and g.capture_s is not None:
            out.update(graph_warmup_s=g.warmup_s, capture_s=g.capture_s)
        return out

    # the plan's figures under the names the CLI and the perf suite print
    @property
    def model_name(self) -> str:
        return self.plan.model

    @property
    def lr(self) -> float:
        return self.plan.lr

    @property
    def global_batch(self) -> int:
        return self.plan.global_batch

    @property
    def devices(self) -> int:
        return self.plan.devices

    # -------------------------------------------------------------- steps --

    def _next_batch(self, batches, sums: _Sums):
        """The next batch on the device, its wait added to the data wait; None at the end."""
        wait_start = time.perf_counter()
        with record_function("data_wait"):  # a labelled range in profiler traces
            batch = next(batches, None)
        if batch is not None:
            inputs, targets = batch
            batch = (inputs.to(self.device, non_blocking=True, memory_format=self.memory_format),
                     targets.to(self.device, non_blocking=True))
        sums.data_wait += time.perf_counter() - wait_start
        return batch

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor, sums: _Sums) -> None:
        """One training step in the configured mode (eager or graphed); the host's time to
        issue it is kept, and the first compiled step's time is the compile time. A failed
        capture, or a failed first compiled step (or one past ``--compile-budget``), falls back
        and runs the batch again."""
        first_compiled = self._compile_s is None and self.ran["compile"] != "none"
        if first_compiled:
            timing.synchronize(self.device)
        start = time.perf_counter()
        try:
            if self.step_graph is not None:
                self.step_graph(inputs, targets, sums)
            elif first_compiled and self.config.compile_budget:
                with compile_budget(self.config.compile_budget, self.config.compile,
                                    self.optimizer):
                    self._train_step(inputs, targets, sums)
            else:
                self._train_step(inputs, targets, sums)
        except CaptureFailed as exc:
            self.step_graph = None
            self.optimizer.zero_grad(set_to_none=True)  # gradients the failed capture allocated
            self._fall_back("cuda_graph", False, exc)
        except (Exception, CompileBudgetExceeded) as exc:
            if not first_compiled:
                raise
            self.model = getattr(self.model, "_orig_mod", self.model)  # torch.compile's module
            self._fall_back("compile", "none", _budget_cause(exc) or exc)
        else:
            sums.host.append(time.perf_counter() - start)
            if first_compiled:
                self._compile_s = timing.now(self.device) - start
            return
        # the same batch again, in the next honest step (out of the handler: the failed step's
        # tensors are freed first); an error that was not the mode's fails it again
        self._step(inputs, targets, sums)

    def _train_step(self, inputs: torch.Tensor, targets: torch.Tensor, sums: _Sums) -> None:
        # a graphed run keeps autocast's cache off in every step, as its capture must
        with self.precision.autocast(cache_enabled=self.step_graph is None), \
                record_function("forward"):
            logits = self.model(inputs)
            loss = self.task.loss(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        sums.skipped += self.precision.backward_and_step(loss, self.optimizer)
        self.scheduler.step()

        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        sums.bad_losses += (~finite).long()
        sums.loss += torch.where(finite, loss, 0.0) * len(inputs)
        hits, tried = self.task.hits(logits.detach(), targets)
        sums.correct += hits
        sums.trials += tried
        sums.images += len(inputs)
        sums.steps += 1

    # ------------------------------------------------------------ epochs --

    def train_epoch(self, on_step: OnStep | None = None) -> EpochRecord:
        """Train the next epoch; append its record (validation fields empty), advance
        ``self.epoch`` and return the record."""
        device = self.device
        self.model.train()
        self.train_loader.set_epoch(self.epoch)
        sums = _Sums(device)
        lr = self.optimizer.param_groups[0]["lr"]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        clock = timing.StepClock(device)
        start = timing.now(device)
        clock.mark()
        batches = iter(self.train_loader)
        while sums.steps < self.steps_per_epoch:
            batch = self._next_batch(batches, sums)
            if batch is None:
                break
            self._step(*batch, sums)
            clock.mark()  # no sync: a CUDA event, read after the epoch
            if on_step is not None:
                on_step(sums.steps, sums.images, sums.data_wait)
            if sums.steps % _NAN_CHECK_EVERY == 0:
                if self.step_graph is not None:
                    self.step_graph.drain(sums)  # the replays' counts, on the device
                self._check_finite(sums.bad_losses, sums.steps)
        wall = timing.now(device) - start

        if self.step_graph is not None:
            self.step_graph.drain(sums)
        record = self._epoch_record(sums, wall, lr)
        record.step_s = timing.step_quantiles(clock.seconds())
        record.host_step_s = float(np.median(sums.host)) if sums.host else None
        self.records.append(record)
        self.epoch += 1
        return record

    def _epoch_record(self, sums: _Sums, wall: float, lr: float) -> EpochRecord:
        self._check_finite(sums.bad_losses, sums.steps)
        mem, mem_kind = peak_memory(self.device)
        # Under DDP: sums over ranks, the slowest rank's wall time, the mean wait.
        loss_total, correct_n, trials_n, images, bad, skipped_n, data_wait = all_reduce_sum(
            [float(sums.loss), float(sums.correct), float(sums.trials), sums.images,
             float(sums.bad_losses), float(sums.skipped), sums.data_wait], self.device)
        wall, mem = all_reduce_max([wall, float(mem)], self.device)
        data_wait /= self.dist.world_size
        images, bad, steps_all = int(images), int(bad), sums.steps * self.dist.world_size
        return EpochRecord(
            epoch=self.epoch, images=images, steps=sums.steps, wall_s=wall,
            data_wait_s=min(data_wait, wall), compute_s=max(wall - data_wait, 0.0),
            images_per_s=images / wall if wall > 0 else 0.0,
            loss=loss_total / max(images, 1) if bad < steps_all else math.nan,
            train_acc=correct_n / max(trials_n, 1), lr=lr,
            peak_mem_bytes=int(mem), peak_mem_kind=mem_kind, skipped_steps=int(skipped_n),
        )

    def run_steps(self, steps: int, on_step: OnStep | None = None) -> StepsDone:
        """Train ``steps`` steps, continuing into new passes over the data as needed
        (each pass at most ``steps_per_epoch``). No record is kept and ``self.epoch``
        does not move: this is for tools that watch steps (the profiler)."""
        self.model.train()
        sums = _Sums(self.device)
        passes = 0
        start = timing.now(self.device)
        while sums.steps < steps:
            self.train_loader.set_epoch(self.epoch + passes)
            batches, in_pass = iter(self.train_loader), 0
            while sums.steps < steps and in_pass < self.steps_per_epoch:
                batch = self._next_batch(batches, sums)
                if batch is None:
                    break
                self._step(*batch, sums)
                in_pass += 1
                if on_step is not None:
                    on_step(sums.steps, sums.images, sums.data_wait)
            if in_pass == 0:
                raise TrainingError("the training loader yielded no batch")
            passes += 1
        wall = timing.now(self.device) - start
        if self.step_graph is not None:
            self.step_graph.drain(sums)
        self._check_finite(sums.bad_losses, sums.steps)
        return StepsDone(steps=sums.steps, images=sums.images, wall_s=wall,
                         data_wait_s=sums.data_wait)

    def _check_finite(self, bad_losses: torch.Tensor, steps: int) -> None:
        # note: reading the counter is a CPU-GPU sync point, hence only every N steps
        bad = int(bad_losses)
        if bad == 0:
            return
        if self.precision.uses_scaler and bad < steps:
            return  # fp16 overflow: the scaler skips those steps and lowers its scale
        fixes = "lower --learning-rate or add --warmup-epochs"
        if self.config.precision != "fp32":
            fixes += ", or use --precision fp32"
        if self.config.pretrained not in (None, "timm"):
            fixes += f"; check --pretrained {self.config.pretrained}"
        raise TrainingError(
            f"the loss became NaN/Inf in epoch {self.epoch + 1} ({bad} of {steps} steps, "
            f"--precision {self.config.precision}, --learning-rate {self.lr:g}); {fixes}")

    @torch.no_grad()
    def evaluate(self) -> tuple[float | None, float | None, float]:
        """(val_loss, val_acc, seconds) on the validation split; Nones if it has none."""
        if self.val_loader is None:
            return None, None, 0.0
        model = self.eval_model
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        trials = torch.zeros((), device=self.device, dtype=torch.long)
        n = 0
        with timing.Region(self.device) as region:
            for inputs, targets in self.val_loader:
                inputs = inputs.to(self.device, non_blocking=True, memory_format=self.memory_format)
                targets = targets.to(self.device, non_blocking=True)
                with self.precision.autocast():
                    logits = model(inputs)
                    loss_sum += self.task.loss(logits, targets).float() * len(inputs)
                hits, tried = self.task.hits(logits, targets)
                correct += hits
                trials += tried
                n += len(inputs)
            loss_total, correct_n, trials_n, n = all_reduce_sum(
                [float(loss_sum), float(correct), float(trials), n], self.device)
        (seconds,) = all_reduce_max([region.seconds], self.device)
        return loss_total / n, correct_n / max(trials_n, 1), seconds

    def validate(self, record: EpochRecord) -> EpochRecord:
        """Fill ``record``'s validation fields (once)."""
        if record.val_acc is None:
            record.val_loss, record.val_acc, record.eval_s = self.evaluate()
        return record

    def run_epoch(self, on_step: OnStep | None = None) -> EpochRecord:
        """Train the next epoch, validate when due, checkpoint; returns the full record."""
        record = self.train_epoch(on_step)
        if self.epoch % self.config.eval_every == 0 or self.epoch == self.config.epochs:
            self.validate(record)
        if self.config.checkpoint_dir and self.dist.is_main:  # one writer
            self.save_checkpoint(Path(self.config.checkpoint_dir) / CHECKPOINT_NAME)
        return record

    def fit(self, on_epoch: Callable[[EpochRecord], None] | None = None,
            on_step: OnStep | None = None) -> list[EpochRecord]:
        """Run the remaining epochs (all of them, or the rest after ``--resume``)."""
        while self.epoch < self.config.epochs:
            record = self.run_epoch(on_step)
            if on_epoch is not None:
                on_epoch(record)
        return self.records

    # ------------------------------------------------------- checkpoints --

    def save_checkpoint(self, path: Path) -> None:
        checkpoint.save(self, path)

    def load_checkpoint(self, path: Path) -> None:
        if self.step_graph is not None and self.step_graph.graph is not None:
            raise TrainingError("a checkpoint cannot be loaded into a run whose step is already "
                                "captured in a CUDA graph (the graph would keep updating the "
                                "old optimizer state): load it before the first step")
        checkpoint.load(self, path)
