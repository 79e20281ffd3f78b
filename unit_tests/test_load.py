"""fer.suite.load: other processes' CPU time beside a benchmark, and the disturbance it marks."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer.suite.load import BUSY_SHARE, LoadSampler
from fer.suite.summary import disturbances


def _fake_proc(root: Path, busy_ticks: int, ours: dict[int, tuple[int, int]]) -> Path:
    """A /proc with a cpu line and processes {pid: (parent, ticks)}."""
    root.mkdir(exist_ok=True)
    (root / "stat").write_text(f"cpu  {busy_ticks} 0 0 100000 0 0 0 0 0 0\ncpu0 1 2 3\n")
    for pid, (parent, ticks) in ours.items():
        (root / str(pid)).mkdir(exist_ok=True)
        fields = ["S", str(parent)] + ["0"] * 9 + [str(ticks), "0", "0", "0"] + ["0"] * 5
        (root / str(pid) / "stat").write_text(f"{pid} (a (weird) name) " + " ".join(fields))
    return root


def test_others_share_is_the_machine_less_our_process_tree(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    clock = iter([0.0, 10.0])
    monkeypatch.setattr("fer.suite.load.time.perf_counter", lambda: next(clock))
    monkeypatch.setattr("fer.suite.load.os.cpu_count", lambda: 2)
    monkeypatch.setattr("fer.suite.load._ticks_per_s", lambda: 100.0)
    _fake_proc(proc, 1000, {10: (1, 100), 11: (10, 50), 99: (1, 400)})
    sampler = LoadSampler(pid=10, proc=proc)
    # 10 s on 2 CPUs: everything +1200 ticks (12 s), ours (10 and its child 11) +300 (3 s)
    _fake_proc(proc, 2200, {10: (1, 300), 11: (10, 150), 99: (1, 1300)})
    assert sampler.mark() == pytest.approx(9 / 20)
    assert sampler.summary()["max_others_share"] == pytest.approx(0.45)


def test_no_proc_means_nothing_measured(tmp_path):
    sampler = LoadSampler(proc=tmp_path / "none")
    assert sampler.mark() is None
    assert sampler.summary() == {"measured": False, "why": "no /proc/stat on this system"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux /proc only")
def test_a_busy_neighbour_is_seen_and_our_own_work_is_not():
    sampler = LoadSampler()
    deadline = time.perf_counter() + 1.0
    while time.perf_counter() < deadline:  # our own work: not others'
        pass
    quiet = sampler.mark()
    if quiet > 0.5:
        pytest.skip(f"others already use {100 * quiet:.0f}% of this machine: a neighbour "
                    "cannot be told apart")
    # neighbours that are not our children: started by a shell that exits at once
    burn = f"{sys.executable} -c 'import time; t = time.time()\nwhile time.time() - t < 3: pass'"
    started = subprocess.run(["sh", "-c", f"for i in $(seq {os.cpu_count() or 1}); do "
                              f"{burn} >/dev/null 2>&1 & echo $!; done"],
                             capture_output=True, text=True, check=True)
    pids = [int(p) for p in started.stdout.split()]
    try:
        time.sleep(1.5)
        busy = sampler.mark()
    finally:
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    assert busy > BUSY_SHARE and busy > quiet


def test_a_round_beside_a_busy_neighbour_marks_the_benchmark_disturbed():
    def result(name, shares):
        records = [{"wall_s": 1.0, "warmup": i == 0} for i in range(3)]
        return {"name": name, "extra": {"records": records, "load": {"others_share": shares}}}

    found = disturbances([result("quiet", [0.9, 0.01, 0.02]), result("busy", [0.0, 0.02, 0.6])])
    assert set(found) == {"busy"}  # the first interval is the build, not a round
    assert "other processes used 60% of the machine's CPU" in found["busy"]
