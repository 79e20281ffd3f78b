"""``fer ab``: did *this change* make training slower? Two commits measured interleaved.

Each side (a git revision, exported with ``git archive`` into a temporary folder, or a
checkout folder as it is) gets a live worker process (:mod:`fer.suite.ab_worker`) whose
``import fer`` is that side's code. For each selected benchmark point both workers build the
trainer and train a warm-up epoch; then the driver alternates single epochs, AB BA BA AB ...,
so that the two sides of a pair run seconds apart on the same machine and its drift cancels
(measured: see docs/ab.md). After each pair the benchmark is judged
(:mod:`fer.bench.paired`); it stops when it is DIFFERENT or the SAME, or when its share of
the budget is spent (UNKNOWN, with the smallest change its pairs could have seen). A pair
during which other processes used more than :data:`fer.suite.load.BUSY_SHARE` of the machine
is left out; a benchmark with more such pairs than kept ones is inconclusive. Then both sides
count a few steps exactly (:mod:`fer.counters`) and the counters are gated as ``fer compare``
gates them. ``fer bisect`` (:func:`bisect`) runs this between commits of a range.

Benchmarks that do not train epochs in one process (``ddp`` under torchrun, ``profiler``) are
not A/B-tested.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fer.bench.counts import judge_counters
from fer.bench.explain import explain
from fer.bench.noise import REGRESSED as COUNT_REGRESSED
from fer.bench.noise import UNCHANGED as COUNT_UNCHANGED
from fer.bench.paired import (
    IMPROVED,
    INCONCLUSIVE,
    MIN_PAIRS,
    PROCESSES,
    REGRESSED,
    SAMPLES,
    UNCHANGED,
    UNKNOWN,
    VERDICTS,
    Benchmark,
    RunShift,
    judge_all,
    judge_benchmark,
    looks,
    prior_of,
    process_noise_of,
    run_shifts,
    sample_seconds,
)
from fer.bench.stats import NOT_THROTTLING
from fer.bench.storage import Bench
from fer.errors import FERError
from fer.suite.experiments import EXPERIMENTS, point_id
from fer.suite.load import BUSY_SHARE

#: experiments an A/B run cannot alternate epoch by epoch in one process
NOT_AB = {"ddp": "runs under torchrun", "profiler": "times an epoch with and without the profiler"}
#: the default budget, seconds: about ten minutes with the workers' start, at the smoke scale
#: on a 2-core CPU (docs/ab.md)
DEFAULT_BUDGET = 480.0
#: the most pairs --perf-rounds may ask for before the first look
MAX_PAIRS = 20
#: the most process pairs per benchmark (--processes)
MAX_PROCESSES = 4
WORKER = Path(__file__).with_name("ab_worker.py")


class ABError(FERError):
    """A usage error of fer ab / fer bisect (exit 2)."""


# ------------------------------------------------------------------ sides --

def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=check)


def repository(start: Path | None = None) -> Path | None:
    """The git work tree that holds ``start`` (the current folder), or None."""
    found = subprocess.run(["git", "-C", str(start or Path.cwd()), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True)
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def _dirty(repo: Path) -> list[str]:
    """Tracked files of ``repo`` with uncommitted changes (the code a revision would miss)."""
    out = _git(repo, "status", "--porcelain", "--untracked-files=no", check=False).stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


@dataclass
class Side:
    """One side of an A/B run: its name, the folder its code is read from, its commit."""

    role: str  # "BASE" or "CANDIDATE"
    spec: str
    root: Path
    commit: str | None
    note: str = ""

    @property
    def label(self) -> str:
        short = self.commit[:10] if self.commit else "no commit"
        return f"{self.spec} ({short}{', ' + self.note if self.note else ''})"


def resolve_side(role: str, spec: str, repo: Path | None, scratch: Path) -> Side:
    """A revision of ``repo`` (exported into ``scratch``) or a checkout folder (used as is)."""
    folder = Path(spec).expanduser()
    if folder.is_dir() and (folder / "fer" / "__init__.py").is_file():
        root = folder.resolve()
        inside = repository(root)
        commit = _git(inside, "rev-parse", "HEAD", check=False).stdout.strip() if inside else ""
        changed = _dirty(inside) if inside else []
        note = f"the folder as it is, {len(changed)} uncommitted change(s)" if changed else \
            "the folder as it is"
        return Side(role, spec, root, commit or None, note)
    if repo is None:
        raise ABError(f"{role} {spec!r}: not a checkout folder (no fer/__init__.py there), and the "
                      "current folder is not in a git repository to read a revision from; run fer "
                      "ab inside the repository or pass checkout folders")
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}", check=False)
    if found.returncode != 0:
        raise ABError(f"{role} {spec!r} is neither a revision of {repo} nor a checkout folder; "
                      "check it with `git rev-parse`, or `git fetch` the commit first")
    commit = found.stdout.strip()
    head = _git(repo, "rev-parse", "HEAD", check=False).stdout.strip()
    changed = [p for p in _dirty(repo) if p.startswith(("fer/", "perf_tests/"))]
    if commit == head and changed:
        raise ABError(f"{role} {spec!r} is the commit your working tree is on, but the tree has "
                      f"uncommitted changes it lacks ({', '.join(changed[:3])}"
                      f"{' ...' if len(changed) > 3 else ''}): commit them, or pass the "
                      "checkout folder (.) to measure the tree as it is")
    root = scratch / f"{role.lower()}-{commit[:12]}"
    root.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise ABError(f"{role} {spec!r}: git archive failed: {archive.stderr.decode()[-200:]}")
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    if not (root / "fer" / "__init__.py").is_file():
        raise ABError(f"{role} {spec!r} ({commit[:10]}) has no fer/ package: not a commit of fer")
    return Side(role, spec, root, commit)


# ---------------------------------------------------------------- workers --

class Worker:
    """A live worker process of one side: JSON lines in, JSON lines out."""

    def __init__(self, side: Side, log: Path, threads: int | None) -> None:
        self.side, self.log_path = side, log
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(side.root), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
        env["FER_AB_DRIVER"] = str(Path(__file__).resolve().parents[1])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.threads = threads
        self.log = open(log, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-u", str(WORKER)], cwd=side.root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)

    def check(self) -> None:
        """The worker imported its side's fer (asked after both sides started: they import
        torch at the same time)."""
        hello = self.ask({"op": "hello"})
        where = Path(hello["fer"]).resolve()
        if self.side.root not in where.parents:
            raise ABError(f"{self.side.role} imported fer from {where}, not from "
                          f"{self.side.root}: an installed fer shadows the checkout; install fer "
                          "in editable mode (pip install -e .) or uninstall it")

    def ask(self, msg: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise ABError(f"the {self.side.role} worker ({self.side.label}) stopped: "
                          f"{self._tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerFailed(self.side, answer["error"], answer.get("traceback", ""))
        return answer

    def _tail(self) -> str:
        self.log.flush()
        lines = [x for x in self.log_path.read_text(errors="replace").splitlines() if x.strip()]
        return lines[-1] if lines else "no output (killed?)"

    def close(self, wait: bool = True) -> None:
        """Ask the worker to quit; ``wait=False`` returns at once (:meth:`reap` waits): its
        teardown then overlaps the next benchmark's start, which is not timed."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except OSError:
                pass
        if wait:
            self.reap()

    def reap(self) -> None:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            if stream is not None and not stream.closed:
                stream.close()


