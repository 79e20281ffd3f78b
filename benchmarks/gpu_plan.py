"""The GPU plan: the GPU tests and the perf suite in calls that fit the GPU machine's windows.

The GPU machine comes in windows of 15 minutes, start-up included, at most 10 minutes a
command. The plan runs in calls of at most 8 minutes each, the most valuable work first, and
calls 1 and 2 together fit 11 minutes (one window less the machine's start-up):

    python benchmarks/gpu_plan.py --plan                          # each call's steps and time
    python benchmarks/gpu_plan.py --plan --hardware-class NVIDIA_H100_80GB_HBM3-x1
    python benchmarks/gpu_plan.py run 1 out/                      # call 1 on the GPU box

call 1 proves the CUDA paths (the GPU unit tests of the graphed, fused, compiled steps), then
measures the step experiment and fer against a bare timm loop; call 2 the study's factors
(precision, loader, workers, optimizer, batch size); calls 3 to 5, for later windows, the
rest (together the calls run every point of the registry). ``run`` bounds a call's wall
time: each step gets a timeout from what is left of the call (SIGINT first, so pytest writes
the JSON of the benchmarks that finished; a kill only if it has not ended after a grace
period); a step that cannot start within what is left is skipped and logged. Every
experiment writes its own benchmark JSON (written as ``NAME.json.partial`` and renamed when
the process has ended and the file parses, so a JSON under its final name is never torn),
and ``gpu_plan_callN.json`` records every step: its command, status, exit code and seconds,
rewritten after each step.

``--plan`` reads no torch and needs no GPU: it estimates each step from the newest committed
runs of the hardware class under ``docs/perf/<class>/`` (a step's measured seconds in a
committed ``gpu_plan_callN.json``; else the benchmark JSON: per point the warm-up and timed
epochs, scaled to the steps planned, plus validation and setup), and from step counts (steps
per epoch x a time per step) where there are none, naming the source of every figure and
what each call's reductions cut. It exits 1 when a call is over 8 minutes, calls 1 and 2
over 11, or a step over its own timeout, so CI on a CPU can check that the plan fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer.bench.storage import Bench, BenchmarkFileError, Run, load_run  # noqa: E402
from fer.suite.experiments import EXPERIMENTS, Experiment, Machine, point_id  # noqa: E402
from fer.suite.scales import PerfScale, resolve_scale  # noqa: E402

#: one call's wall time: 8 minutes (a command may run 10; the rest is slack for the machine)
CALL_LIMIT_S = 480.0
#: calls 1 and 2 together: one 15-minute window less the machine's start-up (about 4 minutes)
WINDOW_S = 660.0
#: after SIGINT, the time a step has to write its JSON and exit before it is killed
GRACE_S = 20.0
#: the GPU box this project is lent (the class of the committed runs)
DEFAULT_CLASS = "NVIDIA_H200-x1"
PERF_DIR = ROOT / "docs" / "perf"
CALL_RECORD = "gpu_plan_call{call}.json"


@dataclass(frozen=True)
class Assumed:
    """A figure no committed run gives: its value and why it is what it is."""

    seconds: float
    why: str


#: the figures the plan assumes where the committed runs say nothing (named in its output)
ASSUMED = {
    "process": Assumed(10.0, "a pytest process: interpreter, torch and timm imports, CUDA "
                       "start, the session's synthetic faces (the committed H200 logs: 4-5 s "
                       "outside pytest's clock, the faces inside it)"),
    "point": Assumed(5.0, "a benchmark's build, reference workload, profiled and counted steps "
                     "beyond its epochs (the committed H200 logs: 1.2-4.9 s a point before the "
                     "profiled and counted steps were added)"),
    "compile": Assumed(90.0, "torch.compile of efficientnet_b0's step, cold (no committed "
                       "measurement)"),
    "compile_cached": Assumed(30.0, "a later compile of the same model and precision in one "
                              "process: dynamo traces again, inductor's graphs come from its "
                              "cache (no committed measurement)"),
    "capture": Assumed(3.0, "the warm-up and capture of a CUDA graph (no committed "
                       "measurement)"),
    "eval": Assumed(0.5, "a validation pass (no committed run of this class)"),
    "step_fer": Assumed(0.025, "an efficientnet_b0 step at 48x48, batch 64 (no committed run "
                        "of this class)"),
    "step_fer_study": Assumed(0.060, "an efficientnet_b0 step at 224x224 from 8 DataLoader "
                              "workers (no committed run at the study scale)"),
    "step_pose": Assumed(0.060, "an HRNet pose step at 256x192 (no committed pose run)"),
    "profiled": Assumed(3.0, "an epoch under torch.profiler, as a multiple of a plain one, "
                        "with its trace's processing (no committed profiler run)"),
    "launch": Assumed(25.0, "a torchrun launch: processes, imports, data (no committed DDP "
                      "run)"),
    "call": Assumed(3.0, "the call's own start: this script and nvidia-smi"),
    "peer_build": Assumed(5.0, "fer's trainer and synthetic faces, built for each peer "
                          "repeat"),
}

# ---------------------------------------------------------------------------------- the plan --

#: the perf test of each experiment: (file, test function)
NODES = {
    "workers": ("perf_tests/test_workers.py", "test_workers"),
    "precision": ("perf_tests/test_precision.py", "test_precision"),
    "optimizer": ("perf_tests/test_optimizer.py", "test_optimizer"),
    "batch_size": ("perf_tests/test_batch_size.py", "test_batch_size"),
    "dataparallel": ("perf_tests/test_dataparallel.py", "test_dataparallel"),
    "ddp": ("perf_tests/test_ddp.py", "test_ddp"),
    "loader": ("perf_tests/test_loader.py", "test_loader"),
    "pose_batch_size": ("perf_tests/test_pose.py", "test_pose_batch_size"),
    "pose_dataparallel": ("perf_tests/test_pose.py", "test_pose_dataparallel"),
    "profiler": ("perf_tests/test_profiler.py", "test_profiler_overhead_and_categories"),
    "step": ("perf_tests/test_step.py", "test_step"),
}

#: the GPU unit tests that prove the CUDA paths: graphed vs eager losses (fp32, amp_bf16,
#: amp_fp16), a fused capturable optimizer with DataLoader workers, a compiled model captured
GPU_TESTS = (
    "unit_tests/test_graphs.py::test_cuda_graph_matches_eager_on_a_gpu",
    "unit_tests/test_graphs.py::test_fused_compiled_and_loader_graphs_train_on_a_gpu",
)


@dataclass(frozen=True)
class Step:
    """One command of a call. ``kind``: ``gpu-tests`` (pytest over unit tests), ``experiment``
    (one perf experiment, some of its points), ``peer`` (benchmarks/peer_timm.py) or
    ``command`` (``args`` run as they are; ``{json}`` becomes the step's output file)."""

    name: str  # its files: NAME.json, NAME.log
    kind: str
    what: str
    cap_s: float  # its own timeout; what is left of the call may cut it shorter
    min_s: float = 30.0  # the least time worth starting it with
    experiment: str | None = None
    points: tuple[str, ...] | None = None  # point ids of the experiment (None: its whole grid)
    rounds: int | None = None  # --perf-rounds (None: the scale's)
    args: tuple[str, ...] = ()  # gpu-tests: pytest's node ids and flags; peer/command: argv
    reduced: str = ""  # what was cut from this step, and why

    def signature(self, scale: str, step_mode: str) -> str:
        """What makes two runs of a step the same work (a committed measurement applies)."""
        return json.dumps([self.kind, self.experiment, self.points, self.rounds, self.args,
                           scale, step_mode])


def _peer(precision: str, graph: bool) -> Step:
    name = f"peer_{precision}{'_graph' if graph else ''}"
    return Step(name=name, kind="peer", cap_s=90, min_s=30,
                what=f"fer's step vs a bare timm loop, {precision}{', fer graphed' if graph else ''}",
                args=("--device", "cuda", "--precision", precision, "--steps", "100",
                      "--repeats", "3", *(("--cuda-graph",) if graph else ())),
                reduced="100 timed steps a repeat (the script's default 200): the ratio is "
                        "of medians over 3 alternating repeats, and call 1 must fit")


_STEP_MODES_1 = tuple(f"{m}-{p}" for m in ("eager", "fused", "graph") for p in ("fp32", "amp_bf16"))
_COMPILED = tuple(f"{m}-{p}" for p in ("amp_bf16", "fp32") for m in ("compile+graph", "compile"))
_ONE_EPOCH = "1 timed epoch (the committed H200 runs have 1 or 2)"

CALLS: dict[int, tuple[str, tuple[Step, ...]]] = {
    1: ("the CUDA paths: the GPU unit tests, the step experiment, fer vs a bare timm loop", (
        Step(name="gpu_tests", kind="gpu-tests", cap_s=60, min_s=30, args=(*GPU_TESTS, "-m", "gpu"),
             what="GPU unit tests: graphed vs eager losses (fp32, amp_bf16, amp_fp16), fused + "
                  "workers, compile + graph",
             reduced="only the 5 GPU tests of the CUDA paths, capped at 60 s; the compile + "
                     "graph test runs last, so the cap cuts it alone (call 4's compiled step "
                     "points then prove that path); the other GPU tests run in call 3"),
        Step(name="step", kind="experiment", experiment="step", points=_STEP_MODES_1, rounds=2,
             cap_s=170, min_s=40,
             what="the step experiment: eager, fused, CUDA graph x fp32, amp_bf16",
             reduced="the 4 compiled points moved to call 4 (each compiles for a minute or "
                     "more, cold; the eager and graphed points answer the targets); 2 timed "
                     "epochs of 200 steps (the spread needs two)"),
        _peer("fp32", graph=False),
        _peer("fp32", graph=True),
    )),
    2: ("the study's factors: the telling points, one timed epoch each", (
        Step(name="precision", kind="experiment", experiment="precision", rounds=1, cap_s=100,
             points=("fp32-nchw", "amp_bf16-nchw"), what="precision: fp32, amp_bf16 (NCHW)",
             reduced="amp_fp16 and channels_last moved to call 5 (amp_bf16 is the target's "
                     "precision; channels_last was 1.3-1.8x slower at 48x48 in the committed "
                     f"run); {_ONE_EPOCH}"),
        Step(name="loader", kind="experiment", experiment="loader", rounds=1, cap_s=90,
             what="loader: DataLoader (2 workers) vs device-resident", reduced=_ONE_EPOCH),
        Step(name="workers", kind="experiment", experiment="workers", rounds=1, cap_s=140,
             points=("0", "2", "8"), what="DataLoader workers 0, 2, 8",
             reduced=f"1, 4 and 16 workers moved to call 5 (0, 2 and 8 show the fall and the "
                     f"study's best); {_ONE_EPOCH}"),
        Step(name="optimizer", kind="experiment", experiment="optimizer", rounds=1, cap_s=80,
             points=("sgd", "adam"), what="optimizer: sgd, adam",
             reduced=f"the other 6 optimizers moved to call 5 (sgd and adam: the least and a "
                     f"most per-parameter state); {_ONE_EPOCH}"),
        Step(name="batch_size", kind="experiment", experiment="batch_size", rounds=1, cap_s=90,
             points=("64", "256", "512"), what="batch size 64, 256, 512",
             reduced=f"32 and 128 moved to call 4 (batch 32's epoch is the longest of the "
                     f"suite); {_ONE_EPOCH}"),
    )),
    3: ("for a later window: profiler, pose, DataParallel, DDP, the other GPU tests", (
        Step(name="gpu_tests_more", kind="gpu-tests", cap_s=60, min_s=30,
             args=("unit_tests", "-m", "gpu", "--ignore=unit_tests/test_graphs.py"),
             what="the other GPU unit tests (NVML, the engine on CUDA, counters, a failed "
                  "capture's fallback)"),
        Step(name="profiler", kind="experiment", experiment="profiler", cap_s=90,
             what="an epoch with and without torch.profiler"),
        Step(name="dataparallel", kind="experiment", experiment="dataparallel", rounds=1,
             cap_s=120, what="DataParallel x per-GPU batch 32, 64, 128 (the device counts the "
                             "machine has)", reduced=_ONE_EPOCH),
        Step(name="ddp", kind="experiment", experiment="ddp", rounds=1, cap_s=80,
             what="DDP under torchrun (the world sizes the machine has)", reduced=_ONE_EPOCH),
        Step(name="pose_batch_size", kind="experiment", experiment="pose_batch_size", rounds=1,
             cap_s=90, what="HRNet pose: batch 16, 32, 64", reduced=_ONE_EPOCH),
        Step(name="pose_dataparallel", kind="experiment", experiment="pose_dataparallel",
             rounds=1, cap_s=90, what="HRNet pose: DataParallel x per-GPU batch 16, 32, 64",
             reduced=_ONE_EPOCH),
        dataclasses.replace(_peer("amp_bf16", graph=True),
                            reduced="moved from call 1 (fp32 answers the target)"),
    )),
    4: ("for a later window: the compiled step, the batches calls 1 and 2 left out", (
        Step(name="step_compile", kind="experiment", experiment="step", points=_COMPILED,
             rounds=2, cap_s=420, min_s=120,
             what="the step experiment's compiled points: compile+graph, compile x amp_bf16, "
                  "fp32",
             reduced="each compile is bounded by the scale's compile budget (120 s): one "
                     "still compiling at it is stopped, the point trained uncompiled with the "
                     "fallback recorded; the step's cap is the last resort"),
        Step(name="batch_size_more", kind="experiment", experiment="batch_size", rounds=1,
             cap_s=100, points=("32", "128"), what="batch size 32, 128", reduced=_ONE_EPOCH),
    )),
    5: ("for a later window: the points call 2 left out", (
        Step(name="precision_more", kind="experiment", experiment="precision", rounds=1,
             cap_s=230, points=("amp_fp16-nchw", "fp32-channels_last", "amp_fp16-channels_last",
                                "amp_bf16-channels_last"),
             what="precision: amp_fp16, and channels_last x fp32, amp_fp16, amp_bf16",
             reduced=_ONE_EPOCH),
        Step(name="workers_more", kind="experiment", experiment="workers", rounds=1, cap_s=130,
             points=("1", "4", "16"), what="DataLoader workers 1, 4, 16", reduced=_ONE_EPOCH),
        Step(name="optimizer_more", kind="experiment", experiment="optimizer", rounds=1,
             cap_s=200, what="the other optimizers",
             points=("sgd_momentum", "sgd_nesterov", "adamw", "rmsprop", "adagrad", "adadelta"),
             reduced=_ONE_EPOCH),
    )),
}


def plan_steps(call: int) -> tuple[Step, ...]:
    if call not in CALLS:
        raise SystemExit(f"gpu_plan.py: no call {call}; the calls are {', '.join(map(str, CALLS))}")
    return CALLS[call][1]


# ------------------------------------------------------------------------- the committed runs --

def gpu_count(hardware_class: str) -> int:
    """``NVIDIA_H200-x1`` -> 1 (``fer.gpu.hardware_class``'s suffix); 0 for a CPU class."""
    match = re.search(r"-x(\d+)$", hardware_class)
    return int(match.group(1)) if match and not hardware_class.startswith("cpu-") else 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class ClassRuns:
    """The committed runs of one hardware class: benchmark JSON and the plan's call records."""

    folder: Path
    runs: list[Run] = field(default_factory=list)  # newest first
    calls: list[dict] = field(default_factory=list)  # gpu_plan_callN.json, newest first

    @classmethod
    def read(cls, folder: Path) -> ClassRuns:
        found = cls(folder)
        if not folder.is_dir():
            return found
        for path in sorted(folder.rglob("*.json")):
            if re.fullmatch(r"gpu_plan_call\d+\.json", path.name):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(record, dict) and isinstance(record.get("steps"), list):
                    found.calls.append(dict(record, path=str(path.relative_to(folder))))
                continue
            try:
                found.runs.append(load_run(path))
            except BenchmarkFileError:  # peer results, anything else: not a run
                continue
        found.runs.sort(key=lambda r: r.order_key, reverse=True)
        found.calls.sort(key=lambda c: str(c.get("started") or ""), reverse=True)
        return found

    def benches(self, *, experiment: str | None = None, scale: PerfScale | None = None
                ) -> Iterable[tuple[Run, Bench]]:
        """(run, benchmark), newest run first, of ``experiment`` (any when None) measured at
        ``scale`` (its name and model)."""
        for run in self.runs:
            for bench in run.benchmarks.values():
                if experiment is not None and bench.experiment != experiment:
                    continue
                if scale is not None:
                    stored = bench.extra_info.get("scale")
                    stored = stored if isinstance(stored, dict) else {}
                    if stored.get("name", scale.name) != scale.name or \
                            stored.get("model", scale.model) != scale.model:
                        continue
                yield run, bench

    def measured(self, step: Step, signature: str) -> tuple[float, str] | None:
        """A step's seconds in the newest committed call record that ran the same work."""
        for record in self.calls:
            for done in record["steps"]:
                if isinstance(done, dict) and done.get("name") == step.name and \
                        done.get("signature") == signature and \
                        done.get("status") in ("finished", "failed") and \
                        _number(done.get("seconds")):
                    return float(done["seconds"]), f"measured: {record['path']}"
        return None


def _config(bench: Bench) -> dict:
    config = bench.extra_info.get("config")
    return config if isinstance(config, dict) else {}


def _records(bench: Bench) -> list[dict]:
    return [r for r in bench.extra_info.get("records") or [] if isinstance(r, dict)]


def _epoch_steps(bench: Bench) -> int | None:
    steps = [r.get("steps") for r in _records(bench) if isinstance(r.get("steps"), int)]
    return steps[-1] if steps and steps[-1] > 0 else None


def step_seconds(bench: Bench) -> float | None:
    """The median timed epoch over its steps: one step's time, the epoch's share of data wait
    and host work included."""
    steps, median = _epoch_steps(bench), _number(bench.summary.get("median_wall_s"))
    return median / steps if steps and median else None


def _graphed(config: dict) -> bool:
    return bool(config.get("cuda_graph"))


def _compiled(config: dict) -> bool:
    return config.get("compile") not in (None, False, "none")


# --------------------------------------------------------------------------------- estimates --

@dataclass
class Estimate:
    """A figure of the plan: seconds, and where they came from (``kind``: measured, runs,
    steps, cap, skipped)."""

    seconds: float
    kind: str
    source: str


@dataclass
class StepEstimate:
    step: Step
    seconds: float
    parts: list[tuple[str, Estimate]]  # (point or part, its estimate)

    @property
    def kinds(self) -> set[str]:
        """The sources of its figures (the process's start, assumed everywhere, left out)."""
        return {e.kind for part, e in self.parts if part != "start"}


@dataclass
class Planner:
    """Estimates the steps of the plan for one hardware class from its committed runs."""

    runs: ClassRuns
    hardware_class: str
    scale: PerfScale
    step_mode: str = "auto"  # auto: the scale's fastest honest step; eager: never graph

    @classmethod
    def for_class(cls, hardware_class: str, *, perf_dir: Path = PERF_DIR, scale: str = "full",
                  step_mode: str = "auto") -> Planner:
        return cls(ClassRuns.read(perf_dir / hardware_class), hardware_class,
                   resolve_scale(scale, cuda=True, eager=step_mode == "eager"), step_mode)

    @property
    def machine(self) -> Machine:
        return Machine(cuda_devices=gpu_count(self.hardware_class), cpus=os.cpu_count() or 1)

    def scale_for(self, step: Step) -> PerfScale:
        return dataclasses.replace(self.scale, rounds=step.rounds) if step.rounds else self.scale

    # -- the steps of one epoch, from the registry and the scale (what the engine will do)
    def planned_steps(self, experiment: Experiment, params: dict, scale: PerfScale) -> tuple[int, dict]:
        config = experiment.configure(params, scale)
        if experiment.task == "pose":
            images, batch = round(scale.pose_images * 0.8), config.get("batch_size", 32)
        else:
            images, batch = scale.train_images, config.get("batch_size", scale.batch_size)
        devices = config.get("devices") or 1
        steps = max(1, images // (batch * devices))
        bound = config.get("max_steps_per_epoch")
        if bound is None and scale.epoch_images and experiment.task != "pose":
            bound = max(1, scale.epoch_images // batch)
        if bound:
            steps = min(steps, bound)
        graph = bool(config.get("cuda_graph")) or (experiment.fast_step and scale.graph_step)
        return steps, {"compile_budget": scale.compile_budget, **config, "cuda_graph": graph,
                       "batch_size": batch}

    # -- a time per step where the point has no run: its siblings, the class, an assumption
    def reference_step(self, experiment: Experiment, config: dict, *, siblings: bool = True
                       ) -> tuple[float, str, bool]:
        """(seconds a step, its source, whether it is assumed): the median step of the
        experiment's measured points (of the same precision where there are some), else of
        the class's committed points closest to ``config``, else an assumed figure."""
        precision = config.get("precision", "fp32")
        measured = [b for _, b in self.runs.benches(experiment=experiment.name, scale=self.scale)
                    if step_seconds(b)] if siblings else []
        same = [b for b in measured if _config(b).get("precision", "fp32") == precision]
        if same or measured:
            chosen = same or measured
            value = statistics.median(step_seconds(b) for b in chosen)
            return value, (f"{1000 * value:.1f} ms, the median step of {len(chosen)} measured "
                           f"point(s) of {experiment.name}"), False
        if experiment.task == "fer":
            batch = config.get("batch_size", self.scale.batch_size)
            ranked: dict[tuple, list[Bench]] = {}
            for _, b in self.runs.benches(scale=self.scale):
                c = _config(b)
                if c.get("task", "fer") != "fer" or not step_seconds(b) or _compiled(c):
                    continue
                rank = (c.get("precision", "fp32") != precision, c.get("batch_size") != batch,
                        c.get("optimizer", "adam") != config.get("optimizer", "adam"),
                        c.get("parallel", "none") not in (None, "none"),
                        bool(c.get("channels_last")) != bool(config.get("channels_last")),
                        _graphed(c) != bool(config.get("cuda_graph")),
                        (c.get("num_workers") or 0) > 0)
                ranked.setdefault(rank, []).append(b)
            if ranked:
                chosen = ranked[min(ranked)]
                value = statistics.median(step_seconds(b) for b in chosen)
                names = ", ".join(b.name for b in chosen[:3]) + (", ..." if len(chosen) > 3 else "")
                return value, (f"{1000 * value:.1f} ms, the median step of the committed "
                               f"point(s) closest to it ({names})"), False
        key = "step_pose" if experiment.task == "pose" else \
            "step_fer_study" if self.scale.name == "study" else "step_fer"
        return ASSUMED[key].seconds, f"{1000 * ASSUMED[key].seconds:.0f} ms (assumed: " \
            f"{ASSUMED[key].why})", True

    def graph_ratio(self, precision: str) -> tuple[float, str] | None:
        """The graphed step's time over the eager step's, from a committed step experiment."""
        found: dict[str, float] = {}
        for _, b in self.runs.benches(experiment="step", scale=self.scale):
            mode = b.params.get("mode")
            if b.params.get("precision") == precision and mode in ("eager", "graph") \
                    and mode not in found and step_seconds(b):
                found[mode] = step_seconds(b)
        if len(found) == 2:
            return found["graph"] / found["eager"], f"graph/eager {precision} of the committed step run"
        return None

    def _eval_s(self) -> float:
        evals = [r["eval_s"] for _, b in self.runs.benches(scale=self.scale) for r in _records(b)
                 if _number(r.get("eval_s"))]
        return statistics.median(evals) if evals else ASSUMED["eval"].seconds

    @staticmethod
    def _compile_s(config: dict, compiled_before: set[str], notes: list[str]) -> float:
        """The assumed compile time of a point: cold, or from inductor's cache when the step
        compiled the same precision before (``compiled_before``, updated); never more than
        the point's compile budget (``compile_budget``: a compile past it is stopped and the
        point trains uncompiled, the fallback recorded)."""
        precision = config.get("precision", "fp32")
        key = "compile_cached" if precision in compiled_before else "compile"
        compiled_before.add(precision)
        seconds = ASSUMED[key].seconds
        budget = config.get("compile_budget") or 0.0
        if budget and budget < seconds:
            notes.append(f"compile bounded by its budget, {budget:.0f} s")
            return float(budget)
        notes.append(f"{'a cached ' if key == 'compile_cached' else ''}compile {seconds:.0f} s "
                     f"(assumed{f'; its budget {budget:.0f} s' if budget else ''})")
        return seconds

    def point(self, experiment: Experiment, params: dict, scale: PerfScale,
              compiled_before: set[str] | None = None) -> Estimate:
        """One benchmark: its warm-up and timed epochs, validation, setup and overhead
        (``compiled_before``: the precisions compiled by earlier points of the same process)."""
        compiled_before = set() if compiled_before is None else compiled_before
        reason = experiment.skip(params, scale, self.machine)
        if reason:
            return Estimate(0.0, "skipped", f"skipped: {reason}")
        rounds = scale.rounds
        steps, config = self.planned_steps(experiment, params, scale)
        overhead = ASSUMED["point"].seconds
        match = next((b for _, b in self.runs.benches(experiment=experiment.name, scale=scale)
                      if all(b.params.get(k) == v for k, v in params.items())
                      and _config(b).get("precision", config.get("precision", "fp32"))
                      == config.get("precision", "fp32")), None)
        notes: list[str] = []
        if match is not None and _epoch_steps(match):
            stored = _config(match)
            records = _records(match)
            median = float(match.summary["median_wall_s"])
            warm = next((r["wall_s"] for r in records if r.get("warmup")), median)
            factor = steps / _epoch_steps(match)
            if config.get("cuda_graph") and not _graphed(stored):
                ratio = self.graph_ratio(config.get("precision", "fp32"))
                if ratio:
                    factor *= ratio[0]
                    notes.append(f"x {ratio[0]:.2f}, {ratio[1]}")
                else:
                    notes.append("an eager run: the graphed step should take less")
            elif _graphed(stored) and not config.get("cuda_graph"):
                ratio = self.graph_ratio(config.get("precision", "fp32"))
                if ratio:
                    factor /= ratio[0]
                    notes.append(f"/ {ratio[0]:.2f}, {ratio[1]}")
                else:
                    notes.append("a graphed run: the eager step takes longer")
            evals = [r["eval_s"] for r in records if _number(r.get("eval_s"))]
            eval_s = statistics.median(evals) if evals else self._eval_s()
            setup = sum(v for v in (match.extra_info.get("setup_s") or {}).values()
                        if _number(v))
            if config.get("cuda_graph") and not _graphed(stored):
                setup += ASSUMED["capture"].seconds
            if _compiled(config) and not _compiled(stored):
                setup += self._compile_s(config, compiled_before, notes)
            if experiment.name == "profiler":  # a warm-up, a plain epoch, the profiled epoch
                epochs = (sum(r["wall_s"] for r in records) + median) * factor
            elif experiment.name == "ddp" and _number(match.extra_info.get("launch_s")):
                # the launch (processes, imports, data) as measured, the epochs as planned
                launch = float(match.extra_info["launch_s"]) - sum(r["wall_s"] for r in records)
                epochs = max(launch, 0.0) + (warm + rounds * median) * factor
            else:
                epochs = (warm + rounds * median) * factor
            seconds = epochs + (rounds + 1) * eval_s + setup + overhead
            scaled = f", scaled to {steps} steps" if steps != _epoch_steps(match) else ""
            return Estimate(seconds, "runs", f"{match.name} of the committed run{scaled}"
                            + "".join(f"; {n}" for n in notes))
        step_s, source, assumed = self.reference_step(experiment, config)
        epochs = (1 + rounds) * steps * step_s
        if experiment.name == "profiler":
            epochs = (2 + ASSUMED["profiled"].seconds) * steps * step_s
            notes.append(f"the profiled epoch {ASSUMED['profiled'].seconds:.0f}x a plain one "
                         "(assumed)")
        if experiment.name == "ddp":
            epochs += ASSUMED["launch"].seconds
            notes.append(f"launch {ASSUMED['launch'].seconds:.0f} s (assumed)")
        setup = 0.0
        if config.get("cuda_graph"):
            setup += ASSUMED["capture"].seconds
        if _compiled(config):
            setup += self._compile_s(config, compiled_before, notes)
        seconds = epochs + (rounds + 1) * self._eval_s() + setup + overhead
        return Estimate(seconds, "assumed" if assumed else "steps",
                        f"step counts: {1 + rounds} epochs x {steps} steps x {source}"
                        + "".join(f"; {n}" for n in notes))

    def estimate(self, step: Step) -> StepEstimate:
        signature = step.signature(self.scale.name, self.step_mode)
        measured = self.runs.measured(step, signature)
        if measured:
            seconds, source = measured
            return StepEstimate(step, seconds, [("step", Estimate(seconds, "measured", source))])
        if step.kind == "gpu-tests":
            return StepEstimate(step, step.cap_s, [("step", Estimate(
                step.cap_s, "cap", f"its cap: pytest is stopped at {step.cap_s:.0f} s (no "
                "committed timing)"))])
        if step.kind == "peer":
            return self._peer(step)
        if step.kind == "experiment":
            experiment = EXPERIMENTS[step.experiment]
            scale = self.scale_for(step)
            grid = {point_id(p): p for p in experiment.grid}
            points = step.points or tuple(grid)
            parts = [("start", Estimate(ASSUMED["process"].seconds, "assumed",
                                        "a pytest process (assumed)"))]
            compiled: set[str] = set()
            parts += [(pid, self.point(experiment, dict(grid[pid]), scale, compiled))
                      for pid in points]
            return StepEstimate(step, sum(e.seconds for _, e in parts), parts)
        return StepEstimate(step, step.cap_s, [("step", Estimate(step.cap_s, "cap", "its cap"))])

    def _peer(self, step: Step) -> StepEstimate:
        args = list(step.args)

        def flag(name: str, default: str) -> str:
            return args[args.index(name) + 1] if name in args else default

        precision = flag("--precision", "fp32")
        steps, warmup = int(flag("--steps", "200")), int(flag("--warmup", "20"))
        repeats = int(flag("--repeats", "3"))
        step_s, source, assumed = self.reference_step(
            EXPERIMENTS["precision"], {"precision": precision, "batch_size": 64}, siblings=False)
        build = ASSUMED["peer_build"].seconds
        seconds = ASSUMED["process"].seconds + repeats * (build + 2 * (warmup + steps) * step_s)
        return StepEstimate(step, seconds, [("step", Estimate(
            seconds, "assumed" if assumed else "steps",
            f"step counts: {repeats} repeats x 2 loops x {warmup + steps} steps x {source} "
            f"(an eager step); + {build:.0f} s a repeat to build fer's side (assumed)"))])


# ------------------------------------------------------------------------------ printing it --

def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


@dataclass
class Plan:
    """Every call's estimated steps, and what does not fit."""

    planner: Planner
    calls: dict[int, list[StepEstimate]]
    problems: list[str]

    @property
    def fits(self) -> bool:
        return not self.problems

    def total(self, call: int) -> float:
        return ASSUMED["call"].seconds + sum(e.seconds for e in self.calls[call])


def build_plan(planner: Planner, calls: Iterable[int] = tuple(CALLS)) -> Plan:
    plan = Plan(planner, {c: [planner.estimate(s) for s in CALLS[c][1]] for c in calls}, [])
    for call, estimates in plan.calls.items():
        for e in estimates:
            if e.seconds > e.step.cap_s + 1e-9:
                plan.problems.append(f"call {call}: {e.step.name} expected {e.seconds:.0f} s, "
                                     f"over its cap of {e.step.cap_s:.0f} s: its last points "
                                     "would be cut")
        if plan.total(call) > CALL_LIMIT_S:
            plan.problems.append(f"call {call}: expected {plan.total(call):.0f} s, over "
                                 f"{_minutes(CALL_LIMIT_S)}")
    if 1 in plan.calls and 2 in plan.calls and plan.total(1) + plan.total(2) > WINDOW_S:
        plan.problems.append(f"calls 1+2: expected {plan.total(1) + plan.total(2):.0f} s, over "
                             f"{_minutes(WINDOW_S)}")
    return plan


def _source_lines(e: StepEstimate, pad: str) -> list[str]:
    lines, skipped = [], {}
    for part, est in e.parts:
        if part == "start":
            continue
        if est.kind == "skipped":
            skipped.setdefault(est.source.removeprefix("skipped: "), []).append(part)
        elif part == "step":
            lines.append(f"{pad}{est.source}")
        else:
            lines.append(f"{pad}{part or 'the point'}: {est.seconds:.0f} s, {est.source}")
    for reason, parts in skipped.items():
        lines.append(f"{pad}skipped on this class: {', '.join(parts)} ({reason})")
    return lines


def plan_text(plan: Plan) -> str:
    """The plan as the terminal shows it: each call's steps, their expected seconds, caps and
    sources, what was reduced, and whether it fits."""
    planner, runs = plan.planner, plan.planner.runs
    lines = [f"GPU plan for {planner.hardware_class}: scale {planner.scale.name}, step "
             f"{planner.step_mode}; calls of at most {_minutes(CALL_LIMIT_S)}, calls 1+2 within "
             f"{_minutes(WINDOW_S)} (a 15-minute window less the machine's start-up)"]
    try:
        where = runs.folder.resolve().relative_to(ROOT)
    except ValueError:
        where = runs.folder
    if runs.runs or runs.calls:
        files = ", ".join(sorted({r.path.name for r in runs.runs} |
                                 {c["path"] for c in runs.calls}))
        lines.append(f"committed runs read: {where}/ ({files})")
    else:
        lines.append(f"committed runs read: none in {where}/: every figure comes from step "
                     "counts and assumed step times")
    pad = " " * 38
    for call, estimates in plan.calls.items():
        total = plan.total(call)
        lines += ["", f"call {call} — {CALLS[call][0]}: expected {total:.0f} s "
                  f"({_minutes(total)}){'  OVER ' + _minutes(CALL_LIMIT_S) if total > CALL_LIMIT_S else ''}",
                  f"  {'step':<24} {'expected':>8} {'cap':>5}"]
        for e in estimates:
            s = e.step
            shape = ""
            if s.kind == "experiment" and s.experiment != "profiler":
                run = sum(1 for part, est in e.parts if part != "start" and est.kind != "skipped")
                shape = (f" [{run} point(s), {s.rounds or planner.scale.rounds} timed epoch(s) "
                         "each]")
            over = "  OVER ITS CAP" if e.seconds > s.cap_s + 1e-9 else ""
            lines.append(f"  {s.name:<24} {e.seconds:>6.0f} s {s.cap_s:>3.0f} s  {s.what}{shape}"
                         f"{over}")
            lines += _source_lines(e, pad)
            if s.reduced:
                lines.append(f"{pad}reduced: {s.reduced}")
    if 1 in plan.calls and 2 in plan.calls:
        both = plan.total(1) + plan.total(2)
        lines += ["", f"calls 1+2: expected {both:.0f} s ({_minutes(both)}) of "
                  f"{_minutes(WINDOW_S)}: {'OVER' if both > WINDOW_S else 'fits'}"]
    kinds = sorted({k for estimates in plan.calls.values() for e in estimates for k in e.kinds})
    lines.append(f"sources used: {', '.join(kinds)} (measured: a committed call record; runs: "
                 "the committed benchmark JSON of the point; steps: step counts x a committed "
                 "step time; assumed: step counts x an assumed step time; cap: the step's "
                 "timeout; each call adds "
                 f"{ASSUMED['call'].seconds:.0f} s for its own start)")
    lines.append("assumed where no committed run says:")
    lines += [f"  {k}: {a.seconds:g}{'x' if k == 'profiled' else ' s'}, {a.why}"
              for k, a in ASSUMED.items()]
    if plan.fits:
        lines.append("the plan fits")
    else:
        lines += ["THE PLAN DOES NOT FIT:", *(f"  {p}" for p in plan.problems),
                  "  cut points or rounds in benchmarks/gpu_plan.py CALLS"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ running it --

def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "-rs"]


def step_argv(step: Step, out_file: Path, *, scale: str, step_mode: str) -> list[str]:
    """The command of one step; ``out_file`` is where it writes its JSON (the partial name)."""
    if step.kind == "gpu-tests":  # pytest's junit XML, turned into NAME.json when it ends
        return _pytest(*step.args, f"--junitxml={out_file.parent / f'{step.name}.xml'}")
    if step.kind == "experiment":
        path, function = NODES[step.experiment]
        targets = [f"{path}::{function}[{p}]" for p in step.points] if step.points else [path]
        rounds = ["--perf-rounds", str(step.rounds)] if step.rounds else []
        return _pytest(*targets, "--perf-scale", scale, "--perf-step", step_mode, *rounds,
                       "--benchmark-json", str(out_file),
                       "--benchmark-columns=median,iqr,rounds")
    if step.kind == "peer":
        return [sys.executable, "benchmarks/peer_timm.py", *step.args, "--out", str(out_file)]
    return [a.replace("{json}", str(out_file)) for a in step.args]


def _write_json(path: Path, payload: dict) -> None:
    """Atomically: a temporary file in the same folder, then os.replace."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _junit_to_json(xml: Path, out: Path) -> bool:
    """pytest's junit XML of a gpu-tests step as JSON: each test, its outcome and seconds."""
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError):
        return False
    tests = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome, message = {"failure": "failed"}.get(kind, kind), found.get("message", "")
                break
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}",
                      "outcome": outcome, "seconds": float(case.get("time") or 0),
                      "message": message[:500]})
    counts = {k: sum(t["outcome"] == k for t in tests)
              for k in ("passed", "failed", "error", "skipped")}
    _write_json(out, {"tests": tests, **counts})
    return True


