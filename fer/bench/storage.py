"""Reading benchmark runs: pytest-benchmark JSON in, :class:`Run` and :class:`Bench` out.

Reads what pytest-benchmark 3.x to 5.x writes — saved runs under
``.benchmarks/`` and ``--benchmark-json`` files. A file that is corrupt, empty
or not a benchmark run is skipped with a warning naming it; it never stops a
comparison or a report. Each benchmark's ``extra_info`` is read into schema 2
(:func:`fer.bench.records.upgrade_extra_info`) once, here, so every later layer
reads ``experiment`` and ``params`` the same way for old and new runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fer.bench.records import EpochRecord, summarize, upgrade_extra_info
from fer.errors import FERError

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
        """The stored medians; computed from the records for runs that stored none."""
        summary = self.extra_info.get("summary")
        if isinstance(summary, dict) and summary:
            return summary
        return summarize(self.records) if self.records else {}

    def metric(self, key: str) -> float | None:
        value = (self.extra_info.get("summary") or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Run:
    path: Path
    datetime: str
    version: str
    machine_info: dict
    commit_info: dict
    benchmarks: dict[str, Bench]
    skipped: list[dict] = field(default_factory=list)  # fer_skipped: {"test", "reason"}

    @property
    def label(self) -> str:
        commit = str((self.commit_info or {}).get("id") or "")
        is_hash = len(commit) >= 7 and all(ch in "0123456789abcdef" for ch in commit)
        return self.path.name + (f" ({commit[:8]})" if is_hash else "")


def machine_key(machine_info: dict) -> dict:
    """What must match for two runs to be comparable: hardware and software."""
    fer = machine_info.get("fer") or {}
    cpu = machine_info.get("cpu") or {}
    return {
        "hardware": fer.get("hardware_class") or cpu.get("brand_raw") or machine_info.get("machine"),
        "gpu": fer.get("gpu_name"), "gpu_count": fer.get("gpu_count"),
        "torch": fer.get("torch"), "cuda": fer.get("cuda_runtime"),
    }


def _skipped(payload: dict) -> list[dict]:
    raw = payload.get("fer_skipped")
    if not isinstance(raw, list):
        return []
    return [s for s in raw if isinstance(s, dict) and "test" in s and "reason" in s]


def load_run(path: str | Path) -> Run | None:
    """One benchmark JSON file, or None (with a warning) if it is not one."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("skipping %s: not readable JSON (%s)", path, exc)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("benchmarks"), list):
        log.warning("skipping %s: not a pytest-benchmark run (no 'benchmarks' list)", path)
        return None
    benches: dict[str, Bench] = {}
    for raw in payload["benchmarks"]:
        try:
            stats = raw["stats"]
            data = stats.get("data")
            extra = raw.get("extra_info") or {}
            if not isinstance(extra, dict):
                raise TypeError("extra_info is not an object")
            bench = Bench(
                fullname=raw.get("fullname") or raw["name"], name=raw["name"],
                group=raw.get("group"), median=float(stats["median"]),
                data=[float(x) for x in data] if isinstance(data, list) and data else None,
                extra_info=extra)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("%s: skipping a malformed benchmark entry (%s)", path, exc)
            continue
        benches[bench.fullname] = bench
    if not benches:
        log.warning("skipping %s: it holds no benchmarks", path)
        return None
    return Run(path=path, datetime=str(payload.get("datetime") or ""),
               version=str(payload.get("version") or ""),
               machine_info=payload.get("machine_info") or {},
               commit_info=payload.get("commit_info") or {}, benchmarks=benches,
               skipped=_skipped(payload))


def load_history(folder: str | Path) -> list[Run]:
    """Every run under ``folder`` (recursively), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"--history {folder}: no such folder (pytest-benchmark saves runs "
                           "under .benchmarks/ with --benchmark-autosave)")
    runs = [r for r in (load_run(p) for p in sorted(folder.rglob("*.json"))) if r is not None]
    return sorted(runs, key=lambda r: (r.datetime, r.path.name))
