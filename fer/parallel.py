"""wrap(model, mode): single device or DataParallel.

Returns ``(model_to_train, raw_model)``; the raw model is what gets saved.
With ``dp`` the batch a loader yields is split across ``devices`` GPUs, so the
engine asks the loader for ``batch_size x devices`` images (``batch_size`` is
per device, as in the study's scaling experiments).
"""

from __future__ import annotations

import torch
from torch import nn

from fer.errors import ConfigError


def visible_cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def wrap(model: nn.Module, mode: str, *, device: torch.device,
         devices: int | None = None) -> tuple[nn.Module, nn.Module]:
    if mode == "none":
        return model, model
    if mode == "dp":
        available = visible_cuda_devices()
        wanted = devices or available
        if device.type != "cuda" or available == 0:
            raise ConfigError("--parallel dp needs CUDA GPUs and this machine has none visible; "
                              "use --parallel none (or --device cuda on a GPU machine)")
        if wanted > available:
            raise ConfigError(f"--devices {wanted}: only {available} CUDA device(s) visible; "
                              f"use --devices {available} or fewer")
        first = device.index or 0
        ids = list(range(first, first + wanted))
        if ids[-1] >= available:
            raise ConfigError(f"--device {device} with --devices {wanted} needs GPUs "
                              f"{ids[0]}..{ids[-1]}, but only {available} are visible")
        return nn.DataParallel(model, device_ids=ids, output_device=ids[0]), model
    raise ConfigError(f"--parallel {mode!r} is not one of: none, dp")


def device_count(mode: str, devices: int | None) -> int:
    """How many devices a step runs on (the factor from per-device to global batch)."""
    if mode == "dp":
        return devices or max(visible_cuda_devices(), 1)
    return 1
