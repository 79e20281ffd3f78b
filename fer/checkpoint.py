"""Checkpoints: a run's whole state in one file, written atomically, read safely.

A checkpoint holds the model, optimizer, scheduler and GradScaler states, the
epoch records, the config and the RNG states, so that a resumed run continues
bit for bit. ``torch.load(..., weights_only=True)`` means a file can never run
code.

Resume cannot lose work or silently change a run:

* a fresh run (no ``--resume``) into a folder holding a checkpoint is refused,
  naming its epoch: pass ``--resume`` to continue it or ``--overwrite`` to start
  over (:func:`check_fresh_run`);
* ``--resume`` compares the checkpoint's config with the new one. The fields in
  :data:`MAY_CHANGE_ON_RESUME` may differ: where the outputs go, how data is fed
  (workers, loader, pinning), ``--device``/``--compile``, ``--epochs`` and
  ``--eval-every`` (more epochs continue the run; the schedule follows the new
  total) and ``--learning-rate`` (put in force on load: every parameter group
  and the schedule's base rate take the new value). Any other difference
  (``--optimizer``, ``--model``, the data, the class count, ``--seed``, ...)
  refuses to resume, naming each field as ``--optimizer sgd (checkpoint: adam)``;
* a checkpoint lacking keys, or whose tensors do not fit the model or the
  optimizer, is a :class:`~fer.errors.ConfigError` naming the file, never a
  ``KeyError`` or a ``load_state_dict`` traceback;
* temporary files of a write that a kill interrupted (``.last.pt.*.tmp``) are
  removed at the start of the next run (:func:`clean_stale_temporaries`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fer.atomic import atomic_open, remove_stale_temporaries
from fer.config import flag
from fer.errors import ConfigError
from fer.records import EpochRecord

if TYPE_CHECKING:
    from fer.engine import Trainer

log = logging.getLogger(__name__)

#: the file a run's state is saved in, under --checkpoint-dir
CHECKPOINT_NAME = "last.pt"

#: TrainConfig fields that may differ between a checkpoint and the run resuming it
MAY_CHANGE_ON_RESUME = frozenset({
    "epochs", "eval_every", "checkpoint_dir", "resume", "overwrite", "metrics_json", "run_dir",
    "device", "compile", "num_workers", "loader", "pin_memory", "persistent_workers",
    "prefetch_factor", "learning_rate", "optimizer_impl", "cuda_graph",
})
#: what a checkpoint must hold
REQUIRED_KEYS = ("format", "model_name", "epoch", "model", "optimizer", "scheduler", "scaler",
                 "records", "config", "torch_rng", "cuda_rng")


def clean_stale_temporaries(path: Path) -> None:
    """Remove what a write killed mid-way left beside ``path`` (``.last.pt.*.tmp``)."""
    for tmp in remove_stale_temporaries(path):
        log.info("removed %s, left by an interrupted checkpoint write", tmp)


def _read(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: refused or unreadable checkpoint ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); it must hold "
                          "plain tensors and values, as fer writes them") from None
    if not isinstance(state, dict) or state.get("format") != 1:
        raise ConfigError(f"{path}: not a fer checkpoint; pass the --checkpoint-dir of a fer "
                          "run, or --overwrite to start a new run there")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ConfigError(f"{path}: the checkpoint lacks {', '.join(missing)} (damaged or "
                          "written by another program); start a new run with --overwrite")
    if not isinstance(state["epoch"], int) or state["epoch"] < 0 or \
            not isinstance(state["config"], dict) or not isinstance(state["records"], list):
        raise ConfigError(f"{path}: the checkpoint's epoch, config or records are malformed; "
                          "start a new run with --overwrite")
    return state


def check_fresh_run(config) -> None:
    """Refuse a run without --resume into a folder holding a checkpoint, unless --overwrite."""
    if not config.checkpoint_dir or config.resume or config.overwrite:
        return
    path = Path(config.checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        return
    try:
        what = f"a checkpoint after epoch {int(_read(path)['epoch'])}"
    except ConfigError:
        what = "a file that is not a readable checkpoint"
    raise ConfigError(f"--checkpoint-dir {config.checkpoint_dir}: holds {what} ({path}); "
                      "pass --resume to continue that run, or --overwrite to replace it")


def _show(name: str, value) -> str:
    return "default" if value is None else str(value)


def config_changes(saved: dict, config) -> list[str]:
    """``--flag new (checkpoint: old)`` for each field that differs and may not change."""
    out = []
    new = config.to_dict()
    for name, value in new.items():
        if name in MAY_CHANGE_ON_RESUME or name not in saved:
            continue
        if saved[name] != value:
            out.append(f"{flag(name)} {_show(name, value)} (checkpoint: "
                       f"{_show(name, saved[name])})")
    return out


def save(trainer: Trainer, path: Path) -> None:
    """Write the run's whole state to ``path`` (atomically: a kill never tears it)."""
    state = {
        "format": 1,
        "model_name": trainer.model_name,
        "epoch": trainer.epoch,
        "model": trainer.raw_model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.precision.scaler.state_dict(),
        "records": [r.to_dict() for r in trainer.records],
        "config": trainer.config.to_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    try:
        with atomic_open(path) as f:
            torch.save(state, f)
    except OSError as exc:
        raise ConfigError(f"--checkpoint-dir: cannot write {path} ({exc.strerror})") from None


def check_resume(config, path: Path) -> dict:
    """The checkpoint at ``path``, read and checked against ``config`` before any work."""
    if not path.is_file():
        raise ConfigError(f"--resume: no checkpoint at {path}; train once with "
                          f"--checkpoint-dir {path.parent} first")
    state = _read(path)
    changes = config_changes(state["config"], config)
    if changes:
        raise ConfigError(f"--resume: {path} was trained with another configuration: "
                          f"{', '.join(changes)}; resume with the checkpoint's values, or start "
                          "a new run with --overwrite (or another --checkpoint-dir)")
    if state["epoch"] >= config.epochs:
        raise ConfigError(f"--resume: {path} already ran {state['epoch']} epochs; pass "
                          f"--epochs above {state['epoch']} to train on")
    return state


def load(trainer: Trainer, path: Path, state: dict | None = None) -> None:
    """Restore the run's state from ``path`` (weights_only: a file cannot run code)."""
    state = state if state is not None else check_resume(trainer.config, path)
    if state["model_name"] != trainer.model_name:
        raise ConfigError(f"{path}: is a checkpoint of {state['model_name']}, not "
                          f"--model {trainer.model_name}")
    try:
        trainer.raw_model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.precision.scaler.load_state_dict(state["scaler"])
        records = [EpochRecord.from_dict(r) for r in state["records"]]
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: the checkpoint does not fit this run ({type(exc).__name__}: "
                          f"{first[:200]}); resume with the configuration it was trained with, "
                          "or start a new run with --overwrite") from None
    trainer.records = records
    trainer.epoch = int(state["epoch"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    _apply_learning_rate(trainer)
    log.info("resumed from %s at epoch %d", path, trainer.epoch)


def _apply_learning_rate(trainer: Trainer) -> None:
    """Put this run's learning rate in force (it may differ from the checkpoint's):
    the schedule's base rate and every parameter group's current rate."""
    lr = trainer.plan.lr
    scheduler = trainer.scheduler
    scheduler.base_lrs = [lr for _ in scheduler.base_lrs]
    factors = [f(scheduler.last_epoch) for f in scheduler.lr_lambdas]
    for group, factor in zip(trainer.optimizer.param_groups, factors):
        group["initial_lr"] = lr
        group["lr"] = lr * factor
    scheduler._last_lr = [g["lr"] for g in trainer.optimizer.param_groups]
