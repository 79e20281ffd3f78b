"""The perf suite's own terminal summary: one table per experiment, in the factor's order.

pytest-benchmark prints epoch seconds with Min/Max/StdDev/OPS, sorted by speed;
what a performance engineer reads here is the experiment: its factor in grid
order, the images each epoch trained, the median epoch, the spread of the timed
epochs, images/s and the data-wait share — then the commands that come next.
The plugin keeps the session's state on a :class:`PerfSession` (every finished benchmark,
the skips), prints :func:`expected_duration` when the suite is collected and
:func:`format_summary` at the end, with the machine's speed of the session (the reference
workload) and a line per benchmark whose step mode fell back. No torch here.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from fer.records import timed
from fer.suite.experiments import EXPERIMENTS, point_id
from fer.suite.load import BUSY_SHARE

#: seconds per grid point run (not skipped), per scale, on the machine the suite is developed
#: on (a quiet 2-core CPU: 33 points run, 36 skipped, in 147 s on 2026-11-30); the saved runs
#: of this hardware class and scale, when there are some, are used instead
SECONDS_PER_POINT = {"smoke": 4.5}
#: the saved runs read for the expected duration and the machine's usual speed
_NEWEST = 5
_MAX_JSON_BYTES = 64 * 2**20


def _calibration_s(result: dict) -> float | None:
    """The reference workload's median time beside one finished benchmark."""
    value = (result["extra"].get("calibration") or {}).get("median_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


@dataclass
class PerfSession:
    """The perf suite's state of one pytest session (kept in ``config.stash``)."""

    started: float  # time.monotonic() at configure
    points: int = 0  # grid points collected (tests using the perf_scale fixture)
    to_run: int = 0  # of which this machine runs (the registry's skip rules, asked up front)
    results: list[dict] = field(default_factory=list)  # {"name", "extra"} per finished benchmark
    skipped: list[dict] = field(default_factory=list)  # {"test", "reason"}
    #: ``fer_session`` of the newest runs saved before this one (read when collected)
    saved: list[dict] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: the run is incomplete, and marked so in its JSON

    def note(self, name: str, extra_info: dict) -> None:
        """Remember one finished benchmark (its test name and extra_info)."""
        self.results.append({"name": name, "extra": dict(extra_info)})

    def calibration_s(self) -> list[float]:
        """The reference workload's median time of each finished benchmark."""
        return [v for v in map(_calibration_s, self.results) if v is not None]

    def facts(self) -> dict:
        """What the JSON keeps of the session (``fer_session``): its duration, the points it
        collected and ran, and the machine's speed (the reference workload's median)."""
        cal = self.calibration_s()
        return {"duration_s": round(time.monotonic() - self.started, 3), "points": self.to_run,
                "benchmarks": len(self.results), "interrupted": self.interrupted,
                "calibration_median_s": statistics.median(cal) if cal else None}


#: a benchmark whose slowest timed epoch took more than this many times its fastest was
#: disturbed (on a quiet 2-core CPU the whole smoke suite stays under 1.4x)
EPOCH_SPREAD = 2.0
#: ... or whose reference workload ran more than this many times the session's median beside it
CALIBRATION_VS_SESSION = 1.5


def _others_share(extra: dict) -> float | None:
    """The largest share of the machine other processes used during one of a benchmark's
    rounds (``extra_info["load"]``, :mod:`fer.suite.load`; the first interval, the build, is
    not a round)."""
    load = extra.get("load")
    shares = load.get("others_share") if isinstance(load, dict) else None
    if not isinstance(shares, list):
        return None
    rounds = [x for x in shares[1:] if isinstance(x, (int, float))]
    return max(rounds) if rounds else None


def disturbances(results: list[dict]) -> dict[str, str]:
    """The benchmarks of a session measured on a disturbed machine, with the reason: epochs
    spread beyond :data:`EPOCH_SPREAD`, other processes using more than
    :data:`fer.suite.load.BUSY_SHARE` of the machine's CPU during a round, or the reference
    workload beyond :data:`CALIBRATION_VS_SESSION` of the session's median. Stored in the JSON as
    ``extra_info["disturbed"]``; `fer compare` leaves such runs out of a baseline and calls
    such a candidate inconclusive."""
    cals = {r["name"]: _calibration_s(r) for r in results}
    known = [c for c in cals.values() if c is not None]
    session = statistics.median(known) if len(known) >= 3 else None
    found = {}
    for r in results:
        walls = [t["wall_s"] for t in timed(r["extra"].get("records") or [])
                 if isinstance(t.get("wall_s"), (int, float)) and t["wall_s"] > 0]
        reasons = []
        if len(walls) >= 2 and max(walls) > EPOCH_SPREAD * min(walls):
            reasons.append(f"its epochs spread {max(walls) / min(walls):.1f}x (slowest over "
                           "fastest)")
        busy = _others_share(r["extra"])
        if busy is not None and busy > BUSY_SHARE:
            reasons.append(f"other processes used {100 * busy:.0f}% of the machine's CPU during "
                           "one of its epochs")
        cal = cals[r["name"]]
        if session and cal is not None and cal > CALIBRATION_VS_SESSION * session:
            reasons.append(f"the reference workload ran {cal / session:.1f}x the session's "
                           "median beside it")
        if reasons:
            found[r["name"]] = "; ".join(reasons)
    return found


def fallback_lines(results: list[dict]) -> list[str]:
    """One line per benchmark whose step mode failed on this machine and fell back
    (``extra_info["step_mode"]["fallbacks"]``, :attr:`fer.engine.Trainer.step_mode`)."""
    lines = []
    for r in results:
        step_mode = r["extra"].get("step_mode")
        found = step_mode.get("fallbacks") if isinstance(step_mode, dict) else None
        steps = [f"{f.get('from')} -> {f.get('to')} ({f.get('why')})"
                 for f in found or [] if isinstance(f, dict)]
        if steps:
            lines.append(f"WARNING: {r['name']} fell back to another step than it asked for: "
                         f"{'; '.join(steps)}; its JSON records the step that ran, and fer "
                         "compare judges it only against runs of that step")
    return lines


def saved_sessions(folder: str | None) -> list[dict]:
    """``fer_session`` (with the run's ``perf_scale``) of the newest saved runs under
    ``folder``: regular files only, none larger than 64 MiB, unreadable ones left out."""
    if not folder or not Path(folder).is_dir():
        return []
    files = [p for p in Path(folder).rglob("*.json") if p.is_file()]
    files = sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
    found = []
    for path in files[:4 * _NEWEST]:
        try:
            if path.stat().st_size > _MAX_JSON_BYTES:
                continue
            payload = json.loads(path.read_text())
            session = payload.get("fer_session")
            run_scale = ((payload.get("machine_info") or {}).get("fer") or {}).get("perf_scale")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(session, dict):
            found.append({**session, "perf_scale": run_scale})
        if len(found) == _NEWEST:
            break
    return found


def expected_duration(points: int, scale: str, saved: list[dict]) -> str:
    """One line: about how long the ``points`` to run will take, and from what."""
    rates = [s["duration_s"] / s["points"] for s in saved
             if s.get("perf_scale") == scale and isinstance(s.get("duration_s"), (int, float))
             and isinstance(s.get("points"), int) and s["points"] > 0]
    if rates:
        seconds, source = points * statistics.median(rates), \
            f"from the {len(rates)} newest saved run(s) of this machine"
    elif scale in SECONDS_PER_POINT:
        seconds, source = points * SECONDS_PER_POINT[scale], \
            "on a quiet 2-core CPU; a busy machine takes longer"
    else:
        return (f"fer perf suite: {points} grid point(s) to run at the {scale} scale; no saved run of "
                "this machine yet to say how long they take (the first --benchmark-autosave "
                "run gives one)")
    return (f"fer perf suite: {points} grid point(s) to run at the {scale} scale, expected about "
            f"{_minutes(seconds)} ({source})")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def machine_speed(session: PerfSession) -> str | None:
    """One line: the reference workload's time over the session (the machine's speed, which
    no change to fer can move), its spread, and against the saved runs of this machine."""
    cal = session.calibration_s()
    if not cal:
        return None
    median = statistics.median(cal)
    text = (f"machine speed: the reference workload took {1000 * median:.1f} ms (median of "
            f"{len(cal)} benchmarks, {1000 * min(cal):.1f}-{1000 * max(cal):.1f} ms)")
    saved = [s["calibration_median_s"] for s in session.saved
             if isinstance(s.get("calibration_median_s"), (int, float))
             and s["calibration_median_s"] > 0]
    if saved:
        usual = statistics.median(saved)
        text += (f"; the newest {len(saved)} saved run(s): {1000 * usual:.1f} ms, so this "
                 f"machine ran at {usual / median:.2f}x their speed")
    return text + f"; the suite took {_minutes(time.monotonic() - session.started)}"


def _timed(extra: dict) -> list[dict]:
    return timed([r for r in extra.get("records") or [] if isinstance(r, dict)])


def _row(params: dict, extra: dict) -> list[str]:
    epochs = _timed(extra)
    walls = [r["wall_s"] for r in epochs]
    median = statistics.median(walls)
    spread = (max(walls) - min(walls)) / median if median > 0 else 0.0
    rate = statistics.median(r["images_per_s"] for r in epochs)
    wait = statistics.median(r["data_wait_s"] / r["wall_s"] for r in epochs if r["wall_s"] > 0)
    images = epochs[-1]["images"]

    return [point_id(params) or "-", f"{images:,}", f"{median:.3f}", f"{100 * spread:.1f}%",
            f"{rate:,.0f}", f"{100 * wait:.1f}%"]


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % w for i, w in enumerate(widths))
    return ["  " + fmt.format(*head)] + ["  " + fmt.format(*r) for r in rows]


