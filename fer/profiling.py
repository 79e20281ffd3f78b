"""torch.profiler over real training steps: where the step's time and memory go.

:func:`profile_training` runs the engine's own training steps under
``torch.profiler`` with a wait/warmup/active schedule and returns a
:class:`ProfileSummary`: the top ops by self time (device time on a GPU, CPU
time otherwise), time shares by category (they sum to 1), peak memory and the
ops that allocate most, plus a Chrome/Perfetto trace and a TensorBoard trace
folder on disk. ``summary.to_dict()`` is the JSON written as ``profile.json``;
its schema is documented in the README ("Profiling").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from fer.atomic import atomic_open
from fer.engine import Trainer, peak_memory
from fer.errors import ConfigError

CATEGORIES = ("convolution", "batch_norm", "activation", "elementwise", "pooling_linear",
              "optimizer", "data_copy", "other")

# First match wins: the order resolves names that fit two rules (a cuDNN
# convolution kernel called "implicit_gemm" is a convolution, not a matmul).
_RULES: list[tuple[str, re.Pattern]] = [(cat, re.compile(rx, re.IGNORECASE)) for cat, rx in [
    ("optimizer", r"optimizer|_foreach_|_fused_(adam|sgd|adagrad)|multi_tensor_apply"),
    ("data_copy", r"memcpy|memset|aten::copy_|aten::_?to(_copy)?$|aten::_to_copy|copy_device_to"
                  r"|aten::contiguous|pin_memory|htod|dtoh"),
    ("convolution", r"conv|cudnn::.*(fprop|dgrad|wgrad)|xmma_(fprop|dgrad|wgrad)|depthwise|"
                    r"implicit_gemm|winograd|mkldnn_convolution"),
    ("batch_norm", r"batch_?norm|bn_(fw|bw)|batchnorm"),
    ("activation", r"silu|swish|relu|sigmoid|gelu|hardswish|hardsigmoid|tanh|elu\b|mish"),
    ("pooling_linear", r"pool|aten::(add)?mm$|aten::linear|aten::matmul|aten::bmm|gemm|"
                       r"aten::mean|reduce|aten::sum|softmax|nll_loss|cross_entropy"),
    ("elementwise", r"aten::(add|mul|div|sub|rsub|neg|fill|zero|where|clamp|pow|sqrt|exp|log"
                    r"|abs|lerp|addcmul|addcdiv|ne|eq|lt|gt|ge|le|masked_fill|ones_like"
                    r"|zeros_like|empty_like)|elementwise|vectorized|unrolled"),
]]


def categorize(name: str) -> str:
    """The category of one profiler event name (an aten op, an autograd node or a kernel)."""
    for category, pattern in _RULES:
        if pattern.search(name):
            return category
    return "other"


@dataclass
class OpStat:
    name: str
    category: str
    calls: int
    self_time_us: float
    share: float


@dataclass
class ProfileSummary:
    model: str
    device: str
    time_basis: str  # "device" (CUDA kernel time) or "cpu"
    steps: dict
    total_time_us: float
    categories: dict[str, float]  # shares, summing to 1
    category_time_us: dict[str, float]
    dominant_category: str
    top_ops: list[OpStat]
    peak_memory_bytes: int
    peak_memory_kind: str
    top_allocating_ops: list[dict]
    profiled_steps: int = 0  # every step run under the profiler (wait + warmup + active)
    profiled_wall_s: float = 0.0  # their wall time, as the engine measured it
    ops_per_step: float = 0.0  # host-side op events per active step
    kernels_per_step: float | None = None  # device kernels per active step (CUDA only)
    host_ms_per_step: float = 0.0  # self CPU time of the host ops per active step
    device_ms_per_step: float | None = None  # kernel time per active step (CUDA only)
    traces: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"fer_profile": 1, **asdict(self)}


def _self_time(event, use_device: bool) -> float:
    if use_device:
        for attr in ("self_device_time_total", "self_cuda_time_total"):
            if hasattr(event, attr):
                return float(getattr(event, attr))
        return 0.0
    return float(event.self_cpu_time_total)


def _self_memory(event, use_device: bool) -> int:
    attrs = ("self_device_memory_usage", "self_cuda_memory_usage") if use_device else \
        ("self_cpu_memory_usage",)
    for attr in attrs:
        if hasattr(event, attr):
            return int(getattr(event, attr))
    return 0


def _in_optimizer_step(event) -> bool:
    parent = getattr(event, "cpu_parent", None)
    while parent is not None:
        if parent.name.startswith(("Optimizer.step", "Optimizer.zero_grad")):
            return True
        parent = getattr(parent, "cpu_parent", None)
    return False


def summarize_events(events, *, use_device: bool, top: int = 15) -> tuple[
        float, dict[str, float], dict[str, float], list[OpStat], list[dict]]:
    """(total, shares, times, top ops, top allocators) from ``prof.events()``.

    Only host-side op events are summed (on a GPU their self *device* time is
    the kernels they launched), so no kernel is counted twice. Ops run inside
    ``Optimizer.step`` (the per-parameter sqrt, mul, addcdiv of a non-fused
    optimizer) count as optimizer time, whatever their name.
    """
    per_op: dict[tuple[str, str], list] = {}  # (name, category) -> [calls, time, memory]
    times = dict.fromkeys(CATEGORIES, 0.0)
    for event in events:
        device_type = getattr(event, "device_type", None)
        if device_type is not None and getattr(device_type, "name", "CPU") != "CPU":
            continue  # a kernel row: its time is already in the op that launched it
        t = _self_time(event, use_device)
        category = "optimizer" if _in_optimizer_step(event) else categorize(event.name)
        times[category] += t
        row = per_op.setdefault((event.name, category), [0, 0.0, 0])
        row[0] += 1
        row[1] += t
        row[2] += _self_memory(event, use_device)
    total = sum(times.values())
    shares = {c: (t / total if total > 0 else 0.0) for c, t in times.items()}
    ranked = sorted(per_op.items(), key=lambda kv: kv[1][1], reverse=True)[:top]
    top_ops = [OpStat(name, cat, calls, t, t / total if total else 0.0)
               for (name, cat), (calls, t, _) in ranked]
    allocators = sorted(((key, r) for key, r in per_op.items() if r[2] > 0),
                        key=lambda kv: kv[1][2], reverse=True)[:top]
    top_alloc = [{"name": name, "category": cat, "self_memory_bytes": r[2], "calls": r[0]}
                 for (name, cat), r in allocators]
    return total, shares, times, top_ops, top_alloc


#: what kineto writes to the process's stderr on every profile, error or not: "USDT: ...
#: profiler_start/stop" and, on a machine without a GPU, "gpuGetDeviceCount failed"
_NATIVE_NOISE = re.compile(r"SyncActivityProfilerHandler|\] profiler_(start|stop)"
                           r"|gpuGetDeviceCount failed|DeviceProperties\.cpp")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what C++ writes to stderr (fd 2) meanwhile; then pass on every line except
    the profiler's known noise, so a real error still reaches the user."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedding host): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines():
                if line.strip() and not _NATIVE_NOISE.search(line):
                    print(line, file=sys.stderr)


def count_events(events, *, use_device: bool) -> tuple[int, int, float, float]:
    """(host ops, device kernels, host self time us, kernel time us) of a profile."""
    ops = kernels = 0
    host_us = device_us = 0.0
    for event in events:
        device_type = getattr(event, "device_type", None)
        if device_type is not None and getattr(device_type, "name", "CPU") != "CPU":
            kernels += 1
            device_us += float(getattr(event, "self_device_time_total", 0.0) or 0.0)
        else:
            ops += 1
            host_us += float(event.self_cpu_time_total)
    if use_device and kernels == 0:  # older torch: kernels only as the ops' device time
        device_us = sum(_self_time(e, True) for e in events)
    return ops, kernels, host_us, device_us


def profile_training(trainer: Trainer, *, steps: int = 10, wait: int = 1, warmup: int = 2,
                     out_dir: str | Path | None = None, with_stack: bool = False,
                     record_shapes: bool = True, profile_memory: bool = True,
                     top: int = 15, tensorboard: bool = False) -> ProfileSummary:
    """Profile ``steps`` training steps of ``trainer`` after ``wait`` + ``warmup`` steps."""
    if steps < 1 or wait < 0 or warmup < 0:
        raise ConfigError("--steps must be >= 1, --wait and --warmup >= 0")
    device = trainer.device
    use_device = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if use_device else [])
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot create this folder ({exc.strerror}); "
                              "choose another path") from None
    traces: dict[str, str] = {}

    def on_trace_ready(prof) -> None:
        if out is None:
            return
        # one trace on disk: trace.json (Perfetto, chrome://tracing), or with
        # tensorboard=True the same trace in the folder layout TensorBoard reads
        if tensorboard:
            board = out / "tensorboard"
            tensorboard_trace_handler(str(board), worker_name="fer")(prof)
            traces.update(tensorboard=str(board))
        else:
            prof.export_chrome_trace(str(out / "trace.json"))
            traces.update(chrome=str(out / "trace.json"))

    needed = wait + warmup + steps
    prof = profile(activities=activities,
                   schedule=schedule(wait=wait, warmup=warmup, active=steps, repeat=1),
                   on_trace_ready=on_trace_ready, record_shapes=record_shapes,
                   profile_memory=profile_memory, with_stack=with_stack)
    with quiet_native_stderr():
        with prof:
            done = trainer.run_steps(needed, on_step=lambda *_: prof.step())
        events = prof.events()
    total, shares, times, top_ops, top_alloc = summarize_events(events, use_device=use_device,
                                                                top=top)
    ops, kernels, host_us, device_us = count_events(events, use_device=use_device)
    mem, mem_kind = peak_memory(device)
    summary = ProfileSummary(
        model=trainer.model_name, device=str(device), time_basis="device" if use_device else "cpu",
        steps={"wait": wait, "warmup": warmup, "active": steps}, total_time_us=total,
        categories=shares, category_time_us=times,
        dominant_category=max(shares, key=shares.get), top_ops=top_ops,
        peak_memory_bytes=int(mem), peak_memory_kind=mem_kind, top_allocating_ops=top_alloc,
        profiled_steps=done.steps, profiled_wall_s=done.wall_s, ops_per_step=ops / steps,
        kernels_per_step=kernels / steps if use_device else None,
        host_ms_per_step=host_us / steps / 1000,
        device_ms_per_step=device_us / steps / 1000 if use_device else None, traces=traces,
        config=trainer.config.to_dict(),
    )
    if out is not None:
        with atomic_open(out / "profile.json", "w") as f:
            json.dump(summary.to_dict(), f, indent=2)
    return summary


def format_summary(summary: ProfileSummary) -> str:
    """The op table and the category shares, as text."""
    unit = "device" if summary.time_basis == "device" else "CPU"
    lines = [f"top ops by self {unit} time ({summary.steps['active']} steps, {summary.model} "
             f"on {summary.device})", ""]
    width = max([len(o.name) for o in summary.top_ops] + [10])
    width = min(width, 60)
    lines.append(f"{'op':<{width}}  {'category':<15} {'calls':>7} {'self ms':>10} {'share':>7}")
    for op in summary.top_ops:
        lines.append(f"{op.name[:width]:<{width}}  {op.category:<15} {op.calls:>7} "
                     f"{op.self_time_us / 1000:>10.2f} {100 * op.share:>6.1f}%")
    lines += ["", "time by category"]
    for cat, share in sorted(summary.categories.items(), key=lambda kv: -kv[1]):
        bar = "#" * round(40 * share)
        lines.append(f"  {cat:<15} {100 * share:5.1f}%  {bar}")
    per_step = 1000 * summary.profiled_wall_s / max(summary.profiled_steps, 1)
    lines += ["", f"time per step: {per_step:.1f} ms wall ({summary.profiled_steps} steps under "
                  f"the profiler, which slows them), host ops {summary.host_ms_per_step:.1f} ms"
              + (f", device kernels {summary.device_ms_per_step:.1f} ms, "
                 f"{summary.kernels_per_step:,.0f} kernels" if summary.device_ms_per_step is not None
                 else "") + f", {summary.ops_per_step:,.0f} ops per step"]
    lines += ["", f"dominant: {summary.dominant_category} "
                  f"({100 * summary.categories[summary.dominant_category]:.1f}% of {unit} time)",
              f"peak memory: {summary.peak_memory_bytes / 2**20:,.0f} MiB ({summary.peak_memory_kind})"]
    if summary.top_allocating_ops:
        lines.append("most allocating ops: " + ", ".join(
            f"{a['name']} ({a['self_memory_bytes'] / 2**20:,.1f} MiB)"
            for a in summary.top_allocating_ops[:5]))
    return "\n".join(lines)


def step_breakdown(trainer: Trainer, *, steps: int = 2, warmup: int = 1) -> dict:
    """Where one training step's time goes, per category, from ``steps`` profiled steps
    (after ``warmup``): what the perf suite stores as ``extra_info["step_breakdown"]``
    after the timed epochs (it trains those steps: never call it inside a timed region)."""
    start = time.perf_counter()
    summary = profile_training(trainer, steps=steps, wait=0, warmup=warmup, record_shapes=False,
                               profile_memory=False, top=5)
    cost = time.perf_counter() - start
    return {
        "steps": steps,
        "time_basis": summary.time_basis,
        "ms_per_step": {c: t / steps / 1000 for c, t in summary.category_time_us.items()},
        "total_ms_per_step": summary.total_time_us / steps / 1000,
        "ops_per_step": summary.ops_per_step,
        "kernels_per_step": summary.kernels_per_step,
        "host_ms_per_step": summary.host_ms_per_step,
        "device_ms_per_step": summary.device_ms_per_step,
        "wall_ms_per_step": 1000 * summary.profiled_wall_s / max(summary.profiled_steps, 1),
        "top_ops": [{"name": o.name, "category": o.category, "ms_per_step": o.self_time_us / steps
                     / 1000} for o in summary.top_ops],
        "cost_s": cost,
    }