class WorkerFailed(Exception):
    def __init__(self, side: Side, error: str, trace: str) -> None:
        super().__init__(f"{side.role} ({side.label}): {error}")
        self.trace = trace


# -------------------------------------------------------------- selection --

def all_points() -> list[tuple[str, str, dict]]:
    """Every benchmark an A/B run can measure: (name, experiment, params), named as the perf
    suite names them (``test_optimizer[adam]``)."""
    out = []
    for name, e in EXPERIMENTS.items():
        if name in NOT_AB:
            continue
        for params in e.grid:
            out.append((f"test_{name}[{point_id(params)}]", name, dict(params)))
    return out


def select(keyword: str | None) -> list[tuple[str, str, dict]]:
    """The points ``-k keyword`` selects, as pytest's ``-k`` would (its expression syntax)."""
    points = all_points()
    if not keyword:
        return points
    from _pytest.mark.expression import Expression  # lazy: pytest's -k grammar, only with -k

    try:
        expression = Expression.compile(keyword)
    except Exception as exc:  # pytest's ParseError: a bad -k expression
        raise ABError(f"-k {keyword!r}: {exc}") from None
    chosen = []
    for name, experiment, params in points:
        words = {name, f"test_{experiment}", experiment, point_id(params)}

        def match(word: str, *args, words=words, name=name) -> bool:
            return any(word.lower() in w.lower() for w in words) or word.lower() in name.lower()

        if expression.evaluate(match):
            chosen.append((name, experiment, params))
    if not chosen:
        raise ABError(f"-k {keyword!r} selects none of the {len(points)} benchmarks (e.g. "
                      f"{points[0][0]}); see `fer ab --list`")
    return chosen


