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
from collections import Counter
from collections.abc import Callable
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


def _read(call: Callable, default="unknown"):
    """``call()``, or ``default`` where NVML does not answer (not supported, no permission)."""
    try:
        return call()
    except Exception:
        return default


def _clock_settings(nvml, handle) -> dict:
    """How one GPU's clocks are set, as far as NVML reads them back: applications clocks
    against their defaults, the clock offsets, persistence mode, the power limit."""
    out: dict = {}
    for name, clock in (("sm", nvml.NVML_CLOCK_SM), ("mem", nvml.NVML_CLOCK_MEM)):
        for key, call in ((f"applications_{name}_mhz", nvml.nvmlDeviceGetApplicationsClock),
                          (f"default_applications_{name}_mhz",
                           nvml.nvmlDeviceGetDefaultApplicationsClock),
                          (f"max_{name}_mhz", nvml.nvmlDeviceGetMaxClockInfo)):
            value = _read(lambda call=call, clock=clock: int(call(handle, clock)), None)
            if value is not None:
                out[key] = value
    pairs = [(out.get(f"applications_{n}_mhz"), out.get(f"default_applications_{n}_mhz"))
             for n in ("sm", "mem")]
    out["applications_clocks"] = ("unknown" if any(None in p for p in pairs) else
                                  "default" if all(a == d for a, d in pairs) else "set")
    # NVML sets locked clocks (nvidia-smi -lgc / -lmc) but has no call that reads them back
    out["locked_clocks"] = "unknown"
    for key, call in (("gpc_clock_offset_mhz", "nvmlDeviceGetGpcClkVfOffset"),
                      ("mem_clock_offset_mhz", "nvmlDeviceGetMemClkVfOffset")):
        value = _read(lambda call=call: int(getattr(nvml, call)(handle)), None)
        if value is not None:
            out[key] = value
    mode = _read(lambda: int(nvml.nvmlDeviceGetPersistenceMode(handle)), None)
    out["persistence_mode"] = "unknown" if mode is None else ("on" if mode else "off")
    limit = _read(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000, None)  # mW
    if limit is not None:
        out["power_limit_w"] = limit
    return out


def gpu_facts() -> dict:
    """The visible GPUs' UUIDs, serials and clock settings, for the run's ``machine_info``:
    ``{"gpu_uuids": [...], "gpu_serials": [...], "gpu_clocks": [{...} per GPU]}``, "unknown"
    where NVML does not answer; ``{}`` without NVML. fer reads the settings, never changes them."""
    nvml = _nvml()
    if nvml is None:
        return {}
    out: dict = {}
    with suppress(Exception):
        handles = [nvml.nvmlDeviceGetHandleByIndex(i)
                   for i in _visible_indices(nvml.nvmlDeviceGetCount())]
        if handles:
            out["gpu_uuids"] = [_read(lambda h=h: _text(nvml.nvmlDeviceGetUUID(h))) for h in handles]
            out["gpu_serials"] = [_read(lambda h=h: _text(nvml.nvmlDeviceGetSerial(h)))
                                  for h in handles]
            out["gpu_clocks"] = [_clock_settings(nvml, h) for h in handles]
    with suppress(Exception):
        nvml.nvmlShutdown()
    return out


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


#: the clock event ("throttle") reasons of nvml.h by bit, the same in every driver
THROTTLE_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
                    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
                    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
                    0x100: "display_clock_setting", 0x200: "board_limit", 0x400: "reliability"}

#: what a sample reads beside utilisation and memory, each summarised as min/median/max
_SERIES: dict[str, Callable] = {
    "sm_clock_mhz": lambda nvml, h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM),
    "mem_clock_mhz": lambda nvml, h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM),
    "temperature_c": lambda nvml, h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
    "power_w": lambda nvml, h: nvml.nvmlDeviceGetPowerUsage(h) / 1000,  # milliwatts
}


def reason_names(mask: int) -> list[str]:
    """The names of the reasons set in an NVML clock event bitmask (an unknown bit by its value)."""
    return [THROTTLE_REASONS.get(1 << i, hex(1 << i)) for i in range(mask.bit_length())
            if mask >> i & 1]


def _event_reasons(nvml, handle) -> int:
    """The active clock event reasons: the call of current drivers, else its older name."""
    try:
        return int(nvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
    except Exception:  # an older driver or nvidia-ml-py
        return int(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


class UtilizationSampler:
    """Samples GPU utilisation, memory, SM and memory clocks, temperature, power and the
    clock event (throttle) reasons in a background thread.

    ``with UtilizationSampler(device) as s: ...`` then ``s.summary()``. On a
    machine without NVML it samples nothing and the summary is ``{}``.
    """

    def __init__(self, device: torch.device | str = "cuda", interval_s: float = 0.2) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.samples = 0
        self.util: list[float] = []
        self.mem: list[int] = []
        self.series: dict[str, list[float]] = {key: [] for key in _SERIES}
        self.reasons: Counter[str] = Counter()  # samples in which each reason was active
        self.reason_samples = 0  # samples whose reasons NVML answered
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
            self.sample()

    def sample(self) -> None:
        """One sample of every reading, each apart: a card without a power sensor still
        gives its clocks."""
        nvml, handle = self._nvml, self._handle
        self.samples += 1
        with suppress(Exception):
            self.util.append(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        with suppress(Exception):
            self.mem.append(int(nvml.nvmlDeviceGetMemoryInfo(handle).used))
        for key, read in _SERIES.items():
            with suppress(Exception):
                self.series[key].append(float(read(nvml, handle)))
        with suppress(Exception):
            self.reasons.update(reason_names(_event_reasons(nvml, handle)))
            self.reason_samples += 1

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._nvml is not None:
            with suppress(Exception):
                self._nvml.nvmlShutdown()

    def summary(self) -> dict:
        """Utilisation (mean, median), the most memory used, ``{"min", "median", "max"}`` of
        each of ``_SERIES``, and ``throttle_reasons``: the names of the clock event reasons
        seen in any sample (``throttle_reason_samples``: in how many); ``{}`` when nothing
        was read."""
        out: dict = {}
        if self.util:
            out.update(gpu_util_mean_pct=statistics.fmean(self.util),
                       gpu_util_median_pct=statistics.median(self.util))
        if self.mem:
            out["gpu_mem_used_max_bytes"] = max(self.mem)
        for key, values in self.series.items():
            if values:
                out[key] = {"min": min(values), "median": statistics.median(values),
                            "max": max(values)}
        if self.reason_samples:
            out["throttle_reasons"] = sorted(self.reasons)
            out["throttle_reason_samples"] = dict(sorted(self.reasons.items()))
        if out:
            out["gpu_samples"] = self.samples
        return out
