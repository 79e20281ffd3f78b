"""wrap(model, mode): one device, DataParallel, or DistributedDataParallel.

``wrap`` returns ``(model_to_train, raw_model)``; the raw model is what gets
saved. ``batch_size`` is per device in every mode: DataParallel splits a batch
of ``batch_size x devices`` across its GPUs; under DDP each process loads its
own ``batch_size`` from its shard of the data.

DDP is launched by torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; :func:`init_distributed` reads them and joins the
process group (NCCL on CUDA, gloo on CPU). If one rank dies, torchrun stops the
others; the process group's ``timeout`` bounds any collective as a backstop.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from fer.errors import ConfigError

log = logging.getLogger(__name__)

#: the values of --parallel: none, DataParallel, DistributedDataParallel
PARALLEL_MODES = ("none", "dp", "ddp")
TORCHRUN_HINT = "torchrun --nproc_per_node=N -m fer train --parallel ddp ..."
DEFAULT_TIMEOUT_S = 300


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank 0 of 1 when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()


def visible_cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return DistInfo()


def init_distributed(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[
        DistInfo, torch.device]:
    """Join torchrun's process group; returns this rank's info and device."""
    if not launched_by_torchrun():
        raise ConfigError(f"--parallel ddp needs torchrun to start one process per device: "
                          f"{TORCHRUN_HINT}")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= visible_cuda_devices():
            raise ConfigError(f"torchrun started local rank {local_rank} but only "
                              f"{visible_cuda_devices()} CUDA device(s) are visible; lower "
                              "--nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    info = dist_info()
    log.debug("rank %d of %d on %s (%s)", info.rank, info.world_size, device, backend)
    return info, device


def shutdown_distributed(wait_for_peers: bool = True) -> None:
    """Leave the process group. After a normal run every rank first waits for the
    others: a rank tearing gloo down while a peer is still writing its outputs can
    abort the peer ("terminate called without an active exception"). After an
    error nobody waits; torchrun stops the others."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, mode: str, *, device: torch.device,
         devices: int | None = None) -> tuple[nn.Module, nn.Module]:
    if mode == "none":
        return model, model
    if mode == "dp":
        available = visible_cuda_devices()
        wanted = devices or available
        if device.type != "cuda" or available == 0:
            raise ConfigError("--parallel dp needs CUDA GPUs and this machine has none visible; "
                              "use --parallel none, or --parallel ddp under torchrun (gloo runs "
                              "on CPUs)")
        if wanted > available:
            raise ConfigError(f"--devices {wanted}: only {available} CUDA device(s) visible; "
                              f"use --devices {available} or fewer")
        first = device.index or 0
        ids = list(range(first, first + wanted))
        if ids[-1] >= available:
            raise ConfigError(f"--device {device} with --devices {wanted} needs GPUs "
                              f"{ids[0]}..{ids[-1]}, but only {available} are visible")
        return nn.DataParallel(model, device_ids=ids, output_device=ids[0]), model
    if mode == "ddp":
        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError(f"--parallel ddp: no process group; launch with {TORCHRUN_HINT}")
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids), model
    raise ConfigError(f"--parallel {mode!r} is not one of: {', '.join(PARALLEL_MODES)}")


def device_count(mode: str, devices: int | None) -> int:
    """How many devices one step runs on (the factor from per-device to global batch)."""
    if mode == "dp":
        return devices or max(visible_cuda_devices(), 1)
    if mode == "ddp":
        return dist_info().world_size
    return 1


def _all_reduce(values: list[float], device: torch.device, op) -> list[float]:
    if not dist_info().enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=op)
    return t.tolist()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over all ranks (identity when not distributed)."""
    return _all_reduce(values, device, dist.ReduceOp.SUM)


def all_reduce_max(values: list[float], device: torch.device) -> list[float]:
    """The largest value of each number over all ranks (identity when not distributed)."""
    return _all_reduce(values, device, dist.ReduceOp.MAX)