# ------------------------------------------------------------------ a run --

@dataclass
class ABOptions:
    keyword: str | None = None
    scale: str = "smoke"
    min_pairs: int = MIN_PAIRS
    budget: float = DEFAULT_BUDGET
    threshold: float = 0.05
    confidence: float = 0.95
    threads: int | None = None
    processes: int = PROCESSES

    @property
    def first_look(self) -> int:
        """The pairs of the first look: --perf-rounds, and at least two per process pair."""
        return max(self.min_pairs, 2 * self.processes)

    def check(self) -> None:
        if not 0 < self.threshold < 1:
            raise ABError(f"--threshold must be in (0, 1), got {self.threshold}")
        if not 0.5 < self.confidence < 1:
            raise ABError(f"--confidence must be in (0.5, 1), got {self.confidence}")
        if self.budget <= 0:
            raise ABError(f"--budget must be > 0 seconds, got {self.budget}")
        if not 2 <= self.min_pairs <= MAX_PAIRS:
            raise ABError(f"--perf-rounds must be in [2, {MAX_PAIRS}] pairs, got {self.min_pairs}")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ABError(f"--processes must be in [1, {MAX_PROCESSES}] process pairs per "
                          f"benchmark, got {self.processes}")


@dataclass
class ABResult:
    base: Side
    candidate: Side
    options: ABOptions
    benchmarks: list[Benchmark]
    shifts: list[RunShift]  # the run as a whole: the typical step, the whole epoch, the excess
    seconds: float
    pairing: dict = field(default_factory=dict)  # what alternating bought, measured
    notes: list[str] = field(default_factory=list)
    process: dict = field(default_factory=dict)  # the process noise judged, per sample

    @property
    def judged(self) -> list[Benchmark]:
        return [b for b in self.benchmarks if b.skipped is None]

    @property
    def regressed(self) -> list[Benchmark]:
        return [b for b in self.judged if b.verdict == REGRESSED]

    @property
    def failed(self) -> bool:
        return bool(self.regressed) or any(s.verdict == REGRESSED and s.counted
                                           for s in self.shifts)

    @property
    def shift(self) -> RunShift | None:
        """The run as a whole on the typical step (the quieter sample)."""
        return next((s for s in self.shifts if s.sample == "step"), None)

    def count(self, verdict: str) -> int:
        return sum(b.verdict == verdict for b in self.judged)

    def to_dict(self) -> dict:
        return {
            "base": {"spec": self.base.spec, "commit": self.base.commit, "note": self.base.note},
            "candidate": {"spec": self.candidate.spec, "commit": self.candidate.commit,
                          "note": self.candidate.note},
            "options": self.options.__dict__, "seconds": self.seconds,
            "rows": [dict(b.to_dict(), fullname=b.name) for b in self.benchmarks],
            "counts": {v: self.count(v) for v in VERDICTS},
            "regressed": [b.name for b in self.regressed],
            "run": self.shift.to_dict() if self.shift else None,
            "runs": [s.to_dict() for s in self.shifts],
            "pairing": self.pairing, "notes": self.notes, "process_noise": self.process,
        }


def _order(i: int) -> str:
    """The order of pair ``i``: AB, BA, BA, AB, then again (a linear drift cancels in four)."""
    return "AB" if i % 4 in (0, 3) else "BA"


def _bench(name: str, loaded: dict, epochs: list[dict], counters: dict | None,
           breakdown: dict | None) -> Bench:
    records = [dict(loaded["warmup"], warmup=True), *epochs]
    extra = {"records": records, "counters": counters, "step_breakdown": breakdown}
    walls = [e["wall_s"] for e in epochs] or [loaded["warmup"]["wall_s"]]
    return Bench(name, name, None, statistics.median(walls), walls, extra)


def _pairing_gain(benches: list[Benchmark]) -> dict:
    """What alternating bought, measured on this run: per benchmark, the spread of one pair's
    log ratio against the spread two unpaired epochs would have (A's and B's variances added:
    the noise of comparing epochs measured apart)."""
    paired, unpaired = [], []
    for b in benches:
        a = [math.log(sample_seconds(p["a"], "epoch")) for p in b.pairs]
        c = [math.log(sample_seconds(p["b"], "epoch")) for p in b.pairs]
        logs = b.logs("epoch")  # the same epoch times, paired
        if len(logs) >= 3:
            paired.append(statistics.stdev(logs))
            unpaired.append(math.sqrt(statistics.variance(a) + statistics.variance(c)))
    if not paired:
        return {}
    return {"benchmarks": len(paired), "paired_sd": statistics.median(paired),
            "unpaired_sd": statistics.median(unpaired),
            "variance_ratio": statistics.median(p * p / (u * u) for p, u in zip(paired, unpaired)
                                                if u > 0)}


