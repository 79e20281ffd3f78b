"""The training engine: epochs timed and split into data-wait and compute.

``Trainer(config).fit()`` returns one :class:`EpochRecord` per epoch. The perf
tests call ``Trainer.train_epoch`` as their timed function, so a benchmark
round is exactly one training epoch of one continuing run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer import timing
from fer.atomic import atomic_open
from fer.config import TrainConfig
from fer.data import FERData
from fer.errors import ConfigError, FERError
from fer.optim import OPTIMIZERS, create_optimizer, create_scheduler, scaled_lr
from fer.parallel import (
    DistInfo,
    all_reduce_max,
    all_reduce_sum,
    device_count,
    init_distributed,
    wrap,
)
from fer.precision import resolve_precision
from fer.tasks import make_task

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
# A GradScaler that skips an overflowing fp16 step also skips optimizer.step();
# the schedule still advances one step, which is what we want: not a mistake.
warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
_NAN_CHECK_EVERY = 50  # steps between checks for a diverged loss (each check syncs)


class TrainingError(FERError):
    """The run cannot go on (the loss diverged, a checkpoint does not fit)."""


@dataclass
class EpochRecord:
    """What one epoch measured. The one record type the CLI, the perf tests,
    the comparer and the charts all speak (see docs)."""

    epoch: int
    images: int
    steps: int
    wall_s: float
    data_wait_s: float
    compute_s: float
    images_per_s: float
    loss: float
    train_acc: float
    lr: float
    peak_mem_bytes: int
    peak_mem_kind: str  # "cuda_max_allocated" or "process_peak_rss"
    skipped_steps: int = 0
    val_loss: float | None = None
    val_acc: float | None = None
    eval_s: float | None = None

    @property
    def data_wait_share(self) -> float:
        """The study's "data-loading ratio": data-wait time over epoch time."""
        return self.data_wait_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "data_wait_share": self.data_wait_share}

    @classmethod
    def from_dict(cls, d: dict) -> EpochRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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


