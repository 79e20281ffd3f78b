"""Reading benchmark runs: pytest-benchmark JSON in, :class:`Run` and :class:`Bench` out.

Reads what pytest-benchmark 3.x to 5.x writes — saved runs under
``.benchmarks/`` and ``--benchmark-json`` files. This module is **the one schema
check** of benchmark JSON: every reader (``fer compare``, ``fer report``, the
charts, the dashboard) gets its runs from :func:`load_run` or
:func:`load_history`, and nothing downstream re-checks types or values. Each
benchmark's ``extra_info`` is read into schema 2
(:func:`fer.records.upgrade_extra_info`) once, here, so every later layer
reads ``experiment`` and ``params`` the same way for old and new runs.

What is checked where the file enters (:func:`validate_payload`):

* the file is UTF-8 JSON (deep nesting that overflows the parser is a bad file,
  not a ``RecursionError``), an object with a non-empty ``benchmarks`` list;
* ``machine_info``, ``machine_info.fer``, ``machine_info.cpu``, ``commit_info``
  are objects (or absent); ``datetime``/``version`` strings; ``fer_skipped`` a list;
* each benchmark: an object with a string ``name`` (``fullname`` and ``group``
  strings when present, fullnames unique in the file), ``stats`` an object whose
  ``median`` — and every raw round time in ``stats.data`` — is a number of
  seconds in ``(0, MAX_ROUND_S]``: NaN, infinities, zero, negatives, booleans
  and absurd values (1e308) are refused; ``stats.rounds`` a count >= 1;
* ``extra_info`` an object (or absent/null); in it ``summary`` an object of
  finite numbers (or nulls), with ``median_wall_s`` in ``(0, MAX_ROUND_S]``;
  ``records`` a list of epoch records, each holding every field of
  :class:`~fer.records.EpochRecord` with a value of its type (finite
  non-negative timings; ``loss`` may be NaN, a diverged epoch); ``params``,
  ``config``, ``scale``, ``categories`` objects; the known parameters
  (``num_workers``, ``batch_size``, ``devices``, ...) of their type.

``MAX_ROUND_S`` is 1e6 s (11.6 days): one timed epoch of this suite takes
seconds to minutes, so a longer round is a damaged file, and the bound keeps
every ratio and logarithm of the statistics finite.

The policy on a bad file:

* a file named explicitly (``fer compare A.json B.json``, ``fer report A.json``)
  raises :class:`BenchmarkFileError` (a :class:`~fer.errors.FERError`: exit 2
  from the CLI, one line) naming the file, the benchmark, the field, the value
  and the fix — the user asked for that file, so it is never skipped;
* a bad file found while reading a history folder (:func:`load_history`) is
  skipped with one warning line giving the same message: one damaged file must
  not block a history, but it is never silently misread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fer.errors import FERError, printable
from fer.records import EpochRecord, summarize, timed, upgrade_extra_info

log = logging.getLogger(__name__)


class CompareError(FERError):
    """Runs that cannot be compared (nothing to read, different machines)."""


@dataclass
class Bench:
    """One benchmark of a run: its timings and its ``extra_info`` (schema 2)."""

    fullname: str
    name: str
    group: str | None
    median: float  # median round (epoch) time, seconds
    data: list[float] | None  # raw round times, when saved (--benchmark-save-data)
    extra_info: dict

    def __post_init__(self) -> None:
        self.extra_info = upgrade_extra_info(self.extra_info or {}, self.group)

    @property
    def experiment(self) -> str | None:
        """The registry name of the experiment (``fer.suite.experiments``), if any."""
        name = self.extra_info.get("experiment")
        return name if isinstance(name, str) else None

    @property
    def params(self) -> dict[str, Any]:
        """The factor values of this benchmark, e.g. ``{"num_workers": 4}``."""
        params = self.extra_info.get("params")
        return params if isinstance(params, dict) else {}

    @cached_property
    def records(self) -> list[EpochRecord]:
        """Every stored epoch, the warm-up first (empty when none were stored)."""
        out = []
        for i, raw in enumerate(self.extra_info.get("records") or []):
            try:
                out.append(EpochRecord.from_dict(raw))
            except (TypeError, AttributeError) as exc:
                raise ValueError(f"{self.fullname}: extra_info.records[{i}] is not an epoch "
                                 f"record ({exc})") from None
        return out

    @property
    def summary(self) -> dict:
        """The stored medians; a key the run did not store is computed from the records
        (and the median epoch time is the benchmark's median when neither holds it)."""
        stored = self.extra_info.get("summary")
        stored = stored if isinstance(stored, dict) else {}
        out = {**summarize(self.records), **stored} if self.records else dict(stored)
        out.setdefault("median_wall_s", self.median)
        return out

    def metric(self, key: str) -> float | None:
        value = (self.extra_info.get("summary") or {}).get(key)
        return float(value) if _is_number(value) else None

    # -- the one reader of a stored benchmark's samples: stats, changepoints, explain, charts,
    # -- trends, the dashboard and benchmarks/ ask these, never extra_info's keys

    @cached_property
    def timed_records(self) -> list[dict]:
        """The timed epochs' records as stored (:func:`fer.records.timed`: no warm-up)."""
        return timed([r for r in (self.extra_info.get("records") or []) if isinstance(r, dict)])

    def epoch_times(self) -> list[float]:
        """The timed epochs' wall times, seconds: the engine's records, else pytest-benchmark's
        round times (older runs), else the median."""
        times = [float(r["wall_s"]) for r in self.timed_records if r.get("wall_s")]
        return times or list(self.data or []) or [self.median]

    def step_times(self) -> list[float] | None:
        """Per timed epoch, its typical step (the :data:`STEP_QUANTILE` of its step times) times
        its steps: an epoch time that a burst of a busy machine cannot move much. None when the
        records hold no step times (older runs)."""
        out = []
        for r in self.timed_records:
            steps = r.get("step_s")
            if not isinstance(steps, dict) or not steps.get(STEP_QUANTILE) or not steps.get("n"):
                return None
            out.append(float(steps[STEP_QUANTILE]) * int(steps["n"]))
        return out or None

    def excess_ratios(self) -> list[float] | None:
        """Per timed epoch, its wall time over its typical step x its steps: the part of the
        epoch the typical step does not explain (a stall in some steps, work after the step
        loop, the loader's waits), as a ratio the machine's speed cancels from. None without
        step times."""
        steps = self.step_times()
        if not steps:
            return None
        walls = [float(r["wall_s"]) for r in self.timed_records if r.get("wall_s")]
        if len(walls) != len(steps):
            return None
        return [w / s for w, s in zip(walls, steps)]

    def time_samples(self, kind: str) -> list[float]:
        """The time samples of ``kind`` ("step", "epoch" or "excess", see
        :func:`sample_kind`)."""
        if kind == "excess":
            return self.excess_ratios() or []
        return (self.step_times() or []) if kind == "step" else self.epoch_times()

    def throughputs(self) -> list[float]:
        """The timed epochs' images/s (older runs: the stored median)."""
        rates = [float(r["images_per_s"]) for r in self.timed_records if r.get("images_per_s")]
        if rates:
            return rates
        value = self.metric("median_images_per_s")
        return [value] if value else []

    def wait_shares(self) -> list[float]:
        """The timed epochs' data-wait shares (older runs: the stored median)."""
        shares = [float(r["data_wait_s"]) / float(r["wall_s"]) for r in self.timed_records
                  if r.get("wall_s") and r.get("data_wait_s") is not None]
        if shares:
            return shares
        value = self.metric("median_data_wait_share")
        return [value] if value is not None else []

    def timed_median(self, key: str) -> float | None:
        """The median of a per-epoch figure over the timed epochs (``host_step_s``, or a
        quantile of ``step_s`` as ``"step_s.median"``); None when no epoch holds it."""
        field_name, _, part = key.partition(".")
        values = []
        for r in self.timed_records:
            value = r.get(field_name)
            if part:
                value = value.get(part) if isinstance(value, dict) else None
            if _is_number(value) and value:
                values.append(float(value))
        return statistics.median(values) if values else None

    @property
    def calibration_s(self) -> float | None:
        """The median time of the reference workload measured beside this benchmark."""
        cal = self.extra_info.get("calibration")
        value = cal.get("median_s") if isinstance(cal, dict) else None
        return float(value) if _is_number(value) and value > 0 else None

    def _peak_memory(self, kind: str | None) -> int | None:
        peaks = [int(r["peak_mem_bytes"]) for r in self.extra_info.get("records") or []
                 if isinstance(r, dict) and _is_number(r.get("peak_mem_bytes"))
                 and r["peak_mem_bytes"] and kind in (None, r.get("peak_mem_kind"))]
        return max(peaks) if peaks else None

    @property
    def peak_cuda_memory(self) -> int | None:
        """Peak CUDA memory over the benchmark's epochs; None off CUDA (RSS is not a gate)."""
        return self._peak_memory("cuda_max_allocated")

    @property
    def peak_memory_bytes(self) -> int | None:
        """The largest peak memory of any epoch (CUDA, else the process's RSS)."""
        return self._peak_memory(None)

    def _object(self, key: str) -> dict:
        """``extra_info[key]`` where it is an object, else an empty one."""
        value = self.extra_info.get(key)
        return value if isinstance(value, dict) else {}

    #: what identifies a benchmark beyond its name: two benchmarks that differ in one of these
    #: measured different work and are never judged as one
    IDENTITY = ("scale", "task", "model", "image_size", "channels", "batch_size", "precision",
                "cuda_graph", "compile", "optimizer_impl", "devices", "synthetic_size")

    @property
    def identity(self) -> dict[str, Any]:
        """The configuration that identifies this benchmark's work (the resolved plan where it
        was stored, else the configuration; the step modes as they ran, where one fell back);
        keys a run did not store are absent."""
        plan = self._object("plan")
        ran = self._object("step_mode").get("ran")
        ran = ran if isinstance(ran, dict) else {}
        out: dict[str, Any] = {}
        if self.scale and self.scale.get("name"):
            out["scale"] = self.scale["name"]
        for key in self.IDENTITY[1:]:
            value = ran.get(key, plan.get(key, self.config.get(key)))
            if key == "devices":
                value = self.devices if (plan or self.config or self.params) else None
            if value is not None:
                out[key] = value
        return out

    @property
    def fallbacks(self) -> list[dict]:
        """The step modes that failed on the machine and fell back (``{"knob", "from", "to",
        "why"}``, ``extra_info["step_mode"]``); empty where none did or none was stored."""
        found = self._object("step_mode").get("fallbacks")
        return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []

    def differs_from(self, other: Bench) -> list[str]:
        """What makes ``other`` a different measurement: ``"model test_efficientnet ->
        efficientnet_b0"``, one entry per differing key both runs stored (``"cuda_graph True
        -> False (fell back)"`` where one of them ran another step than it asked for)."""
        a, b = other.identity, self.identity
        fell = {f.get("knob") for f in (*self.fallbacks, *other.fallbacks)}
        return [f"{key} {a[key]} -> {b[key]}" + (" (fell back)" if key in fell else "")
                for key in self.IDENTITY if key in a and key in b and a[key] != b[key]]

    @property
    def disturbed(self) -> str | None:
        """Why the suite judged this benchmark's measurement disturbed when it saved the run
        (``fer.suite.summary.disturbances``), else None."""
        value = self.extra_info.get("disturbed")
        return value if isinstance(value, str) and value else None

    @property
    def scale(self) -> dict | None:
        """The perf scale the benchmark ran at (name, model, device, ...)."""
        return self._object("scale") or None

    @property
    def config(self) -> dict:
        """The TrainConfig the benchmark ran (empty for runs that did not store it)."""
        return self._object("config")

    @property
    def device_type(self) -> str:
        """"cuda", "cpu" (from the resolved plan, else the device stored), or ""."""
        value = self._object("plan").get("device_type") or self.extra_info.get("device") or ""
        return str(value).split(":")[0]

    @property
    def devices(self) -> int:
        """Devices (DataParallel) or processes (DDP) the benchmark trained on."""
        n = self.params.get("world_size") or self.params.get("devices") \
            or self.extra_info.get("devices") or 1
        return int(n)

    @property
    def kernels_per_step(self) -> float | None:
        """CUDA kernels launched per profiled step (None off CUDA or unprofiled)."""
        value = self._object("step_breakdown").get("kernels_per_step")
        return float(value) if _is_number(value) else None

    @property
    def step_breakdown(self) -> dict | None:
        """The profiled steps after the timed epochs (ms per op category, ops per step)."""
        value = self._object("step_breakdown")
        return value if isinstance(value.get("ms_per_step"), dict) else None

    @property
    def counters(self) -> dict | None:
        """The exact per-step counts (``fer.counters``): ``{"per_step": {name: n}, "variation":
        {name: n}, "ops": {operator: n}}``, numbers only; None where none were counted."""
        found = self._object("counters")
        per_step = found.get("per_step")
        if not isinstance(per_step, dict):
            return None

        def numbers(value) -> dict[str, float]:
            if not isinstance(value, dict):
                return {}
            return {str(k): float(v) for k, v in value.items() if _is_number(v)}

        return {"per_step": numbers(per_step), "variation": numbers(found.get("variation")),
                "ops": numbers(found.get("ops"))}

    @property
    def gpu_sampling(self) -> dict:
        """NVML's samples during the benchmark's rounds (``fer.gpu.UtilizationSampler``):
        ``{"min", "median", "max"}`` of ``sm_clock_mhz``, ``mem_clock_mhz``,
        ``temperature_c`` and ``power_w`` where sampled, and ``throttle_reasons``, the names
        of the clock event reasons seen (absent where unread); ``{}`` off GPU or without NVML."""
        found = self._object("gpu_sampling")
        out: dict[str, Any] = {}
        for key in ("sm_clock_mhz", "mem_clock_mhz", "temperature_c", "power_w"):
            value = found.get(key)
            if isinstance(value, dict) and all(_finite(value.get(k)) for k in ("min", "median", "max")):
                out[key] = {k: float(value[k]) for k in ("min", "median", "max")}
        reasons = found.get("throttle_reasons")
        if isinstance(reasons, list):
            out["throttle_reasons"] = sorted({printable(str(r)) for r in reasons})
        return out


def short_name(name: str) -> str:
    """``test_x.py::test_epoch[adam]`` -> ``test_epoch[adam]``, printable: a control character
    (a newline in a crafted name could forge a line of the output) is shown escaped."""
    return printable(name.split("::")[-1])


#: the quantile of an epoch's step times that stands for the epoch in step samples
STEP_QUANTILE = "q25"
SAMPLE_KINDS = ("auto", "epoch", "step")
CALIBRATIONS = ("auto", "on", "off")


def sample_kind(benches: list[Bench], requested: str = "auto") -> str:
    """Which time samples judge these benchmarks (one benchmark across runs): "step" where
    every run recorded step times (auto), else "epoch" — the one rule of stats and
    changepoints."""
    have = all(b.step_times() for b in benches)
    if requested == "excess":  # asked for by stats only where every run has step times
        return "excess" if all(b.excess_ratios() for b in benches) else "epoch"
    if requested == "step" and not have:
        raise CompareError(f"sample step: {benches[0].fullname} has no step times in every run "
                           "(runs written before step timing); use sample auto")
    return "step" if requested in ("step", "auto") and have else "epoch"


def is_calibrated(benches: list[Bench], requested: str = "auto") -> bool:
    """Whether these benchmarks are judged relative to the reference workload: where every
    run recorded it, unless "off"."""
    have = all(b.calibration_s is not None for b in benches)
    if requested == "on" and not have:
        raise CompareError(f"calibration on: {benches[0].fullname} has no calibration in every "
                           "run (runs written before calibration, or by another harness); use "
                           "calibration auto")
    return have and requested != "off"


@dataclass
class Run:
    path: Path
    datetime: str
    version: str
    machine_info: dict
    commit_info: dict
    benchmarks: dict[str, Bench]
    skipped: list[dict] = field(default_factory=list)  # fer_skipped: {"test", "reason"}
    interrupted: bool = False  # the suite was stopped (Ctrl-C) before its end: incomplete
    digest: str = ""  # sha256 of the document as read

    @property
    def order_key(self) -> tuple:
        """Runs are ordered by their time (time zones honoured; a run without one by its file's
        modification time), then by file name."""
        when = None
        if self.datetime:
            try:
                when = dt.datetime.fromisoformat(self.datetime)
            except ValueError:
                when = None
        if when is None:
            try:
                when = dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.timezone.utc)
            except OSError:
                when = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return (when, self.path.name)

    @property
    def fingerprint(self) -> str:
        """What makes two files the same run: the same document (a copy, or one path twice)."""
        return self.digest or str(self.path.resolve())

    @property
    def label(self) -> str:
        commit = str((self.commit_info or {}).get("id") or "")
        is_hash = len(commit) >= 7 and all(ch in "0123456789abcdef" for ch in commit)
        return printable(self.path.name) + (f" ({commit[:8]})" if is_hash else "")

    @property
    def gpu_facts(self) -> dict:
        """The GPUs the run measured on, as the suite recorded them (``fer.gpu.gpu_facts``):
        ``uuids`` and ``serials`` (one string per GPU, "unknown" where NVML did not answer) and
        ``clocks`` (one dict of clock settings per GPU); ``{}`` for runs without them."""
        fer = (self.machine_info or {}).get("fer")
        fer = fer if isinstance(fer, dict) else {}
        out: dict[str, Any] = {}
        for key, name in (("gpu_uuids", "uuids"), ("gpu_serials", "serials")):
            if isinstance(fer.get(key), list):
                out[name] = [printable(str(v)) for v in fer[key]]
        if isinstance(fer.get("gpu_clocks"), list):
            out["clocks"] = [c if isinstance(c, dict) else {} for c in fer["gpu_clocks"]]
        return out