def measure(base: Side, candidate: Side, options: ABOptions, scratch: Path,
            progress: Callable[[str], None] = lambda s: None) -> ABResult:
    """Run the A/B test of ``options`` between two resolved sides."""
    points = select(options.keyword)
    start = time.perf_counter()
    measured: list[_Point] = []
    probe = Worker(candidate, scratch / "skips.log", options.threads)
    try:  # the points this machine cannot run, asked once (no workers started for them)
        probe.check()
        skips = probe.ask({"op": "skips", "points": points, "scale": options.scale})["skips"]
    finally:
        probe.close()
    for name, _, _ in points:
        if skips.get(name):
            measured.append(_Point(Benchmark(name, skipped=skips[name])))
    points = [p for p in points if not skips.get(p[0])]
    if not points:
        raise ABError(f"none of the selected benchmarks can run on this machine (e.g. "
                      f"{measured[0].bench.name}: {measured[0].bench.skipped})")
    closing: list[Worker] = []
    try:
        _measure_points(points, base, candidate, options, scratch, start, measured, closing,
                        progress)
    finally:
        for w in closing:
            w.reap()
    benches = [m.bench for m in measured]
    judged = [b for b in benches if b.skipped is None]
    # the final verdicts: every benchmark borrows the whole run's pooled pair variance and
    # process noise, and the alpha of the Benjamini-Hochberg step the run reached
    priors, process = _priors(judged), _process(judged)
    judge_all([b for b in judged if len(b.pairs) >= 2], threshold=options.threshold,
              alpha=(1 - options.confidence) / 2, benchmarks=len(points), priors=priors,
              process=process)
    for m in measured:
        _finish(m)
    shifts = run_shifts(judged, threshold=options.threshold, alpha=(1 - options.confidence) / 2)
    notes = []
    if base.commit and base.commit == candidate.commit and not (base.note or candidate.note):
        notes.append("BASE and CANDIDATE are the same commit: an A/A test (every verdict "
                     "should be unchanged)")
    unknown = [b for b in judged if b.verdict == UNKNOWN]
    if unknown:
        notes.append(f"{len(unknown)} benchmark(s) stayed unknown within the budget: more pairs "
                     "(--budget) would tell; the MDE column is the smallest change each could "
                     "have seen")
    if judged:
        paired = sum(b.seconds.get("pairs", 0.0) for b in judged)
        whole = sum(b.seconds.get("whole", 0.0) for b in judged)
        notes.append(f"{paired:.0f} s of the {whole:.0f} s the benchmarks took were their pairs; "
                     f"the rest (about {(whole - paired) / len(judged):.0f} s a benchmark) "
                     f"started, built, warmed and counted {2 * options.processes} workers each")
        notes += overrun_notes(judged, time.perf_counter() - start, options)
    notes += gpu_notes(judged)
    disturbed = [b for b in judged if b.disturbed_pairs]
    if disturbed:
        notes.append(f"{sum(b.disturbed_pairs for b in disturbed)} pair(s) of "
                     f"{len(disturbed)} benchmark(s) left out: other processes used over "
                     f"{100 * BUSY_SHARE:.0f}% of the machine during them")
    return ABResult(base, candidate, options, benches, shifts, time.perf_counter() - start,
                    _pairing_gain(judged), notes, process)