class Trainer:
    """One training run: data, model, optimizer and precision built from a config."""

    def __init__(self, config: TrainConfig, data: FERData | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dist = DistInfo()
        if config.parallel == "ddp":
            self.dist, self.device = init_distributed(self.device)
        seed_everything(config.seed)
        self.task = make_task(config)
        self.data = data if data is not None else self.task.load_data(config, self.device.type)
        train, val = self.data.split("train"), self.data.split("val")
        if len(train) == 0:
            raise ConfigError(f"{self.data.source}: has no training rows (Usage 'Training')")
        self.task.check_data(train, self.data)
        self.devices = device_count(config.parallel, config.devices)
        self.global_batch = config.batch_size * self.devices
        loader_args = dict(
            loader=config.loader, device=self.device, num_workers=config.num_workers,
            pin_memory=self.device.type == "cuda" if config.pin_memory is None else config.pin_memory,
            persistent_workers=config.persistent_workers, prefetch_factor=config.prefetch_factor,
            seed=config.seed, image_size=config.image_size if config.image_size != 48 else None,
            rank=self.dist.rank, world_size=self.dist.world_size,
        )
        # one loader batch is what one process feeds its model(s): under DDP each
        # process loads batch_size; DataParallel splits batch_size x devices
        loader_batch = self.global_batch // self.dist.world_size
        self.train_loader = self.task.make_loader(train, train=True, batch_size=loader_batch,
                                                  **loader_args)
        self.val_loader = self.task.make_loader(val, train=False, batch_size=max(loader_batch, 256),
                                                **loader_args)

        self.model_name = config.resolved_model(self.device.type)
        model = self.task.build_model(self.model_name, self.data, config)
        model.to(self.device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(memory_format=self.memory_format)
        self.raw_model = model
        self.model, _ = wrap(model, config.parallel, device=self.device, devices=config.devices)
        # DDP's forward syncs buffers across ranks; shards of the validation set
        # differ in length, so evaluation runs the bare model and all-reduces sums
        self.eval_model = model if config.parallel == "ddp" else self.model
        if config.compile:
            self.model = torch.compile(self.model)

        base_lr = config.learning_rate or OPTIMIZERS[config.optimizer].default_lr
        self.lr = scaled_lr(base_lr, self.global_batch, config.base_batch_size, config.lr_scaling)
        self.optimizer = create_optimizer(model, config.optimizer, lr=self.lr,
                                          momentum=config.momentum, weight_decay=config.weight_decay)
        self.steps_per_epoch = len(self.train_loader)
        if config.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_steps_per_epoch)
        self.scheduler = create_scheduler(
            self.optimizer, config.scheduler, total_steps=config.epochs * self.steps_per_epoch,
            warmup_steps=config.warmup_epochs * self.steps_per_epoch)
        self.precision = resolve_precision(config.precision, self.device)
        self.epoch = 0  # the next epoch to run
        self.records: list[EpochRecord] = []
        #: called as ``on_step(steps_done, images_done, data_wait_s)`` after each
        #: step when set (the CLI's progress bar); None in benchmarks.
        self.on_step: Callable[[int, int, float], None] | None = None
        if config.resume:
            self.load_checkpoint(Path(config.checkpoint_dir) / CHECKPOINT_NAME)

    # ------------------------------------------------------------ epochs --

    def train_epoch(self) -> EpochRecord:
        """Train one epoch; returns its record (validation fields empty)."""
        model, device, precision = self.model, self.device, self.precision
        scaler = precision.scaler
        model.train()
        self.train_loader.set_epoch(self.epoch)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        trials = torch.zeros((), device=device, dtype=torch.long)
        bad_losses = torch.zeros((), device=device, dtype=torch.long)
        skipped = torch.zeros((), device=device, dtype=torch.long)
        images = steps = 0
        data_wait = 0.0
        lr = self.optimizer.param_groups[0]["lr"]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        start = timing.now(device)
        batches = iter(self.train_loader)
        while steps < self.steps_per_epoch:
            wait_start = time.perf_counter()
            try:
                inputs, targets = next(batches)
            except StopIteration:
                break
            inputs = inputs.to(device, non_blocking=True, memory_format=self.memory_format)
            targets = targets.to(device, non_blocking=True)
            data_wait += time.perf_counter() - wait_start

            with precision.autocast():
                logits = model(inputs)
                loss = self.task.loss(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            scaled = scaler.scale(loss)
            scale_before = scaler._scale.clone() if precision.uses_scaler else None
            scaled.backward()
            scaler.step(self.optimizer)
            scaler.update()
            if scale_before is not None:  # the scaler lowers its scale exactly when it skips
                skipped += (scaler._scale < scale_before).long()
            self.scheduler.step()

            loss = loss.detach().float()
            finite = torch.isfinite(loss)
            bad_losses += (~finite).long()
            loss_sum += torch.where(finite, loss, 0.0) * len(inputs)
            hits, tried = self.task.hits(logits.detach(), targets)
            correct += hits
            trials += tried
            images += len(inputs)
            steps += 1
            if self.on_step is not None:
                self.on_step(steps, images, data_wait)
            if steps % _NAN_CHECK_EVERY == 0:
                self._check_finite(bad_losses, steps)
        wall = timing.now(device) - start

        self._check_finite(bad_losses, steps)
        mem, mem_kind = peak_memory(device)
        # Under DDP: sums over ranks, the slowest rank's wall time, the mean wait.
        loss_total, correct_n, trials_n, images, bad, skipped_n, data_wait = all_reduce_sum(
            [float(loss_sum), float(correct), float(trials), images, float(bad_losses),
             float(skipped), data_wait], device)
        wall, mem = all_reduce_max([wall, float(mem)], device)
        data_wait /= self.dist.world_size
        images, bad, steps_all = int(images), int(bad), steps * self.dist.world_size
        return EpochRecord(
            epoch=self.epoch, images=images, steps=steps, wall_s=wall,
            data_wait_s=min(data_wait, wall), compute_s=max(wall - data_wait, 0.0),
            images_per_s=images / wall if wall > 0 else 0.0,
            loss=loss_total / max(images, 1) if bad < steps_all else math.nan,
            train_acc=correct_n / max(trials_n, 1), lr=lr,
            peak_mem_bytes=int(mem), peak_mem_kind=mem_kind, skipped_steps=int(skipped_n),
        )

    def _check_finite(self, bad_losses: torch.Tensor, steps: int) -> None:
        # note: reading the counter is a CPU-GPU sync point, hence only every N steps
        bad = int(bad_losses)
        if bad == 0:
            return
        if self.precision.uses_scaler and bad < steps:
            return  # fp16 overflow: the scaler skips those steps and lowers its scale
        raise TrainingError(
            f"the loss became NaN/Inf in epoch {self.epoch} ({bad} of {steps} steps, "
            f"--precision {self.config.precision}, --learning-rate {self.lr:g}); lower "
            "--learning-rate, add --warmup-epochs, or use --precision fp32")

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

    def run_epoch(self) -> EpochRecord:
        """Train the next epoch, evaluate when due, checkpoint; returns the full record."""
        record = self.train_epoch()
        last = self.epoch + 1 == self.config.epochs
        if (self.epoch + 1) % self.config.eval_every == 0 or last:
            record.val_loss, record.val_acc, record.eval_s = self.evaluate()
        self.records.append(record)
        self.epoch += 1
        if self.config.checkpoint_dir and self.dist.is_main:  # one writer
            self.save_checkpoint(Path(self.config.checkpoint_dir) / CHECKPOINT_NAME)
        return record

    def fit(self, on_epoch: Callable[[EpochRecord], None] | None = None) -> list[EpochRecord]:
        """Run the remaining epochs (all of them, or the rest after ``--resume``)."""
        while self.epoch < self.config.epochs:
            record = self.run_epoch()
            if on_epoch is not None:
                on_epoch(record)
        return self.records

    # ------------------------------------------------------- checkpoints --

    def save_checkpoint(self, path: Path) -> None:
        state = {
            "format": 1,
            "model_name": self.model_name,
            "epoch": self.epoch,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "records": [r.to_dict() for r in self.records],
            "config": self.config.to_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        try:
            with atomic_open(path) as f:
                torch.save(state, f)
        except OSError as exc:
            raise ConfigError(f"--checkpoint-dir: cannot write {path} ({exc.strerror})") from None

    def load_checkpoint(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"--resume: no checkpoint at {path}; train once with "
                              f"--checkpoint-dir {path.parent} first")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"{path}: refused or unreadable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); it must hold "
                              "plain tensors and values, as fer writes them") from None
        if not isinstance(state, dict) or state.get("format") != 1:
            raise ConfigError(f"{path}: not a fer checkpoint")
        if state["model_name"] != self.model_name:
            raise ConfigError(f"{path}: is a checkpoint of {state['model_name']}, not "
                              f"--model {self.model_name}")
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.scaler.load_state_dict(state["scaler"])
        self.records = [EpochRecord.from_dict(r) for r in state["records"]]
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resumed from %s at epoch %d", path, self.epoch)
