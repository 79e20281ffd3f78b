"""Optimizers from one registry, learning-rate schedules and linear scaling.

The registry's names are the allowed values of ``--optimizer``; importing this
module does not import torch (the CLI reads the names cheaply), building an
optimizer does.

``--optimizer-impl`` picks how torch runs the update, never what it computes:
``auto`` (torch's own choice: foreach on CUDA), ``forloop`` (one parameter at a
time: a few kernels per parameter), ``foreach`` (multi-tensor kernels over lists
of parameters) or ``fused`` (one kernel for the whole update; Adam, AdamW, SGD
and Adagrad). Support is read from the installed torch's optimizer signatures,
so a torch that lacks an implementation is refused with a clear message; one that
torch refuses when it builds the optimizer on this machine (a device or dtype its
kernel lacks) raises :class:`ImplRefused`, and the engine falls back to
:func:`fallback_impl`'s (fused -> foreach -> auto) and records it.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class OptimizerSpec:
    class_name: str  # in torch.optim
    default_lr: float
    uses_momentum: bool = False  # --momentum applies
    options: tuple[tuple[str, object], ...] = ()  # fixed keyword arguments (nesterov)

    def torch_class(self):
        import torch  # lazy: torch only when an optimizer is built: the CLI reads the registry

        return getattr(torch.optim, self.class_name)

    def supports(self, keyword: str) -> bool:
        """Whether the installed torch's optimizer takes ``keyword`` (fused, capturable...)."""
        return keyword in inspect.signature(self.torch_class().__init__).parameters


#: name -> the torch optimizer and its default learning rate. The study's names.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("SGD", 0.05),
    "sgd_momentum": OptimizerSpec("SGD", 0.05, uses_momentum=True),
    "sgd_nesterov": OptimizerSpec("SGD", 0.05, uses_momentum=True, options=(("nesterov", True),)),
    "adam": OptimizerSpec("Adam", 1e-3),
    "adamw": OptimizerSpec("AdamW", 1e-3),
    "rmsprop": OptimizerSpec("RMSprop", 1e-3, uses_momentum=True),
    "adagrad": OptimizerSpec("Adagrad", 1e-2),
    "adadelta": OptimizerSpec("Adadelta", 1.0),
}

def graphable() -> tuple[str, ...]:
    """The optimizers a whole-step CUDA graph can capture in the installed torch: SGD (no
    step count) and those built ``capturable`` (their step count lives on the device)."""
    return tuple(n for n, spec in OPTIMIZERS.items()
                 if spec.class_name == "SGD" or spec.supports("capturable"))


#: --optimizer-impl: how the update runs (see the module's docstring)
OPTIMIZER_IMPLS = ("auto", "forloop", "foreach", "fused")
#: what each implementation passes to the torch optimizer
_IMPL_KWARGS = {"auto": {}, "forloop": {"foreach": False}, "foreach": {"foreach": True},
                "fused": {"fused": True}}


class ImplRefused(ConfigError):
    """torch refused an ``--optimizer-impl`` while building the optimizer on this machine
    (its cause is torch's error); the engine falls back to :func:`fallback_impl`'s."""


def fallback_impl(name: str, impl: str) -> str | None:
    """The next honest implementation when torch refuses ``impl`` for ``--optimizer name``:
    fused -> foreach (auto, torch's default, where the optimizer has no foreach) -> auto."""
    after = {"fused": "foreach", "foreach": "auto"}.get(impl)
    return "auto" if after == "foreach" and not OPTIMIZERS[name].supports("foreach") else after


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


def impl_kwargs(name: str, impl: str = "auto", *, capturable: bool = False) -> dict:
    """The keyword arguments ``--optimizer NAME --optimizer-impl IMPL`` passes to torch
    (``capturable`` for a step captured in a CUDA graph); a ConfigError where the installed
    torch's optimizer has no such implementation."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"--optimizer {name!r} is not one of: {', '.join(OPTIMIZERS)}")
    if impl not in OPTIMIZER_IMPLS:
        raise ConfigError(f"--optimizer-impl {impl!r} is not one of: {', '.join(OPTIMIZER_IMPLS)}")
    spec = OPTIMIZERS[name]
    kwargs = dict(_IMPL_KWARGS[impl])
    for keyword in kwargs:
        if not spec.supports(keyword):
            import torch  # lazy: torch only when an optimizer is built: the CLI reads the registry

            able = [n for n in OPTIMIZERS if OPTIMIZERS[n].supports(keyword)]
            raise ConfigError(f"--optimizer-impl {impl}: torch {torch.__version__} has no {impl} "
                              f"{spec.class_name} (--optimizer {name}); {impl} exists for "
                              f"{', '.join(able) or 'none'}; use --optimizer-impl foreach or auto")
    if capturable and spec.supports("capturable"):
        kwargs["capturable"] = True  # the step counter lives on the device, no host sync
    return kwargs


def create_optimizer(model: nn.Module, name: str, *, lr: float | None = None,
                     momentum: float = 0.9, weight_decay: float = 0.0, impl: str = "auto",
                     capturable: bool = False) -> torch.optim.Optimizer:
    kwargs = impl_kwargs(name, impl, capturable=capturable)
    spec = OPTIMIZERS[name]
    lr = spec.default_lr if lr is None else lr
    if spec.uses_momentum:
        kwargs["momentum"] = momentum
    kwargs.update(spec.options)
    try:
        return spec.torch_class()(param_groups(model, weight_decay), lr=lr,
                                  weight_decay=weight_decay, **kwargs)
    except (RuntimeError, ValueError) as exc:  # e.g. fused on a device torch has no kernel for
        said = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ImplRefused(f"--optimizer {name} --optimizer-impl {impl}: torch refused it "
                          f"({said}); use --optimizer-impl auto") from exc


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
    import torch  # lazy: torch only when an optimizer is built: the CLI reads the registry

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