def machine_key(machine_info: dict) -> dict:
    """What must match for two runs to be comparable: hardware and software."""
    fer = machine_info.get("fer") or {}
    cpu = machine_info.get("cpu") or {}
    return {
        "hardware": fer.get("hardware_class") or cpu.get("brand_raw") or machine_info.get("machine"),
        "gpu": fer.get("gpu_name"), "gpu_count": fer.get("gpu_count"),
        "torch": fer.get("torch"), "cuda": fer.get("cuda_runtime"),
    }


#: the longest plausible round (one timed epoch), seconds: 1e6 s = 11.6 days
MAX_ROUND_S = 1e6
#: the largest plausible stored figure (bytes, images/s, counts): 1e15 (a petabyte)
MAX_VALUE = 1e15
#: figures that are shares or accuracies, in [0, 1]
_FRACTIONS = ("data_wait_share", "median_data_wait_share", "train_acc", "val_acc",
              "final_train_acc", "final_val_acc")

_FIX = ("re-run the suite to write it again, or remove the file (it is damaged or was not "
        "written by pytest-benchmark)")


class BenchmarkFileError(FERError, ValueError):
    """A benchmark JSON file that cannot be read, or breaks the schema (names file and field)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    try:
        return _is_number(value) and math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        return False


class _Checker:
    """Collects the path and the benchmark of the field being checked, for the message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = ""

    def fail(self, field_name: str, problem: str) -> BenchmarkFileError:
        return BenchmarkFileError(f"{self.path}: {self.where}{field_name} {problem}; {_FIX}")

    def object(self, value: Any, field_name: str, *, optional: bool = True) -> dict:
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field_name, f"is {_kind(value)}, not an object")
        return value

    def seconds(self, value: Any, field_name: str) -> float:
        if not _finite(value) or not 0 < float(value) <= MAX_ROUND_S:
            raise self.fail(field_name, f"is {_show(value)}; it must be a number of seconds in "
                                        f"(0, {MAX_ROUND_S:g}]")
        return float(value)

    def number(self, value: Any, field_name: str, *, low: float | None = 0.0,
               nan_ok: bool = False, none_ok: bool = False) -> None:
        if value is None and none_ok:
            return
        if nan_ok and isinstance(value, float) and math.isnan(value):
            return
        high = 1.0 if field_name.rsplit(".", 1)[-1] in _FRACTIONS else MAX_VALUE
        if not _finite(value) or (low is not None and float(value) < low) or \
                abs(float(value)) > high:
            bound = f" in [{low:g}, {high:g}]" if low is not None else f" within +-{high:g}"
            raise self.fail(field_name, f"is {_show(value)}; it must be a finite number{bound}")

    def integer(self, value: Any, field_name: str, low: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_VALUE:
            raise self.fail(field_name, f"is {_show(value)}; it must be an integer in "
                                        f"[{low}, {MAX_VALUE:g}]")

    def string(self, value: Any, field_name: str, *, optional: bool = True) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise self.fail(field_name, f"is {_kind(value)}, not a string")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: the EpochRecord fields every stored record must hold, and how each is checked
_RECORD_INTS = ("epoch", "images", "steps", "peak_mem_bytes")
_RECORD_TIMES = ("wall_s", "data_wait_s", "compute_s", "images_per_s", "train_acc", "lr")
_RECORD_OPTIONAL = ("val_loss", "val_acc", "eval_s")

#: benchmark parameters the charts and derived figures read, and their types
_PARAM_INTS = {"num_workers": 0, "batch_size": 1, "devices": 1, "per_device_batch": 1,
               "world_size": 1}
_PARAM_STRINGS = ("precision", "optimizer", "loader")


def _check_records(records: Any, c: _Checker) -> None:
    if records is None:
        return
    if not isinstance(records, list):
        raise c.fail("extra_info.records", f"is {_kind(records)}, not a list of epoch records")
    for i, r in enumerate(records):
        name = f"extra_info.records[{i}]"
        if not isinstance(r, dict):
            raise c.fail(name, f"is {_kind(r)}, not an epoch record (an object)")
        required = (*_RECORD_INTS, *_RECORD_TIMES, "loss", "peak_mem_kind")
        missing = [k for k in required if k not in r]
        if missing:
            raise c.fail(name, f"lacks {', '.join(missing)} (an epoch record holds "
                               f"{', '.join(required)})")
        for k in _RECORD_INTS:
            c.integer(r[k], f"{name}.{k}", 0)
        for k in _RECORD_TIMES:
            c.number(r[k], f"{name}.{k}")
        c.number(r["loss"], f"{name}.loss", low=None, nan_ok=True)
        c.string(r["peak_mem_kind"], f"{name}.peak_mem_kind", optional=False)
        if "skipped_steps" in r:
            c.integer(r["skipped_steps"], f"{name}.skipped_steps", 0)
        for k in _RECORD_OPTIONAL:
            c.number(r.get(k), f"{name}.{k}", none_ok=True, nan_ok=k == "val_loss")
        steps = r.get("step_s")
        if steps is not None:
            c.object(steps, f"{name}.step_s", optional=False)
            for k, value in steps.items():
                if k == "n":
                    c.integer(value, f"{name}.step_s.n", 1)
                else:
                    c.seconds(value, f"{name}.step_s.{k}")


def _check_calibration(extra: dict, c: _Checker) -> None:
    cal = extra.get("calibration")
    if cal is None:
        return
    c.object(cal, "extra_info.calibration", optional=False)
    if cal.get("median_s") is not None:
        c.seconds(cal["median_s"], "extra_info.calibration.median_s")
    samples = cal.get("samples_s")
    if samples is not None:
        if not isinstance(samples, list):
            raise c.fail("extra_info.calibration.samples_s", f"is {_kind(samples)}, not a list")
        for i, x in enumerate(samples):
            c.seconds(x, f"extra_info.calibration.samples_s[{i}]")


def _check_extra_info(extra: dict, c: _Checker) -> None:
    _check_calibration(extra, c)
    summary = extra.get("summary")
    if summary is not None:
        c.object(summary, "extra_info.summary")
        for key, value in summary.items():
            if key == "median_wall_s":
                c.seconds(value, "extra_info.summary.median_wall_s")
            elif key == "final_loss":
                c.number(value, f"extra_info.summary.{key}", low=None, nan_ok=True, none_ok=True)
            else:
                c.number(value, f"extra_info.summary.{key}", none_ok=True)
    _check_records(extra.get("records"), c)
    for key in ("params", "config", "scale", "categories", "gpu_sampling"):
        c.object(extra.get(key), f"extra_info.{key}")
    c.string(extra.get("experiment"), "extra_info.experiment")
    for key, value in (extra.get("categories") or {}).items():
        c.number(value, f"extra_info.categories.{key}")
    if "devices" in extra and extra["devices"] is not None:
        c.integer(extra["devices"], "extra_info.devices", 1)
    batch = (extra.get("config") or {}).get("batch_size")
    if batch is not None:
        c.integer(batch, "extra_info.config.batch_size", 1)
    for key in ("overhead_ratio",):
        if key in extra:
            c.number(extra[key], f"extra_info.{key}", none_ok=True)
    for key in ("time_basis", "dominant_category", "disturbed"):
        c.string(extra.get(key), f"extra_info.{key}")


def _check_params(params: dict, c: _Checker) -> None:
    for key, low in _PARAM_INTS.items():
        if params.get(key) is not None:
            c.integer(params[key], f"extra_info.params.{key}", low)
    for key in _PARAM_STRINGS:
        c.string(params.get(key), f"extra_info.params.{key}")


def _read_bench(raw: Any, i: int, c: _Checker) -> Bench:
    c.where = f"benchmarks[{i}]: "
    if not isinstance(raw, dict):
        raise c.fail("", f"is {_kind(raw)}, not a benchmark (an object)")
    c.string(raw.get("name"), "name", optional=False)
    c.string(raw.get("fullname"), "fullname")
    fullname = raw.get("fullname") or raw["name"]
    c.where = f"benchmark {fullname!r}: "
    c.string(raw.get("group"), "group")
    if "stats" not in raw:
        raise c.fail("stats", "is missing (the timings of the benchmark)")
    stats = c.object(raw["stats"], "stats", optional=False)
    if "median" not in stats:
        raise c.fail("stats.median", "is missing (the median round time)")
    median = c.seconds(stats["median"], "stats.median")
    if "rounds" in stats:
        c.integer(stats["rounds"], "stats.rounds", 1)
    data = stats.get("data")
    if data is not None and not isinstance(data, list):
        raise c.fail("stats.data", f"is {_kind(data)}, not a list of round times")
    rounds = [c.seconds(x, f"stats.data[{j}]") for j, x in enumerate(data or [])]
    extra = c.object(raw.get("extra_info"), "extra_info")
    _check_extra_info(extra, c)
    bench = Bench(fullname=fullname, name=raw["name"], group=raw.get("group"), median=median,
                  data=rounds or None, extra_info=extra)
    _check_params(c.object(bench.extra_info.get("params"), "extra_info.params"), c)
    return bench


def validate_payload(payload: Any, path: Path) -> Run:
    """The :class:`Run` of a parsed benchmark JSON document, or :class:`BenchmarkFileError`
    naming the first field that breaks the schema (see the module's docstring)."""
    c = _Checker(path)
    if not isinstance(payload, dict):
        raise c.fail("the document", f"is {_kind(payload)}, not a pytest-benchmark run (an "
                                     "object with a 'benchmarks' list)")
    if not isinstance(payload.get("benchmarks"), list):
        raise BenchmarkFileError(f"{path}: not a pytest-benchmark run (no 'benchmarks' list); "
                                 "pass a file written by pytest --benchmark-json or "
                                 "--benchmark-autosave")
    if not payload["benchmarks"]:
        raise BenchmarkFileError(f"{path}: holds no benchmarks (did every test fail or skip?); "
                                 "re-run the suite, or pass another run")
    machine = c.object(payload.get("machine_info"), "machine_info")
    c.object(machine.get("fer"), "machine_info.fer")
    c.object(machine.get("cpu"), "machine_info.cpu")
    commit = c.object(payload.get("commit_info"), "commit_info")
    for key in ("datetime", "version"):
        c.string(payload.get(key), key)
    if payload.get("datetime"):
        try:
            dt.datetime.fromisoformat(str(payload["datetime"]))
        except ValueError:
            raise c.fail("datetime", f"{_show(payload['datetime'])} is not an ISO 8601 time "
                                     "(runs are ordered by it)") from None
    if payload.get("fer_skipped") is not None and not isinstance(payload["fer_skipped"], list):
        raise c.fail("fer_skipped", f"is {_kind(payload['fer_skipped'])}, not a list")
    benches: dict[str, Bench] = {}
    for i, raw in enumerate(payload["benchmarks"]):
        bench = _read_bench(raw, i, c)
        if bench.fullname in benches:
            raise BenchmarkFileError(f"{path}: benchmark {bench.fullname!r} appears twice; "
                                     f"{_FIX}")
        benches[bench.fullname] = bench
    session = payload.get("fer_session")
    interrupted = isinstance(session, dict) and session.get("interrupted") is True
    return Run(path=path, datetime=str(payload.get("datetime") or ""),
               version=str(payload.get("version") or ""), machine_info=machine,
               commit_info=commit, benchmarks=benches, skipped=_skipped(payload),
               interrupted=interrupted)


def _skipped(payload: dict) -> list[dict]:
    raw = payload.get("fer_skipped")
    if not isinstance(raw, list):
        return []
    return [s for s in raw if isinstance(s, dict) and isinstance(s.get("test"), str)
            and isinstance(s.get("reason"), str)]


#: a run of the whole suite with --benchmark-save-data is a few MiB; past this a file is not one
MAX_RUN_BYTES = 256 * 2**20


def load_run(path: str | Path) -> Run:
    """One benchmark JSON file, validated; :class:`BenchmarkFileError` if it is not one."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO, a device
            raise BenchmarkFileError(f"{path}: not a regular file (a pipe or a device); pass a "
                                     "benchmark JSON file")
        if path.is_file() and path.stat().st_size > MAX_RUN_BYTES:
            raise BenchmarkFileError(f"{path}: {path.stat().st_size / 2**20:,.0f} MiB, larger than "
                                     f"any benchmark run ({MAX_RUN_BYTES // 2**20} MiB at most); "
                                     "pass a benchmark JSON file")
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise BenchmarkFileError(f"{path}: is a folder; pass a benchmark JSON file (or "
                                 "--history for a folder of runs)") from None
    except FileNotFoundError:
        raise BenchmarkFileError(f"{path}: no such file; pass a file written by pytest "
                                 "--benchmark-json or --benchmark-autosave") from None
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BenchmarkFileError(f"{path}: not text (not UTF-8); pass a benchmark JSON "
                                 "file") from None
    try:
        payload = json.loads(text)
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(f"{path}:{exc.lineno}: not a readable JSON file ({exc.msg}); "
                                 f"{_FIX}") from None
    except RecursionError:
        raise BenchmarkFileError(f"{path}: nested too deeply to be a benchmark run; "
                                 f"{_FIX}") from None
    except UnicodeEncodeError:
        raise BenchmarkFileError(f"{path}: holds text that is not valid Unicode (a lone "
                                 f"surrogate escape); {_FIX}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BenchmarkFileError(f"{path}: not a readable JSON file ({exc}); {_FIX}") from None
    run = validate_payload(payload, path)
    run.digest = hashlib.sha256(canonical).hexdigest()  # a re-indented copy is the same run
    return run


def load_history(folder: str | Path, what: str = "--history") -> list[Run]:
    """Every valid run under ``folder`` (recursively), oldest first; a bad file is skipped
    with one warning line naming it and the field at fault. ``what`` names the argument in
    errors (``--history``, or a command's HISTORY_DIR)."""
    folder = Path(folder)
    if not folder.is_dir():
        kind = "a file, not a folder" if folder.exists() else "no such folder"
        raise CompareError(f"{what} {folder}: {kind}; pass a folder of saved runs "
                           "(pytest-benchmark saves them under .benchmarks/ with "
                           "--benchmark-autosave)")
    runs, seen = [], {}
    for p in sorted(folder.rglob("*.json")):
        try:
            run = load_run(p)
        except BenchmarkFileError as exc:  # one bad file must not block a history
            log.warning("skipping %s", printable(str(exc)))
            continue
        if run.interrupted:
            log.warning("skipping %s: an interrupted run (stopped before the suite's end, %d "
                        "benchmark(s)); a history holds complete runs only",
                        printable(str(p)), len(run.benchmarks))
            continue
        if run.fingerprint in seen:  # a copy: the same measurements, said once, not judged twice
            log.debug("skipping %s: the same run as %s", printable(str(p)),
                      printable(str(seen[run.fingerprint])))
            continue
        seen[run.fingerprint] = p
        runs.append(run)
    return sorted(runs, key=lambda r: r.order_key)
