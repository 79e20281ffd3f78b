"""Mixed precision, resolved once: the training step never branches on it.

``fp32``      no autocast, no scaler
``amp_fp16``  autocast to float16 with a GradScaler (skipped steps are counted)
``amp_bf16``  autocast to bfloat16; bfloat16 has fp32's range, so no scaler

A disabled GradScaler is a no-op (``scale(loss)`` returns the loss, ``step``
calls ``optimizer.step()``), so one code path serves all three. Importing this
module does not import torch: :data:`PRECISIONS` is the registry ``--precision``
takes its choices from.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: name -> the autocast dtype (a torch attribute name), None for full precision
PRECISIONS: dict[str, str | None] = {"fp32": None, "amp_fp16": "float16", "amp_bf16": "bfloat16"}


@dataclass
class Precision:
    name: str
    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self, cache_enabled: bool = True):
        """The precision's autocast (a no-op for fp32). ``cache_enabled=False`` inside a CUDA
        graph capture, as PyTorch requires (the cast cache would outlive the capture)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        import torch  # lazy: torch only when a precision is resolved: the CLI reads the registry

        return torch.autocast(device_type=self.device_type, dtype=self.dtype,
                              cache_enabled=cache_enabled)

    @property
    def uses_scaler(self) -> bool:
        return self.scaler.is_enabled()

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> bool:
        """Backward through the (scaled) loss and step the optimizer; True when the
        GradScaler skipped the step (an fp16 overflow). Never true without a scaler."""
        # lazy: torch only when a precision is resolved: the CLI reads the registry
        from torch.profiler import record_function  # labelled ranges in profiler traces

        if not self.uses_scaler:
            with record_function("backward"):
                loss.backward()
            with record_function("optimizer_step"):
                optimizer.step()
            return False
        # note: GradScaler.step already syncs to read found_inf; get_scale() adds no new stall
        before = self.scaler.get_scale()
        with record_function("backward"):
            self.scaler.scale(loss).backward()
        with record_function("optimizer_step"):
            self.scaler.step(optimizer)
            self.scaler.update()
        return self.scaler.get_scale() < before  # the scaler lowers its scale exactly when it skips


def resolve_precision(name: str, device: torch.device | str) -> Precision:
    import torch  # lazy: torch only when a precision is resolved: the CLI reads the registry

    if name not in PRECISIONS:
        raise ConfigError(f"--precision {name!r} is not one of: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if name == "amp_bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision amp_bf16: {torch.cuda.get_device_name(device)} has no "
                          "bfloat16 support; use amp_fp16")
    scaler = torch.amp.GradScaler(device.type, enabled=name == "amp_fp16")
    dtype = getattr(torch, PRECISIONS[name]) if PRECISIONS[name] else None
    return Precision(name, device.type, dtype, scaler)