def _measure_points(points: list, base: Side, candidate: Side, options: ABOptions,
                    scratch: Path, start: float, measured: list, closing: list,
                    progress: Callable[[str], None]) -> None:
    """Each point with its own fresh workers; they are asked to quit at once and reaped later
    (``closing``), their teardown overlapping the next point's start. The budget left is
    shared among the points still to come once each point's own start, build and warm-up are
    set aside (as the points before it measured them): each gets an even share of pairs."""
    overheads: list[float] = []  # per finished point, its seconds outside its pairs
    warned = False

    def deadline(i: int, began: float) -> float:
        """When point ``i`` (begun at ``began``, its workers now built) stops taking pairs."""
        now = time.perf_counter()
        so_far = now - began
        per = statistics.median(overheads) if overheads else so_far + 2.0
        remaining = len(points) - i
        left = options.budget - (now - start) - max(per - so_far, 0.0) - per * (remaining - 1)
        return now + max(left, 0.0) / remaining

    for i, (name, experiment, params) in enumerate(points):
        began = time.perf_counter()
        # fresh processes for every benchmark, --processes pairs of them taking turns: a
        # process's own speed (its memory layout, its threads' placement) is then a few more
        # draws per benchmark, averaged over its process pairs and weighed by the run's
        # interval (from the benchmarks' spread), not a bias shared by every benchmark
        workers: list[dict[str, Worker]] = []
        try:
            for j in range(options.processes):
                pair: dict[str, Worker] = {}
                workers.append(pair)  # before the next start can fail: closed below
                pair["A"] = Worker(base, scratch / f"base-{i}-{j}.log", options.threads)
                pair["B"] = Worker(candidate, scratch / f"candidate-{i}-{j}.log", options.threads)
            for pair in workers:
                for w in pair.values():
                    w.check()
            while closing:  # the previous point's workers, gone before these time anything
                closing.pop().reap()
            done = [m.bench for m in measured]
            measured.append(_measure_point(workers, name, experiment, params, options,
                                           lambda i=i, began=began: deadline(i, began),
                                           len(points),
                                           _priors(done), _process(done)))
        finally:
            for pair in workers:
                for w in pair.values():
                    w.close(wait=False)
                    closing.append(w)
        b = measured[-1].bench
        b.seconds["whole"] = time.perf_counter() - began
        if b.skipped is None:
            overheads.append(b.seconds["whole"] - b.seconds.get("pairs", 0.0))
        progress(f"{name}: {b.skipped and 'skipped: ' + b.skipped or b.verdict} "
                 f"({len(b.pairs)} pairs, {time.perf_counter() - start:.0f} s)")
        least = least_seconds([m.bench for m in measured], options.first_look)
        remaining = len(points) - i - 1
        took = time.perf_counter() - start
        if not warned and least and remaining and took + remaining * least > OVERRUN * options.budget:
            warned = True  # said once, as soon as the first benchmarks show it
            progress(f"warning: --budget {options.budget:g} s is too small for {len(points)} "
                     f"benchmarks: each takes about {least:.0f} s at least (its workers and its "
                     f"first {options.first_look} pairs), so this run will take about "
                     f"{took + remaining * least:.0f} s; select fewer with -k, or raise --budget")


#: a run is said to overrun its budget when it takes this much more (a benchmark's first look
#: is never cut short, so a budget too small for the selection is overrun, not obeyed)
OVERRUN = 1.2


def least_seconds(benches: list[Benchmark], first_look: int) -> float | None:
    """The seconds a benchmark needs at least, as the measured ones show: its workers' start,
    build, warm-up and counting, and its first look's pairs (disturbed ones count: they ran).
    None before any benchmark was measured."""
    costs = []
    for b in benches:
        whole, pairs = b.seconds.get("whole"), b.seconds.get("pairs")
        ran = len(b.pairs) + b.disturbed_pairs
        if b.skipped is None and whole is not None and pairs is not None and ran:
            costs.append(whole - pairs + first_look * pairs / ran)
    return statistics.median(costs) if costs else None


def overrun_notes(judged: list[Benchmark], took: float, options: ABOptions) -> list[str]:
    """A line when the run took over OVERRUN times its budget because its benchmarks' first
    looks alone needed more than the budget (what each needs, the fix)."""
    least = least_seconds(judged, options.first_look)
    if took <= OVERRUN * options.budget or not least or least * len(judged) <= options.budget:
        return []
    return [f"the run took {took:.0f} s, over its --budget of {options.budget:g} s: each of its "
            f"{len(judged)} benchmarks needs about {least:.0f} s at least (its workers and its "
            f"first {options.first_look} pairs); select fewer with -k, or raise --budget"]


def _priors(benches: list[Benchmark]) -> dict:
    """The run's pooled pair variance per sample, from the benchmarks measured so far."""
    return {sample: prior_of([b.logs(sample) for b in benches if b.skipped is None])
            for sample in SAMPLES}


def _process(benches: list[Benchmark]) -> dict:
    """The process noise per sample, moderated by the benchmarks measured so far."""
    judged = [b for b in benches if b.skipped is None]
    return {sample: process_noise_of(judged, sample) for sample in SAMPLES}


@dataclass
class _Point:
    """A measured benchmark with both sides' stored shapes (for the counters and the why)."""

    bench: Benchmark
    old: Bench | None = None
    new: Bench | None = None


