"""What else the machine was doing while a benchmark ran: other processes' CPU time.

The reference workload (:mod:`fer.suite.calibration`) sees a busy neighbour only when it
happens to run beside it; a neighbour that starts mid-epoch is missed. :class:`LoadSampler`
reads the kernel's own accounting instead (Linux ``/proc``): between two marks, the CPU time
all processes spent, less the time this process and its children spent (DataLoader workers
count as ours), over the wall time and the CPUs: the share of the machine others used. Beside
it, the 1-minute load average. The perf harness marks after every round and stores
``extra_info["load"]``; :func:`fer.suite.summary.disturbances` calls a benchmark disturbed
when others used more than :data:`BUSY_SHARE` of the machine during one of its epochs.

Off Linux (no ``/proc/stat``) nothing is measured and ``summary()`` says so. No torch here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: others' share of the machine's CPU time over an epoch above which it was disturbed: on a
#: 2-core machine, a neighbour busy on half a core; a quiet machine measures 0-3%
BUSY_SHARE = 0.25
_PROC = Path("/proc")


def _ticks_per_s() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def _busy_s(proc: Path = _PROC) -> float | None:
    """All CPUs' busy time since boot (user, nice, system, irq, softirq, steal), seconds."""
    try:
        fields = (proc / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(x) for x in fields[1:]]
    busy = sum(values[i] for i in (0, 1, 2, 5, 6, 7) if i < len(values))
    return busy / _ticks_per_s()


def _tree_s(root: int, proc: Path = _PROC) -> float:
    """CPU seconds of ``root`` and its live descendants (plus their reaped children)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = _ticks_per_s()
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone since the listing
        rest = text[text.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
        if len(rest) < 15:
            continue
        pid = int(entry.name)
        parents[pid] = int(rest[1])
        cpu[pid] = sum(int(x) for x in rest[11:15]) / tick  # utime stime cutime cstime
    ours, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in ours]
        ours.update(children)
        frontier += children
    return sum(cpu.get(p, 0.0) for p in ours)


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


class LoadSampler:
    """``mark()`` after each measured interval; ``summary()`` for ``extra_info["load"]``."""

    def __init__(self, pid: int | None = None, proc: Path = _PROC) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.proc = proc
        self.cpus = os.cpu_count() or 1
        self.shares: list[float] = []
        self.load: list[float] = []
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        busy = _busy_s(self.proc)
        if busy is None:
            return None
        return time.perf_counter(), busy, _tree_s(self.pid, self.proc)

    def mark(self) -> float | None:
        """Others' share of the machine since the previous mark (None off Linux)."""
        now = self._read()
        before, self._last = self._last, now
        if now is None or before is None or now[0] <= before[0]:
            return None
        wall = now[0] - before[0]
        others = max((now[1] - before[1]) - (now[2] - before[2]), 0.0)
        share = min(others / (wall * self.cpus), 1.0)
        self.shares.append(share)
        average = load_average()
        if average is not None:
            self.load.append(average)
        return share

    def summary(self) -> dict:
        if not self.shares:
            return {"measured": False, "why": "no /proc/stat on this system"}
        return {"measured": True, "cpus": self.cpus, "others_share": list(self.shares),
                "max_others_share": max(self.shares), "load_average": list(self.load)}
