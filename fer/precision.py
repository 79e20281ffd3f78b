"""Mixed precision, resolved once: the training step never branches on it.

``fp32``      no autocast, no scaler
``amp_fp16``  autocast to float16 with a GradScaler (skipped steps are counted)
``amp_bf16``  autocast to bfloat16; bfloat16 has fp32's range, so no scaler

A disabled GradScaler is a no-op (``scale(loss)`` returns the loss, ``step``
calls ``optimizer.step()``), so one code path serves all three.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from fer.config import PRECISIONS
from fer.errors import ConfigError

_DTYPES = {"fp32": None, "amp_fp16": torch.float16, "amp_bf16": torch.bfloat16}


@dataclass
class Precision:
    name: str
    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    @property
    def uses_scaler(self) -> bool:
        return self.scaler.is_enabled()


def resolve_precision(name: str, device: torch.device | str) -> Precision:
    if name not in PRECISIONS:
        raise ConfigError(f"--precision {name!r} is not one of: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if name == "amp_bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision amp_bf16: {torch.cuda.get_device_name(device)} has no "
                          "bfloat16 support; use amp_fp16")
    scaler = torch.amp.GradScaler(device.type, enabled=name == "amp_fp16")
    return Precision(name, device.type, _DTYPES[name], scaler)