def _measure_point(workers: list[dict[str, Worker]], name: str, experiment: str, params: dict,
                   options: ABOptions, deadline: Callable[[], float], benchmarks: int,
                   priors: dict,
                   process: dict) -> _Point:
    """Alternate epochs of one benchmark point between the sides, the process pairs taking
    turns (pair ``t`` by process pair ``t % processes``, each pair's order by its own count:
    AB, BA, BA, AB ...), judged at the looks, until it is decided or its deadline passes."""
    b = Benchmark(name)
    loaded: list[dict] = []
    try:
        for pair in workers:
            loaded.append({side: w.ask({"op": "load", "experiment": experiment,
                                        "params": params, "scale": options.scale,
                                        "threads": options.threads})
                           for side, w in pair.items()})
    except WorkerFailed as exc:
        b.skipped = f"could not build it: {exc}"
        return _Point(b)
    skips = [x["skip"] for got in loaded for x in got.values() if "skip" in x]
    if skips:
        b.skipped = skips[0]
        return _Point(b)
    b.gpus = {side: x["gpus"] for side, x in loaded[0].items() if x.get("gpus")}
    k = len(workers)
    paired_from = time.perf_counter()
    stop = deadline()  # the workers are built and warm: the pairs' share of the budget
    epochs: dict[str, list[dict]] = {"A": [], "B": []}
    ran: dict[tuple[int, str], dict] = {}  # (process pair, side): the step that ran
    alpha = 1 - options.confidence
    schedule = looks(options.first_look)
    tries = 0
    while len(b.pairs) < schedule[-1]:
        proc, order = tries % k, _order(tries // k)
        tries += 1
        got, busy = {}, False
        for side in order:
            answer = workers[proc][side].ask({"op": "epoch"})
            got[side] = answer["record"]
            if answer.get("ran"):
                ran[(proc, side)] = answer["ran"]
            share = answer.get("others_share")
            busy |= share is not None and share > BUSY_SHARE
        if busy:
            b.disturbed_pairs += 1
        else:
            b.pairs.append({"a": got["A"], "b": got["B"], "order": order, "proc": proc})
            epochs["A"].append(got["A"])
            epochs["B"].append(got["B"])
        n = len(b.pairs)
        if n in schedule:
            judge_benchmark(b, threshold=options.threshold, alpha=alpha / 2,
                            benchmarks=benchmarks, priors=priors, process=process)
            if b.decided:
                break
        if time.perf_counter() > stop and n >= options.first_look:
            break
        if b.disturbed_pairs > 2 * max(n, options.first_look):
            break  # the machine is busy: more pairs will not tell
    b.seconds["pairs"] = time.perf_counter() - paired_from
    differ = _different_steps(ran, k)
    if differ:
        # a step mode fell back on one side only: the sides trained different steps
        b.skipped = ("the sides ran different steps (a step mode fell back on one side): "
                     + differ)
        return _Point(b)
    first = workers[0]  # counts are exact: one process pair tells them
    counters = {side: w.ask({"op": "count"})["counters"] for side, w in first.items()}
    old = _bench(name, loaded[0]["A"], epochs["A"], counters["A"], None)
    new = _bench(name, loaded[0]["B"], epochs["B"], counters["B"], None)
    if len(b.pairs) >= 2:
        judge_benchmark(b, threshold=options.threshold, alpha=alpha / 2, benchmarks=benchmarks,
                        priors=priors, process=process)
    moved = any(abs(j.change) >= options.threshold / 3 for _, j in b.judged())
    if moved or judge_counters(new, [old]).verdict != COUNT_UNCHANGED:
        # the profiled step breakdown of both sides: the why of a benchmark that moved
        breakdown = {side: w.ask({"op": "breakdown"})["step_breakdown"]
                     for side, w in first.items()}
        old.extra_info["step_breakdown"] = breakdown["A"]
        new.extra_info["step_breakdown"] = breakdown["B"]
    return _Point(b, old, new)


def gpu_notes(benches: list[Benchmark]) -> list[str]:
    """One line each where the two sides saw different physical GPUs, or where one side's
    epochs ran while NVML reported the card throttling and the other's did not (the
    reasons of fer.bench.stats.NOT_THROTTLING aside): part of a change may be the card's."""
    notes = []
    differ = [b for b in benches if len(b.gpus) == 2 and b.gpus["A"] != b.gpus["B"]]
    if differ:
        g = differ[0].gpus
        notes.append(f"{len(differ)} benchmark(s) ran the sides on different physical GPUs "
                     f"({', '.join(u[:12] for u in g['A'])} vs "
                     f"{', '.join(u[:12] for u in g['B'])}): cards of one model differ by several "
                     "percent: part of a change may be the card's, not the code's")
    seen: dict[str, dict[str, int]] = {"A": {}, "B": {}}  # side -> reason -> epochs
    for b in benches:
        for p in b.pairs:
            for side, key in (("A", "a"), ("B", "b")):
                reasons = set((p[key].get("gpu_sampling") or {}).get("throttle_reasons") or [])
                for reason in sorted(reasons - NOT_THROTTLING):
                    seen[side][reason] = seen[side].get(reason, 0) + 1
    for side, other in (("A", "B"), ("B", "A")):
        only = {r: n for r, n in seen[side].items() if r not in seen[other]}
        if only:
            notes.append(f"the card throttled during {side}'s epochs only ("
                         + ", ".join(f"{r} in {n}" for r, n in sorted(only.items()))
                         + "): part of a change may be the card's, not the code's")
    return notes


def _different_steps(ran: dict[tuple[int, str], dict], processes: int) -> str:
    """How the steps the two sides ran differ within a process pair (each side's ``ran`` of
    :attr:`fer.engine.Trainer.step_mode`, as of its last epoch), or "" where none does."""
    for proc in range(processes):
        a, c = ran.get((proc, "A")), ran.get((proc, "B"))
        if a and c and a != c:
            return ", ".join(f"{key} {a.get(key)} vs {value}" for key, value in c.items()
                             if a.get(key) != value) + \
                (f" (process pair {proc + 1})" if processes > 1 else "")
    return ""


def settle(b: Benchmark, counters_verdict: str | None) -> None:
    """A benchmark's final verdict beyond its time: inconclusive on a busy machine (the clock
    cannot tell; the counts still can: a busy machine does not move them), regressed when a
    gated counter rose (``counters_verdict``: fer.bench.counts' verdict)."""
    if b.busy:
        b.verdict = INCONCLUSIVE
    if counters_verdict == COUNT_REGRESSED:
        b.verdict, b.judged_by = REGRESSED, "counters"


def _finish(point: _Point) -> None:
    """A benchmark's final verdict beyond its time (:func:`settle`); the why of one that
    moved."""
    b = point.bench
    if b.skipped is not None:
        return
    busy = b.busy
    counted = judge_counters(point.new, [point.old])
    b.counters = counted.to_dict()
    settle(b, counted.verdict)
    if b.verdict in (REGRESSED, IMPROVED) or counted.verdict != COUNT_UNCHANGED:
        shown = b.shown
        b.why = explain(point.new, [point.old], None if busy else
                        (shown.change if shown else None))
    if busy:
        note = (f"time inconclusive: other processes used the machine during "
                f"{b.disturbed_pairs} of {b.disturbed_pairs + len(b.pairs)} pairs; rerun on a "
                "quiet machine")
        b.why = f"{b.why}; {note}" if b.why else note


def run_ab(base_spec: str, candidate_spec: str, options: ABOptions, *,
           keep: Path | None = None, progress: Callable[[str], None] = lambda s: None) -> ABResult:
    """Resolve both sides in a temporary folder (kept in ``keep`` if given) and measure."""
    options.check()
    select(options.keyword)  # a bad -k fails before anything is built
    repo = repository()
    scratch = Path(tempfile.mkdtemp(prefix="fer-ab-", dir=keep))
    try:
        base = resolve_side("BASE", base_spec, repo, scratch)
        candidate = resolve_side("CANDIDATE", candidate_spec, repo, scratch)
        return measure(base, candidate, options, scratch, progress)
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)



