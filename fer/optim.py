"""Optimizers from one registry, learning-rate schedules and linear scaling.

The registry's names are the allowed values of ``--optimizer``; importing this
module does not import torch (the CLI reads the names cheaply), building an
optimizer does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class OptimizerSpec:
    factory: Callable[..., torch.optim.Optimizer]  # (params, lr, momentum, weight_decay)
    default_lr: float
    uses_momentum: bool = False


def _sgd(params, lr, momentum, weight_decay):
    import torch

    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def _momentum(params, lr, momentum, weight_decay):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _nesterov(params, lr, momentum, weight_decay):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True,
                           weight_decay=weight_decay)


def _simple(class_name: str):
    def make(params, lr, momentum, weight_decay):
        import torch

        cls = getattr(torch.optim, class_name)
        return cls(params, lr=lr, weight_decay=weight_decay)
    return make


def _rmsprop(params, lr, momentum, weight_decay):
    import torch

    return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


#: name -> how to build it and its default learning rate. The study's names.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd, 0.05),
    "sgd_momentum": OptimizerSpec(_momentum, 0.05, uses_momentum=True),
    "sgd_nesterov": OptimizerSpec(_nesterov, 0.05, uses_momentum=True),
    "adam": OptimizerSpec(_simple("Adam"), 1e-3),
    "adamw": OptimizerSpec(_simple("AdamW"), 1e-3),
    "rmsprop": OptimizerSpec(_rmsprop, 1e-3, uses_momentum=True),
    "adagrad": OptimizerSpec(_simple("Adagrad"), 1e-2),
    "adadelta": OptimizerSpec(_simple("Adadelta"), 1.0),
}


#: per-step learning-rate schedules (--scheduler) and batch-size scaling rules (--lr-scaling)
SCHEDULERS = ("none", "step", "cosine")
LR_SCALINGS = ("none", "linear")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay on weights, none on 1-D params (biases, norm scales)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def scaled_lr(base_lr: float, global_batch: int, base_batch: int, rule: str) -> float:
    """The linear scaling rule (Goyal et al. 2017): lr grows with the global batch."""
    if rule == "none":
        return base_lr
    if rule == "linear":
        return base_lr * global_batch / base_batch
    raise ConfigError(f"--lr-scaling {rule!r} is not one of: {', '.join(LR_SCALINGS)}")


def create_optimizer(model: nn.Module, name: str, *, lr: float | None = None,
                     momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ConfigError(f"--optimizer {name!r} is not one of: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    lr = spec.default_lr if lr is None else lr
    return spec.factory(param_groups(model, weight_decay), lr, momentum, weight_decay)


def create_scheduler(optimizer: torch.optim.Optimizer, name: str, *, total_steps: int,
                     warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule: linear warm-up, then constant, step (x0.1 at 1/2 and 3/4) or cosine."""
    total_steps = max(total_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if name == "step":
            return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
        return 1.0

    if name not in SCHEDULERS:
        raise ConfigError(f"--scheduler {name!r} is not one of: {', '.join(SCHEDULERS)}")
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
