"""`fer report`: the study reproduced as charts and a markdown report.

Reads perf-suite benchmark JSON (one run or several, merged), draws one PNG per
experiment it finds (matplotlib, Agg) and writes ``report.md`` stating each
finding in one line from the numbers, the machine, what was skipped and why,
and which experiments the JSON does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fer.atomic import atomic_open
from fer.errors import FERError
from fer.history import Run, load_run

EXPERIMENTS = ("optimizer", "workers", "precision", "profiler", "scaling", "batch_size", "loader",
               "pose")


class ReportError(FERError):
    """Nothing to report on."""


@dataclass
class Entry:
    """One benchmark of the suite: its group, parameters and measurements."""

    name: str
    group: str
    extra: dict
    median_s: float

    @property
    def summary(self) -> dict:
        return self.extra.get("summary") or {}

    @property
    def records(self) -> list[dict]:
        return self.extra.get("records") or []


@dataclass
class Report:
    markdown: str
    charts: list[Path]
    findings: dict[str, str]
    missing: list[str]
    skipped: list[dict] = field(default_factory=list)


def _entries(runs: list[Run]) -> dict[str, list[Entry]]:
    by_group: dict[str, list[Entry]] = {}
    for run in runs:
        for b in run.benchmarks.values():
            group = b.group or ""
            if group.startswith(("dataparallel", "pose-dataparallel")) or group == "ddp":
                key = "scaling"
            elif group == "pose_batch_size":
                key = "pose"
            else:
                key = group
            by_group.setdefault(key, []).append(Entry(b.name, group, b.extra_info, b.median))
    return by_group


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: Path) -> Path:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=110)
    _plt().close(fig)
    return path


def _val_curve(e: Entry) -> list[float | None]:
    return [r.get("val_acc") for r in e.records]


# ------------------------------------------------------------ experiments --

def _optimizer(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    best = None
    for e in sorted(entries, key=lambda e: e.extra.get("optimizer", e.name)):
        name = e.extra.get("optimizer", e.name)
        epochs = range(1, len(e.records) + 1)
        ax1.plot(epochs, [r["loss"] for r in e.records], marker="o", label=name)
        vals = _val_curve(e)
        ax2.plot(epochs, [v if v is not None else float("nan") for v in vals], marker="o",
                 label=name)
        final = vals[-1] if vals else None
        if final is not None and (best is None or final > best[1]):
            best = (name, final, e.summary.get("median_wall_s"))
    ax1.set(xlabel="epoch", ylabel="training loss", title="Training loss per epoch")
    ax2.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy per epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        _integer_ticks(ax.xaxis)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = _save(fig, out / "optimizer.png")
    finding = (f"{best[0]} reached the best validation accuracy ({best[1]:.3f} after "
               f"{len(entries[0].records)} epochs) of {len(entries)} optimizers."
               if best else "no optimizer recorded a validation accuracy.")
    return path, finding


def _workers(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    pts = sorted((e.extra.get("num_workers", 0), e.summary["median_data_wait_share"],
                  e.summary["median_images_per_s"]) for e in entries)
    workers, share, rate = zip(*pts)
    fig, ax1 = plt.subplots(figsize=(7.5, 4.2))
    ax1.plot(workers, [100 * s for s in share], marker="o", color="tab:red", label="data-wait share")
    ax1.set(xlabel="DataLoader num_workers", ylabel="data-wait share of the epoch (%)",
            title="Data loading vs workers")
    ax2 = ax1.twinx()
    ax2.plot(workers, rate, marker="s", color="tab:blue", label="images/s")
    ax2.set_ylabel("images/s")
    best = min(pts, key=lambda p: p[1])
    ax1.axvline(best[0], color="grey", linestyle="--")
    ax1.annotate(f"lowest wait: {_workers_text(best[0])}", (best[0], 100 * best[1]),
                 textcoords="offset points",
                 xytext=(8, 12), fontsize=9)
    ax1.set_xscale("symlog", base=2)
    ax1.set_xticks(workers, [str(w) for w in workers])
    ax1.grid(alpha=0.3)
    fig.legend(loc="upper right", fontsize=8, bbox_to_anchor=(0.88, 0.88))
    fig.tight_layout()
    path = _save(fig, out / "workers.png")
    fastest = max(pts, key=lambda p: p[2])
    finding = (f"the data-wait share was lowest with {_workers_text(best[0])} "
               f"({100 * best[1]:.1f}% of the epoch, {100 * pts[0][1]:.1f}% with "
               f"{_workers_text(pts[0][0])}); throughput peaked at {_workers_text(fastest[0])} "
               f"({fastest[2]:,.0f} images/s).")
    return path, finding


def _workers_text(n: int) -> str:
    return f"{n} worker" + ("" if n == 1 else "s")


def _precision(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    order = {"fp32": 0, "amp_fp16": 1, "amp_bf16": 2}
    rows = sorted(((e.extra.get("precision", "?"), bool(e.extra.get("channels_last")),
                    e.summary["median_wall_s"]) for e in entries),
                  key=lambda r: (order.get(r[0], 9), r[1]))
    base = {cl: t for p, cl, t in rows if p == "fp32"}
    labels = [f"{p}{' +CL' if cl else ''}" for p, cl, _ in rows]
    times = [t for _, _, t in rows]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    bars = ax.bar(labels, times, color=["tab:grey" if p == "fp32" else "tab:green"
                                        for p, _, _ in rows])
    for bar, (_, cl, t) in zip(bars, rows):
        ref = base.get(False) or base.get(cl)
        if ref:
            ax.annotate(f"{ref / t:.2f}x", (bar.get_x() + bar.get_width() / 2, t),
                        ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="median epoch time (s)",
           title="Epoch time by precision (speed-up vs fp32, NCHW; +CL: channels_last)")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, out / "precision.png")
    fp32 = base.get(False)
    parts = [f"{p}{' + channels_last' if cl else ''} {fp32 / t:.2f}x"
             for p, cl, t in rows if fp32 and (p != "fp32" or cl)]
    finding = ("epoch-time speed-up over fp32: " + ", ".join(parts) + "."
               if parts else "no fp32 baseline to compare against.")
    return path, finding


def _profiler(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    e = entries[0]
    shares = e.extra.get("categories") or {}
    items = sorted(shares.items(), key=lambda kv: kv[1], reverse=True)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.barh([k for k, _ in items][::-1], [100 * v for _, v in items][::-1], color="tab:purple")
    ax.set(xlabel=f"share of {e.extra.get('time_basis', 'cpu')} time (%)",
           title="Where a training step's time goes (torch.profiler)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, out / "profiler.png")
    dom = e.extra.get("dominant_category") or (items[0][0] if items else "?")
    finding = (f"{dom} dominates the profile ({100 * shares.get(dom, 0):.1f}% of "
               f"{e.extra.get('time_basis', 'cpu')} time); the profiler slowed a step "
               f"{e.extra.get('overhead_ratio', float('nan')):.2f}x.")
    return path, finding


def _scaling(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    series: dict[str, list[tuple[int, float, float | None]]] = {}
    for e in entries:
        kind = "DDP" if e.group == "ddp" else ("DP pose" if e.group.startswith("pose") else "DP")
        devices = e.extra.get("world_size") or e.extra.get("devices") or 1
        batch = e.extra.get("per_device_batch") or e.extra.get("config", {}).get("batch_size")
        series.setdefault(f"{kind}, batch {batch}/device", []).append(
            (int(devices), e.summary["median_wall_s"], e.extra.get("scaling_efficiency")))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    best = None
    batch_of = {label: int(label.split("batch ")[1].split("/")[0]) for label in series}
    for label, pts in sorted(series.items(), key=lambda kv: (kv[0].split(",")[0], batch_of[kv[0]])):
        pts.sort()
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        for devices, _, eff in pts:
            if eff is not None and devices > 1 and (best is None or eff > best[2]):
                best = (label, devices, eff)
    eff_by_batch: dict[tuple[str, int], dict[int, float]] = {}
    for label, pts in series.items():
        kind, batch = label.split(",")[0], int(label.split("batch ")[1].split("/")[0])
        for devices, _, eff in pts:
            if eff is not None and devices > 1:
                eff_by_batch.setdefault((kind, devices), {})[batch] = eff
    batches = sorted({b for effs in eff_by_batch.values() for b in effs})
    for (kind, devices), effs in sorted(eff_by_batch.items()):
        xs = sorted(effs)
        ax2.plot([batches.index(x) for x in xs], [effs[x] for x in xs], marker="o",
                 label=f"{kind}, {devices} devices")
    ax2.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax2.set_ylim(0, 1.1)
    device_counts = sorted({p[0] for pts in series.values() for p in pts})
    ax1.set_xticks(device_counts, [str(d) for d in device_counts])
    ax1.set(xlabel="devices", ylabel="median epoch time (s)", title="Time per epoch vs devices")
    ax2.set(xlabel="per-device batch size", ylabel="scaling efficiency",
            title="Weak-scaling efficiency vs batch")
    ax2.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if not eff_by_batch:
        ax2.text(0.5, 0.5, "needs runs on 2+ devices", ha="center", va="center",
                 transform=ax2.transAxes, color="grey")
    fig.tight_layout()
    path = _save(fig, out / "scaling.png")
    if best:
        finding = (f"best multi-device scaling efficiency {best[2]:.2f} ({best[0]}, "
                   f"{best[1]} devices); 1.0 is ideal.")
    else:
        finding = "only single-device runs: no scaling efficiency to report."
    return path, finding


def _batch_size(entries: list[Entry], out: Path, *, metric: str = "validation accuracy",
                name: str = "batch_size") -> tuple[Path, str]:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    finals = []
    for e in sorted(entries, key=lambda e: e.extra.get("batch_size", 0)):
        batch = e.extra.get("batch_size")
        vals = [v if v is not None else float("nan") for v in _val_curve(e)]
        seen = [r["images"] * (i + 1) for i, r in enumerate(e.records)]
        ax1.plot(range(1, len(vals) + 1), vals, marker="o", label=f"batch {batch}")
        ax2.plot(seen, vals, marker="o", label=f"batch {batch}")
        finals.append((batch, vals[-1] if vals else float("nan"), e.summary["median_wall_s"]))
    ax1.set(xlabel="epoch", ylabel=metric, title="Convergence per epoch")
    ax2.set(xlabel="training images seen", ylabel=metric, title="Convergence per image")
    _integer_ticks(ax1.xaxis)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = _save(fig, out / f"{name}.png")
    small, large = finals[0], finals[-1]
    finding = (f"batch {large[0]} ran an epoch {small[2] / large[2]:.1f}x faster than batch "
               f"{small[0]} and ended at {metric} {large[1]:.3f} vs {small[1]:.3f}.")
    return path, finding


def _pose(entries: list[Entry], out: Path) -> tuple[Path, str]:
    path, finding = _batch_size(entries, out, metric="validation PCK@0.2", name="pose")
    return path, "HRNet pose: " + finding


def _loader(entries: list[Entry], out: Path) -> tuple[Path, str]:
    plt = _plt()
    rows = sorted((e.extra.get("loader", e.name), e.summary["median_images_per_s"],
                   e.summary["median_data_wait_share"]) for e in entries)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([r[0] for r in rows], [r[1] for r in rows], color="tab:cyan")
    for i, r in enumerate(rows):
        ax.annotate(f"wait {100 * r[2]:.1f}%", (i, r[1]), ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="images/s", title="Loader path")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, out / "loader.png")
    rates = {r[0]: r[1] for r in rows}
    if "device" in rates and "dataloader" in rates:
        finding = (f"the device-resident loader trained {rates['device'] / rates['dataloader']:.2f}x "
                   f"the images/s of the DataLoader path.")
    else:
        finding = "only one loader path was measured."
    return path, finding


_RENDERERS: dict[str, tuple[str, Callable]] = {
    "optimizer": ("Optimizers", _optimizer),
    "workers": ("DataLoader workers", _workers),
    "precision": ("Mixed precision", _precision),
    "profiler": ("Profiler", _profiler),
    "scaling": ("DataParallel / DDP scaling", _scaling),
    "batch_size": ("Batch size and convergence", _batch_size),
    "loader": ("Loader path", _loader),
    "pose": ("HRNet pose: batch size and PCK", _pose),
}


def _machine_line(runs: list[Run]) -> str:
    info = runs[0].machine_info
    fer = info.get("fer") or {}
    cpu = (info.get("cpu") or {}).get("brand_raw") or info.get("processor") or "unknown CPU"
    gpu = f"{fer['gpu_count']}x {fer['gpu_name']}" if fer.get("gpu_name") else "no GPU"
    sw = ", ".join(f"{k} {fer[k]}" for k in ("torch", "torchvision", "timm") if fer.get(k))
    scale = fer.get("perf_scale", "?")
    return f"{gpu}; {cpu}; {sw or 'versions not recorded'}; perf scale {scale}"


def render_report(paths: list[str | Path], out_dir: str | Path) -> Report:
    runs = [r for r in (load_run(p) for p in paths) if r is not None]
    if not runs:
        raise ReportError("none of the given files is a readable benchmark JSON run: "
                          f"{', '.join(map(str, paths))}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot create it ({exc.strerror})") from None
    groups = _entries(runs)
    charts, findings = [], {}
    sections = []
    for key in EXPERIMENTS:
        if key not in groups:
            continue
        title, render = _RENDERERS[key]
        chart, finding = render(groups[key], out)
        charts.append(chart)
        findings[key] = finding
        sections += [f"## {title}", "", f"**Finding:** {finding}", "", f"![{title}]({chart.name})", ""]
    missing = [k for k in EXPERIMENTS if k not in groups]
    skipped = [s for r in runs for s in _raw_skips(r.path)]
    lines = ["# fer perf report", "",
             f"Machine: {_machine_line(runs)}.", "",
             f"Runs: {', '.join(r.path.name for r in runs)} "
             f"({sum(len(v) for v in groups.values())} benchmarks).", "",
             "## Findings", ""]
    lines += [f"- **{_RENDERERS[k][0]}:** {v}" for k, v in findings.items()]
    lines.append("")
    lines += sections
    if missing:
        lines += ["## Not in these runs", "",
                  *[f"- {_RENDERERS[k][0]} (`{k}`): no benchmark of this experiment in the JSON"
                    for k in missing], ""]
    if skipped:
        lines += ["## Skipped", "", *[f"- `{s['test']}`: {s['reason']}" for s in skipped], ""]
    markdown = "\n".join(lines)
    with atomic_open(out / "report.md", "w") as f:
        f.write(markdown)
    return Report(markdown=markdown, charts=charts, findings=findings, missing=missing,
                  skipped=skipped)


def _raw_skips(path: Path) -> list[dict]:
    import json

    try:
        return list(json.loads(Path(path).read_text()).get("fer_skipped") or [])
    except (OSError, ValueError, AttributeError):
        return []