# ----------------------------------------------------------------- bisect --

@dataclass
class BisectStep:
    good: str  # the commit known good when the step ran (the A/B's base)
    tested: str  # the commit tested (the A/B's candidate)
    outcome: str  # "bad" (regressed), "good", "unknown"
    result: ABResult


@dataclass
class BisectResult:
    good: str
    bad: str
    commits: list[str]  # the range, oldest first, GOOD excluded, BAD included
    steps: list[BisectStep]
    culprit: str | None
    seconds: float
    why_not: str | None = None  # why no culprit was isolated

    def to_dict(self) -> dict:
        return {"good": self.good, "bad": self.bad, "commits": self.commits,
                "culprit": self.culprit, "seconds": self.seconds, "why_not": self.why_not,
                "steps": [{"good": s.good, "tested": s.tested, "outcome": s.outcome,
                           "ab": s.result.to_dict()} for s in self.steps]}


def outcome(result: ABResult) -> str:
    """An A/B result as a bisect step: bad (something regressed), good (nothing regressed and
    the run as a whole is less than --threshold slower: its one-sided upper bound is below it,
    a non-inferiority test: the commit does not hold a regression worth bisecting), else
    unknown."""
    if result.failed:
        return "bad"
    shift = result.shift
    if shift is not None and (shift.verdict in (UNCHANGED, IMPROVED)
                              or shift.high < result.options.threshold):
        return "good"  # (a regressed whole epoch made it "bad" above)
    judged = result.judged
    if judged and all(b.verdict in (UNCHANGED, IMPROVED) for b in judged):
        return "good"
    return "unknown"


