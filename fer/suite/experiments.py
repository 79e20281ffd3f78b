"""The perf suite's experiments, as data: one entry per experiment.

An :class:`Experiment` holds everything about one experiment of the study:
the factor it varies and its grid, the skip rules for machines that cannot
run a point, the benchmark group, the typed parameters written to
``extra_info["params"]``, the TrainConfig changes each point makes, the report
section that draws it, and the study's one-line finding. ``perf_tests/`` are
thin parametrisations over this registry; ``fer report`` dispatches on
``extra_info["experiment"]``, the name here.

Adding an experiment: one entry in :data:`EXPERIMENTS` and a test file that
calls ``harness.run_point``. This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fer.optim import OPTIMIZERS
from fer.suite.scales import PerfScale

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Machine:
    """What a skip rule may ask of the machine (filled in by the harness)."""

    cuda_devices: int
    cpus: int


@dataclass(frozen=True)
class Experiment:
    name: str  # extra_info["experiment"]; the registry key
    title: str  # the report's heading
    factor: str  # what varies, in words
    grid: tuple[Params, ...]  # one benchmark per point
    section: str  # the report section (chart) that draws it; several may share one
    finding: str  # what the study found, in one line
    task: str = "fer"
    markers: tuple[str, ...] = ()  # pytest markers (gpu, distributed, ...)
    #: the TrainConfig fields a point sets, beyond the scale's defaults
    configure: Callable[[Params, PerfScale], dict] = field(default=lambda p, s: dict(p))
    #: the benchmark group of a point
    group_of: Callable[[Params], str] | None = None
    #: why this machine cannot run a point, or None
    skip: Callable[[Params, PerfScale, Machine], str | None] = field(default=lambda p, s, m: None)
    #: profile a few steps after the timed epochs on a CPU too (extra_info.step_breakdown)
    step_breakdown_on_cpu: bool = True
    #: not about the step itself: may run the scale's fastest honest step (PerfScale.graph_step)
    fast_step: bool = False

    def group(self, params: Params) -> str:
        return self.group_of(params) if self.group_of else self.name

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.grid[0]) if self.grid else ()

    def ids(self) -> list[str]:
        return [point_id(p) for p in self.grid]

    def parametrize(self):
        """``@pytest.mark.parametrize("params", grid)`` with readable ids and the markers."""
        import pytest  # lazy: pytest only when a test file parametrises (the test extra installs it)

        def decorate(fn):
            fn = pytest.mark.parametrize("params", list(self.grid), ids=self.ids())(fn)
            for name in self.markers:
                fn = getattr(pytest.mark, name)(fn)
            fn.fer_experiment = self.name  # the plugin reads it to foresee skips and time
            return fn

        return decorate


def point_id(params: Params) -> str:
    """``{"devices": 2, "per_device_batch": 64}`` -> ``2-64`` (pytest's id style)."""
    parts = []
    for key, value in params.items():
        if key == "channels_last":
            parts.append("channels_last" if value else "nchw")
        else:
            parts.append(str(value))
    return "-".join(parts)


def _grid(**axes) -> tuple[Params, ...]:
    """The cross product of the axes, the first axis varying slowest."""
    points: list[dict] = [{}]
    for key, values in axes.items():
        points = [{**p, key: v} for p in points for v in values]
    return tuple(points)


# ------------------------------------------------------------ skip rules --

def needs_devices(count: int, machine: Machine) -> str | None:
    if machine.cuda_devices == 0:
        return f"needs {count} CUDA device(s); this machine has none"
    if machine.cuda_devices < count:
        return f"needs {count} CUDA devices; this machine has {machine.cuda_devices}"
    return None


def _skip_workers(p: Params, scale: PerfScale, m: Machine) -> str | None:
    w = p["num_workers"]
    if scale.name == "smoke" and w > 2 * m.cpus:
        return (f"smoke scale: {w} workers on {m.cpus} CPUs only measures oversubscription; "
                "run --perf-scale full on a larger machine")
    return None


def _skip_batch(p: Params, scale: PerfScale, m: Machine) -> str | None:
    b = p["batch_size"]
    if b > scale.train_images:
        return f"batch {b} exceeds the {scale.train_images}-image epoch of --perf-scale {scale.name}"
    return None


def _skip_dp(p: Params, scale: PerfScale, m: Machine) -> str | None:
    return needs_devices(p["devices"], m)


def _skip_ddp(p: Params, scale: PerfScale, m: Machine) -> str | None:
    n = p["world_size"]
    if scale.device == "cuda" and n > m.cuda_devices:
        return f"needs {n} CUDA devices; this machine has {m.cuda_devices}"
    if scale.device == "cpu" and n > min(2, m.cpus):
        return (f"on a CPU, gloo world sizes stop at 2 (this machine has {m.cpus} CPUs); "
                "run on a GPU box for more")
    return None


# ------------------------------------------------------------ configs --

def _workers_config(p: Params, scale: PerfScale) -> dict:
    w = p["num_workers"]
    return dict(loader="dataloader", num_workers=w, persistent_workers=w > 0)


def _precision_config(p: Params, scale: PerfScale) -> dict:
    # CPU autocast runs ~8x slower than fp32 (no fast half-precision kernels on
    # most CPUs): on a CPU every point trains 3 steps an epoch, so the group
    # stays comparable and the smoke suite stays short.
    return dict(p, max_steps_per_epoch=3 if scale.device == "cpu" else None)


def _loader_config(p: Params, scale: PerfScale) -> dict:
    workers = 2 if p["loader"] == "dataloader" else 0
    return dict(loader=p["loader"], num_workers=workers, persistent_workers=workers > 0)


def _dp_config(p: Params, scale: PerfScale) -> dict:
    return dict(parallel="dp", devices=p["devices"], batch_size=p["per_device_batch"])


def _ddp_config(p: Params, scale: PerfScale) -> dict:
    return dict(parallel="ddp")


#: the step experiment's modes -> the TrainConfig fields each sets (fer.bench.charts.STEP_MODES)
STEP_MODES: dict[str, dict] = {
    "eager": {},
    "fused": {"optimizer_impl": "fused"},
    "graph": {"cuda_graph": True},
    "compile": {"compile": "default"},
    "compile+graph": {"compile": "default", "cuda_graph": True},
}


#: steps per epoch of the step experiment on a GPU: its question is the time of one step,
#: which 200 steps measure as well as 448 do, and its points must fit call 1 of
#: benchmarks/gpu_plan.py (the compiled ones: call 4)
STEP_EPOCH_STEPS = 200


def _step_config(p: Params, scale: PerfScale) -> dict:
    steps = STEP_EPOCH_STEPS if scale.device == "cuda" else None
    return dict(STEP_MODES[p["mode"]], precision=p["precision"], max_steps_per_epoch=steps)


def _skip_step(p: Params, scale: PerfScale, m: Machine) -> str | None:
    mode = STEP_MODES[p["mode"]]
    if scale.device == "cpu":
        if mode.get("cuda_graph"):
            return "a CUDA graph needs a CUDA device"
        if mode.get("compile"):
            return ("torch.compile on a CPU spends minutes compiling C++ for a step that says "
                    "nothing of a GPU's; run on a GPU")
        if p["precision"] != "fp32":
            return "CPU autocast has no fast bf16 kernels: not the GPU's story (see precision)"
    return None


def _optimizer_names() -> tuple[str, ...]:
    return tuple(OPTIMIZERS)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment(
        name="workers", title="DataLoader workers", factor="DataLoader num_workers",
        grid=_grid(num_workers=(0, 1, 2, 4, 8, 16)), section="workers",
        finding="the data-loading share first falls, then rises with more workers (best near 8)",
        configure=_workers_config, skip=_skip_workers, fast_step=True),
    Experiment(
        name="precision", title="Mixed precision", factor="precision x memory format",
        grid=_grid(precision=("fp32", "amp_fp16", "amp_bf16"), channels_last=(False, True)),
        section="precision", finding="mixed precision cut epoch time sharply",
        # CPU autocast steps are several times slower and their profile says nothing of a GPU
        configure=_precision_config, step_breakdown_on_cpu=False, fast_step=True),
    Experiment(
        name="optimizer", title="Optimizers", factor="optimizer",
        grid=_grid(optimizer=_optimizer_names()), section="optimizer",
        finding="Adam converged fastest"),
    Experiment(
        name="batch_size", title="Batch size and convergence", factor="batch size",
        grid=_grid(batch_size=(32, 64, 128, 256, 512)), section="batch_size",
        finding="larger batches cut time per epoch but slowed convergence", skip=_skip_batch,
        fast_step=True),
    Experiment(
        name="dataparallel", title="DataParallel", factor="GPUs x per-GPU batch",
        grid=_grid(devices=(1, 2, 4, 8), per_device_batch=(32, 64, 128)), section="scaling",
        finding="more GPUs cut time per epoch, but DataParallel never scaled ideally "
                "(per-GPU batch 64 best)",
        markers=("gpu",), configure=_dp_config, skip=_skip_dp,
        group_of=lambda p: f"dataparallel-b{p['per_device_batch']}"),
    Experiment(
        name="ddp", title="DistributedDataParallel", factor="world size (torchrun)",
        grid=_grid(world_size=(1, 2, 4, 8)), section="scaling",
        finding="one process per device scales closer to ideal than DataParallel",
        markers=("distributed",), configure=_ddp_config, skip=_skip_ddp),
    Experiment(
        name="loader", title="Loader path", factor="DataLoader (2 workers) vs device-resident",
        grid=_grid(loader=("dataloader", "device")), section="loader",
        finding="a device-resident dataset removes the data wait", configure=_loader_config,
        fast_step=True),
    Experiment(
        name="pose_batch_size", title="HRNet pose: batch size and PCK", factor="batch size",
        grid=_grid(batch_size=(16, 32, 64)), section="pose", task="pose",
        finding="larger batches cut time per epoch but slowed convergence (HRNet pose)"),
    Experiment(
        name="pose_dataparallel", title="HRNet pose: DataParallel", factor="GPUs x per-GPU batch",
        grid=_grid(devices=(1, 2, 4, 8), per_device_batch=(16, 32, 64)), section="scaling",
        task="pose", finding="more GPUs cut time per epoch; scaling was never ideal",
        markers=("gpu",), configure=_dp_config, skip=_skip_dp,
        group_of=lambda p: f"pose-dataparallel-b{p['per_device_batch']}"),
    Experiment(
        name="profiler", title="Profiler", factor="an epoch with and without torch.profiler",
        grid=({},), section="profiler", finding="convolutions dominate the profile"),
    Experiment(
        name="step", title="The training step", factor="step mode x precision",
        grid=_grid(mode=tuple(STEP_MODES), precision=("fp32", "amp_bf16")), section="step",
        finding="(beyond the study) at 48x48 the step is launch-bound: CUDA graphs, not "
                "mixed precision, are what speed it up",
        configure=_step_config, skip=_skip_step, step_breakdown_on_cpu=False,
        group_of=lambda p: f"step-{p['precision']}"),
]}

#: report sections in the report's order, with their headings
SECTIONS: dict[str, str] = {
    "optimizer": "Optimizers",
    "workers": "DataLoader workers",
    "precision": "Mixed precision",
    "profiler": "Profiler",
    "scaling": "DataParallel / DDP scaling",
    "batch_size": "Batch size and convergence",
    "loader": "Loader path",
    "pose": "HRNet pose: batch size and PCK",
    "step": "The training step: graphs, fused optimizers, compile",
}


def experiments_in(section: str) -> list[Experiment]:
    return [e for e in EXPERIMENTS.values() if e.section == section]