def _default_sigint() -> None:
    """In a step's child process, before its program starts: SIGINT's default action."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _end_group(proc: subprocess.Popen) -> None:
    """Kill what is left of a step's process group (its workers, a torchrun's ranks)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_step(argv: list[str], *, timeout_s: float, grace_s: float, log: Path
             ) -> tuple[str, int | None]:
    """Run one step with a timeout: SIGINT at ``timeout_s`` (pytest then writes the JSON of
    the benchmarks that finished), SIGKILL to its process group ``grace_s`` later.
    Returns (status, exit code)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("ab") as sink:
        # the step gets SIGINT's default action back: a shell running this script in the
        # background (`&`, nohup) ignores SIGINT, its children would inherit that, and pytest
        # would never see the interrupt that makes it write its JSON
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_default_sigint)
        try:
            code = proc.wait(timeout=max(timeout_s, 0.0))
            status = "finished" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=grace_s)
                status = "timed out"
            except subprocess.TimeoutExpired:
                _end_group(proc)
                code = proc.wait()
                status = "killed"
        _end_group(proc)
    return status, code


def _facts() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,uuid,memory.total,driver_version,"
                               "clocks.sm,clocks.max.sm,temperature.gpu", "--format=csv"],
                              capture_output=True, text=True, timeout=15)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi: {exc}"


def run_call(call: int, steps: Iterable[Step], out: Path, *, scale: str = "full",
             step_mode: str = "auto", limit_s: float = CALL_LIMIT_S, grace_s: float = GRACE_S,
             clock: Callable[[], float] = time.monotonic, facts: Callable[[], str] = _facts,
             say: Callable[[str], None] = print) -> dict:
    """Run the steps of one call in order within ``limit_s`` of wall time; returns (and
    writes, after every step) the call record ``gpu_plan_callN.json``."""
    out = out.resolve()  # the steps run in the repository's root
    out.mkdir(parents=True, exist_ok=True)
    start = clock()
    deadline = start + limit_s
    record: dict[str, Any] = {
        "tool": "benchmarks/gpu_plan.py", "call": call, "limit_s": limit_s, "grace_s": grace_s,
        "scale": scale, "step_mode": step_mode,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "finished": None, "facts": facts(), "steps": []}
    path = out / CALL_RECORD.format(call=call)
    _write_json(path, record)
    for step in steps:
        left = deadline - clock() - grace_s
        entry: dict[str, Any] = {"name": step.name, "what": step.what,
                                 "signature": step.signature(scale, step_mode)}
        if left < step.min_s:
            entry.update(status="skipped", why=f"{max(left, 0):.0f} s left of the call, it "
                         f"needs at least {step.min_s:.0f} s to start")
            say(f"== {step.name}: skipped, {entry['why']}")
            record["steps"].append(entry)
            _write_json(path, record)
            continue
        timeout = min(step.cap_s, left)
        final = out / f"{step.name}.json"
        partial = out / f"{step.name}.json.partial"
        for stale in (final, partial, out / f"{step.name}.xml"):
            stale.unlink(missing_ok=True)
        argv = step_argv(step, partial, scale=scale, step_mode=step_mode)
        say(f"== {step.name}: {step.what} (timeout {timeout:.0f} s, {left:.0f} s left)")
        began = clock()
        status, code = run_step(argv, timeout_s=timeout, grace_s=grace_s,
                                log=out / f"{step.name}.log")
        seconds = clock() - began
        output = None
        if step.kind == "gpu-tests":
            if _junit_to_json(out / f"{step.name}.xml", final):
                output = final.name
        elif partial.is_file():
            try:
                json.loads(partial.read_text(encoding="utf-8"))
                os.replace(partial, final)
                output = final.name
            except (OSError, ValueError):  # empty or torn: left as .partial, never renamed
                output = None
        entry.update(status=status, exit_code=code, seconds=round(seconds, 1),
                     timeout_s=round(timeout, 1), command=argv, output=output,
                     log=f"{step.name}.log")
        if status in ("timed out", "killed"):
            bound = "its cap" if timeout == step.cap_s else "what was left of the call"
            entry["why"] = (f"stopped at its timeout of {timeout:.0f} s ({bound})"
                            + ("; it did not end within the grace period and was killed"
                               if status == "killed" else "")
                            + ("; its JSON holds the benchmarks that finished"
                               if output else "; no complete JSON was written"))
        say(f"== {step.name}: {status} (exit {code}) in {seconds:.0f} s"
            + (f", wrote {output}" if output else ", no JSON") + (f"; {entry['why']}"
                                                                  if "why" in entry else ""))
        record["steps"].append(entry)
        _write_json(path, record)
    record["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record["elapsed_s"] = round(clock() - start, 1)
    _write_json(path, record)
    say(f"== call {call} done in {record['elapsed_s']:.0f} s; {path}")
    return record


# ----------------------------------------------------------------------------------- the CLI --

def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", default="full", choices=("full", "study"),
                   help="--perf-scale of the experiments (default full)")
    p.add_argument("--step-mode", default="auto", choices=("auto", "eager"),
                   help="--perf-step: auto graphs the step where the experiment is not about it")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        p = argparse.ArgumentParser(prog="gpu_plan.py run", description="run one call of the plan")
        p.add_argument("call", type=int, choices=sorted(CALLS))
        p.add_argument("out", type=Path, help="folder for the JSON and logs")
        _common(p)
        p.add_argument("--limit-s", type=float, default=CALL_LIMIT_S,
                       help=f"the call's wall time (at most {CALL_LIMIT_S:.0f} s)")
        p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
        args = p.parse_args(argv[1:])
        if not 0 < args.limit_s <= CALL_LIMIT_S:
            p.error(f"--limit-s must be in (0, {CALL_LIMIT_S:.0f}]")
        steps = plan_steps(args.call)
        args.out = args.out.resolve()
        if args.dry_run:
            for s in steps:
                partial = args.out / f"{s.name}.json.partial"
                print(f"{s.name} (cap {s.cap_s:.0f} s): "
                      + " ".join(step_argv(s, partial, scale=args.scale, step_mode=args.step_mode)))
            return 0
        record = run_call(args.call, steps, args.out, scale=args.scale, step_mode=args.step_mode,
                          limit_s=args.limit_s)
        return 0 if all(s["status"] == "finished" for s in record["steps"]) else 1
    p = argparse.ArgumentParser(prog="gpu_plan.py", description=__doc__.split("\n\n")[0],
                                epilog="run one call: gpu_plan.py run CALL OUT_DIR")
    p.add_argument("--plan", action="store_true", required=True,
                   help="print each call's steps and expected time; exit 1 if it does not fit")
    p.add_argument("--hardware-class", default=DEFAULT_CLASS,
                   help=f"the folder of committed runs under docs/perf/ (default {DEFAULT_CLASS})")
    p.add_argument("--perf-dir", type=Path, default=PERF_DIR,
                   help="where the classes' folders are (default docs/perf)")
    _common(p)
    args = p.parse_args(argv)
    planner = Planner.for_class(args.hardware_class, perf_dir=args.perf_dir, scale=args.scale,
                                step_mode=args.step_mode)
    plan = build_plan(planner)
    print(plan_text(plan))
    return 0 if plan.fits else 1


if __name__ == "__main__":
    sys.exit(main())