def commit_range(repo: Path, good: str, bad: str) -> tuple[str, str, list[str]]:
    """GOOD and BAD as commits, and the first-parent commits after GOOD up to BAD."""
    ids = []
    for role, spec in (("GOOD", good), ("BAD", bad)):
        found = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}", check=False)
        if found.returncode != 0:
            raise ABError(f"{role} {spec!r} is not a revision of {repo}; check it with "
                          "`git rev-parse`")
        ids.append(found.stdout.strip())
    if _git(repo, "merge-base", "--is-ancestor", ids[0], ids[1], check=False).returncode != 0:
        raise ABError(f"GOOD {good!r} is not an ancestor of BAD {bad!r}: give the older commit "
                      "first")
    commits = _git(repo, "rev-list", "--first-parent", "--reverse", f"{ids[0]}..{ids[1]}"
                   ).stdout.split()
    if not commits:
        raise ABError(f"GOOD {good!r} and BAD {bad!r} are the same commit: nothing to bisect")
    return ids[0], ids[1], commits


def bisect(good: str, bad: str, options: ABOptions,
           progress: Callable[[str], None] = lambda s: None) -> BisectResult:
    """Binary search of the first commit of GOOD..BAD where the selected benchmarks regress:
    each step an A/B test of the newest known-good commit against the middle of the range (an
    unknown answer is asked once more with twice the budget), then (if not run already) the
    culprit against its parent, to show its table and why."""
    options.check()
    select(options.keyword)
    repo = repository()
    if repo is None:
        raise ABError("fer bisect runs inside a git repository (the current folder is not in one)")
    start = time.perf_counter()
    good_id, bad_id, commits = commit_range(repo, good, bad)
    chain = [good_id, *commits]  # chain[0] good, chain[-1] bad
    lo, hi = 0, len(chain) - 1
    steps: list[BisectStep] = []

    def test(base: int, candidate: int, budget: float = options.budget) -> BisectStep:
        progress(f"step {len(steps) + 1}: {chain[base][:10]} (good) vs {chain[candidate][:10]} "
                 f"({hi - lo - 1} commit(s) left between good and bad, budget {budget:g} s)")
        result = run_ab(chain[base], chain[candidate], replace(options, budget=budget),
                        progress=progress)
        step = BisectStep(chain[base], chain[candidate], outcome(result), result)
        steps.append(step)
        progress(f"  -> {step.outcome} ({result.seconds:.0f} s)")
        return step

    while hi - lo > 1:
        mid = (lo + hi) // 2
        step = test(lo, mid)
        if step.outcome == "unknown":  # once more, with twice the pairs' time
            step = test(lo, mid, 2 * options.budget)
        if step.outcome == "bad":
            hi = mid
        elif step.outcome == "good":
            lo = mid
        else:
            return BisectResult(good_id, bad_id, commits, steps, None, time.perf_counter() - start,
                                why_not=f"the A/B of {chain[mid][:10]} against {chain[lo][:10]} "
                                        "was unknown within its budget: raise --budget or "
                                        "narrow -k to the benchmarks that regressed")
    culprit = chain[hi]
    confirmed = [s for s in steps if s.tested == culprit and s.good == chain[hi - 1]]
    if not confirmed:
        confirmed = [test(hi - 1, hi)]
    last = confirmed[-1]
    why_not = None
    if last.outcome != "bad":
        why_not = (f"{culprit[:10]} did not regress against its parent on its own ({last.outcome}):"
                   " the slowdown builds up over several commits, or it is below what the "
                   "budget can see")
        culprit = None
    return BisectResult(good_id, bad_id, commits, steps, culprit, time.perf_counter() - start,
                        why_not=why_not)
