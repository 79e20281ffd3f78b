"""GPU facts and live sampling through NVML (the ``pynvml`` module of nvidia-ml-py).

Everything here degrades quietly on a machine without NVIDIA GPUs: the
functions return empty results instead of raising.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import statistics
import threading
from contextlib import suppress

import torch

log = logging.getLogger(__name__)


def _nvml():
    try:
        import pynvml  # lazy: NVML, timm and torchvision only when asked (pynvml is optional)

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no GPU
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible_indices(count: int) -> list[int]:
    """NVML indices of the GPUs CUDA_VISIBLE_DEVICES exposes (all when unset)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return list(range(count)) if visible is None else []
    out = []
    for item in visible.split(","):
        item = item.strip()
        if item.isdigit() and int(item) < count:
            out.append(int(item))
    return out


def gpu_info() -> dict:
    """GPU name, count, memory, driver, CUDA and cuDNN versions; ``{}`` without GPUs."""
    info: dict = {}
    nvml = _nvml()
    if nvml is not None:
        with suppress(Exception):
            handles = [nvml.nvmlDeviceGetHandleByIndex(i)
                       for i in _visible_indices(nvml.nvmlDeviceGetCount())]
            if handles:
                info["gpu_count"] = len(handles)
                info["gpu_names"] = [_text(nvml.nvmlDeviceGetName(h)) for h in handles]
                info["gpu_name"] = info["gpu_names"][0]
                info["gpu_memory_bytes"] = int(nvml.nvmlDeviceGetMemoryInfo(handles[0]).total)
                info["driver_version"] = _text(nvml.nvmlSystemGetDriverVersion())
                with suppress(Exception):
                    v = nvml.nvmlSystemGetCudaDriverVersion()
                    info["cuda_driver_version"] = f"{v // 1000}.{v % 1000 // 10}"
        with suppress(Exception):
            nvml.nvmlShutdown()
    if torch.cuda.is_available():
        info.setdefault("gpu_count", torch.cuda.device_count())
        info.setdefault("gpu_name", torch.cuda.get_device_name(0))
        info["cuda_runtime"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def software_info() -> dict:
    import timm  # lazy: NVML, timm and torchvision only when asked (pynvml is optional)
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    with suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown-cpu"


def hardware_class(info: dict | None = None) -> str:
    """A folder-safe name for the hardware: ``NVIDIA_H100_80GB_HBM3-x1`` or ``cpu-<model>-<n>c``.

    Benchmark runs are stored per hardware class so a comparison never mixes machines.
    """
    info = gpu_info() if info is None else info
    if info.get("gpu_count"):
        name = f"{info['gpu_name']}-x{info['gpu_count']}"
    else:
        name = f"cpu-{cpu_model()}-{os.cpu_count()}c"
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")


class UtilizationSampler:
    """Samples GPU utilisation and memory in a background thread.

    ``with UtilizationSampler(device) as s: ...`` then ``s.summary()``. On a
    machine without NVML it samples nothing and the summary is ``{}``.
    """

    def __init__(self, device: torch.device | str = "cuda", interval_s: float = 0.2) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.util: list[float] = []
        self.mem: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml = None
        self._handle = None

    def __enter__(self) -> UtilizationSampler:
        if self.device.type != "cuda":
            return self
        self._nvml = _nvml()
        if self._nvml is None:
            return self
        try:
            nvml_count = self._nvml.nvmlDeviceGetCount()
            index = _visible_indices(nvml_count)[self.device.index or 0]
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:
            return self
        self._thread = threading.Thread(target=self._run, name="fer-gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with suppress(Exception):
                self.util.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
                self.mem.append(int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._nvml is not None:
            with suppress(Exception):
                self._nvml.nvmlShutdown()

    def summary(self) -> dict:
        if not self.util:
            return {}
        return {"gpu_util_mean_pct": statistics.fmean(self.util),
                "gpu_util_median_pct": statistics.median(self.util),
                "gpu_mem_used_max_bytes": max(self.mem), "gpu_samples": len(self.util)}
