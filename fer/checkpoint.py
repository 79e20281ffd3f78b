"""Checkpoints: a run's whole state in one file, written atomically, read safely.

A checkpoint holds the model, optimizer, scheduler and GradScaler states, the
epoch records, the config and the RNG states, so that a resumed run continues
bit for bit. ``torch.load(..., weights_only=True)`` means a file can never run
code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fer.atomic import atomic_open
from fer.bench.records import EpochRecord
from fer.errors import ConfigError

if TYPE_CHECKING:
    from fer.engine import Trainer

log = logging.getLogger(__name__)


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


def load(trainer: Trainer, path: Path) -> None:
    """Restore the run's state from ``path`` (weights_only: a file cannot run code)."""
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
    if state["model_name"] != trainer.model_name:
        raise ConfigError(f"{path}: is a checkpoint of {state['model_name']}, not "
                          f"--model {trainer.model_name}")
    trainer.raw_model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.precision.scaler.load_state_dict(state["scaler"])
    trainer.records = [EpochRecord.from_dict(r) for r in state["records"]]
    trainer.epoch = int(state["epoch"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    log.info("resumed from %s at epoch %d", path, trainer.epoch)