def format_summary(results: list[dict], *, json_path: str | None = None,
                   storage: str | None = None, session: PerfSession | None = None) -> str:
    by_experiment: dict[str, list[dict]] = {}
    for result in results:
        extra = result["extra"]
        if _timed(extra):
            by_experiment.setdefault(str(extra.get("experiment")), []).append(result)
    if not by_experiment:
        return ""
    lines = []
    scale = next((r["extra"].get("scale") for r in results if r["extra"].get("scale")), None)
    if scale:
        lines.append(f"scale {scale['name']} on {scale['device']}: {scale['model']}, "
                     f"{round(scale['synthetic_size'] * 0.8):,} training images per epoch, batch "
                     f"{scale['batch_size']}; 1 warm-up + {scale['rounds']} timed epochs per "
                     "benchmark (the medians and spreads below are over the timed epochs)")
    order = list(EXPERIMENTS)
    for name in sorted(by_experiment, key=lambda n: order.index(n) if n in order else 99):
        experiment = EXPERIMENTS.get(name)
        found = by_experiment[name]
        if experiment is not None:
            grid = [dict(p) for p in experiment.grid]
            found.sort(key=lambda r: grid.index(r["extra"].get("params"))
                       if r["extra"].get("params") in grid else 99)
            title = f"{name}: {experiment.factor} — the study: {experiment.finding}"
        else:
            title = name
        model = found[0]["extra"].get("model") or (found[0]["extra"].get("plan") or {}).get("model")
        lines += ["", f"{title}" + (f" [{model}]" if model else "")]
        rows = [_row(r["extra"].get("params") or {}, r["extra"]) for r in found]
        lines += _table(rows, ["point", "images", "epoch s", "spread", "images/s", "data wait"])
    speed = machine_speed(session) if session is not None else None
    if speed:
        lines += ["", speed]
    disturbed = disturbances(results)
    if disturbed:
        names = ", ".join(sorted(disturbed)[:4]) + (f" and {len(disturbed) - 4} more"
                                                    if len(disturbed) > 4 else "")
        lines += ["", f"WARNING: {len(disturbed)} benchmark(s) ran on a disturbed machine "
                      f"({names}; {min(disturbed)}: {disturbed[min(disturbed)]}): marked in the "
                      "JSON, left out of baselines by fer compare; rerun them on a quiet "
                      "machine"]
    fallbacks = fallback_lines(results)
    if fallbacks:
        lines += ["", *fallbacks]
    lines += ["", "next:"]
    if storage:
        lines.append(f"  fer compare --history {storage} --fail-on-regression   "
                     "# this run against the runs saved before it")
    else:
        lines.append("  pytest perf_tests --benchmark-autosave          # save runs: a history to "
                     "judge against")
    target = json_path or "RUN.json"
    hint = "" if json_path else "   # write it with --benchmark-json RUN.json"
    lines.append(f"  fer report {target} --out report/{hint}")
    lines.append("  fer dashboard .benchmarks --out site/            # the history as a web page")
    return "\n".join(lines)
