"""Small builders shared by the unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer.data.dataset import SPLITS, USAGE_TO_SPLIT

SPLIT_TO_USAGE = {v: k for k, v in USAGE_TO_SPLIT.items()}
HISTORY = Path(__file__).parent / "fixtures" / "history"


def fer_csv_text(images: np.ndarray, labels, splits, *, header="emotion,pixels,Usage") -> str:
    rows = [header]
    for img, label, split in zip(images, labels, splits):
        pixels = " ".join(str(int(v)) for v in img.reshape(-1))
        rows.append(f"{int(label)},{pixels},{SPLIT_TO_USAGE[SPLITS[int(split)]]}")
    return "\n".join(rows) + "\n"


def write_fer_csv(path: Path, n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, size=n)
    splits = np.arange(n) % 3
    path.write_text(fer_csv_text(images, labels, splits))
    return images, labels, splits


def make_run(path: Path, benches: dict, *, calibration: float | None = None,
             cuda_mem: dict | None = None, when: str = "2026-01-01T00:00:00",
             group: str | dict[str, str] = "gate", commit: str | None = None,
             breakdown: dict[str, float] | None = None,
             counters: dict[str, dict] | None = None,
             typical: dict[str, list[float]] | None = None) -> Path:
    """A run file of the harness's shape: per benchmark its timed epochs (and a warm-up),
    optionally the calibration, peak CUDA memory, a step breakdown (ms per category),
    counters (per benchmark, ``extra_info["counters"]`` as :mod:`fer.counters` writes it) and
    per benchmark each timed epoch's typical step x steps (``typical``: the step sample)."""
    base = json.loads((HISTORY / "base.json").read_text())
    entries = []
    for name, times in benches.items():
        records = []
        for i, t in enumerate([times[0], *times]):
            mem = (cuda_mem or {}).get(name)
            records.append(dict(epoch=i, images=100, steps=2, wall_s=t, data_wait_s=0.1 * t,
                                compute_s=0.9 * t, images_per_s=100 / t, loss=1.0, train_acc=0.5,
                                lr=0.1, peak_mem_bytes=mem or 1000,
                                peak_mem_kind="cuda_max_allocated" if mem else "process_peak_rss",
                                warmup=i == 0))
            if typical and name in typical:
                step = ([typical[name][0], *typical[name]])[i]
                records[-1]["step_s"] = {"q25": step / 2, "n": 2}
        group_of = group.get(name, "gate") if isinstance(group, dict) else group
        extra = {"schema": 2, "experiment": group_of, "params": {}, "records": records}
        if breakdown:
            extra["step_breakdown"] = {"steps": 3, "ms_per_step": dict(breakdown),
                                       "ops_per_step": 1000.0, "kernels_per_step": None}
        if counters and name in counters:
            extra["counters"] = counters[name]
        if calibration:
            extra["calibration"] = {"median_s": calibration, "samples_s": [calibration]}
        ordered = sorted(times)
        entries.append({"name": name, "fullname": f"t.py::{name}", "group": group_of,
                        "stats": {"median": ordered[len(ordered) // 2], "data": list(times),
                                  "rounds": len(times)},
                        "extra_info": extra})
    base.update(benchmarks=entries, datetime=when)
    if commit:
        base["commit_info"] = {"id": commit}
    path.write_text(json.dumps(base))
    return path


class FakeBenchmark:
    """A stand-in for pytest-benchmark's fixture: pedantic runs the setup and the target for
    the warm-up and the timed rounds, and extra_info collects what the harness stores."""

    def __init__(self) -> None:
        self.group = None
        self.extra_info: dict = {}

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        for _ in range(warmup_rounds + rounds):
            if setup:
                setup()
            target()
