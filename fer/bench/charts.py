"""Charts (matplotlib, Agg): one per report section (trends of a history: fer.bench.trends).

Each section chart takes the benchmarks of its experiments and the output
folder and returns ``(png path, one-line finding)``; the finding states what
the numbers show. Parameters are read from ``Bench.params`` (schema 2), never
from group names or labels. matplotlib is imported inside the functions, so
importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.derived import ScalingPoint, scaling_points, speedup
from fer.bench.storage import Bench

Chart = Callable[[Sequence[Bench], Path], tuple[Path, str]]


def _plt():
    import matplotlib  # lazy: matplotlib only when a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib only when a chart is drawn

    return plt


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator  # lazy: matplotlib only when a chart is drawn

    axis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: Path) -> Path:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=110)
    _plt().close(fig)
    return path


def _val_curve(b: Bench) -> list[float | None]:
    return [r.val_acc for r in b.records]


def _nan(values: list[float | None]) -> list[float]:
    return [v if v is not None else float("nan") for v in values]


# ------------------------------------------------------------ sections --

def apart(a: Bench, b: Bench) -> bool:
    """Whether two benchmarks' epoch times differ beyond the run's own spread: their timed
    epochs do not overlap. A finding that compares two times is stated only then."""
    ta, tb = a.epoch_times(), b.epoch_times()
    return max(ta) < min(tb) or max(tb) < min(ta)


CANNOT_TELL = "within the epochs' own spread: this run cannot tell them apart"


def _caveat(entries: Sequence[Bench]) -> str | None:
    """A line for the chart when the run was at smoke scale (a tiny model on a CPU)."""
    scale = next((b.scale for b in entries if b.scale), None)
    if scale is not None and scale.get("name") == "smoke":
        return (f"smoke scale ({scale.get('model')}, {scale.get('device')}): a check that the "
                "suite runs, not the study's regime")
    return None


def _note(fig, text: str | None) -> None:
    if text:
        fig.text(0.01, 0.01, text, fontsize=8, color="#a33", ha="left", va="bottom")


_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def optimizer(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    """Loss and validation accuracy per epoch (lines told apart by style and marker, so no
    optimizer hides under another), and the cost of a step: what the suite times."""
    plt = _plt()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.4),
                                        gridspec_kw={"width_ratios": [1, 1, 0.8]})
    best = None
    ordered = sorted(entries, key=lambda b: b.params.get("optimizer", b.name))
    curves: dict[tuple, str] = {}
    for i, b in enumerate(ordered):
        name = b.params.get("optimizer", b.name)
        key = tuple(round(r.loss, 9) for r in b.records)
        label = name if key not in curves else f"{name} (same curve as {curves[key]})"
        curves.setdefault(key, name)
        style = dict(linestyle=_STYLES[i % len(_STYLES)], marker=_MARKERS[i % len(_MARKERS)],
                     markersize=5, label=label)
        epochs = range(1, len(b.records) + 1)
        ax1.plot(epochs, [r.loss for r in b.records], **style)
        vals = _val_curve(b)
        ax2.plot(epochs, _nan(vals), **style)
        final = vals[-1] if vals else None
        if final is not None and (best is None or final > best[1]):
            best = (name, final)
    walls = [b.epoch_times() for b in ordered]
    medians = [sorted(w)[len(w) // 2] for w in walls]
    lows = [m - min(w) for m, w in zip(medians, walls)]
    highs = [max(w) - m for m, w in zip(medians, walls)]
    names = [b.params.get("optimizer", b.name) for b in ordered]
    ax3.barh(names[::-1], medians[::-1], xerr=[lows[::-1], highs[::-1]], color="tab:cyan",
             capsize=3)
    ax3.set(xlabel="median epoch time, s (bars: min-max)", title="What an epoch costs")
    ax3.set_xlim(left=0)
    ax1.set(xlabel="epoch", ylabel="training loss", title="Training loss per epoch")
    ax2.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy per epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        _integer_ticks(ax.xaxis)
    ax3.grid(axis="x", alpha=0.3)
    ax2.legend(fontsize=8, ncol=2)
    caveat = _caveat(entries)
    if caveat:
        caveat += f"; {len(entries[0].records)} epochs rank optimizers by noise as much as by merit"
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.04 if caveat else 0, 1, 1))
    path = _save(fig, out / "optimizer.png")
    by_cost = sorted(range(len(ordered)), key=medians.__getitem__)
    low, next_, high = by_cost[0], by_cost[min(1, len(by_cost) - 1)], by_cost[-1]
    if len(by_cost) > 1 and apart(ordered[low], ordered[next_]):
        cost = (f"the cheapest epoch was {names[low]}'s ({medians[low]:.3f} s; next "
                f"{names[next_]} {medians[next_]:.3f} s)")
    elif len(by_cost) > 1 and apart(ordered[low], ordered[high]):
        cost = (f"epochs cost {medians[low]:.3f} s ({names[low]}) to {medians[high]:.3f} s "
                f"({names[high]}); the cheapest ones are {CANNOT_TELL}")
    else:
        cost = f"their epoch costs ({min(medians):.3f}-{max(medians):.3f} s) are {CANNOT_TELL}"
    finding = (f"{best[0]} reached the best validation accuracy ({best[1]:.3f} after "
               f"{len(entries[0].records)} epochs) of {len(entries)} optimizers; {cost}."
               if best else "no optimizer recorded a validation accuracy.")
    return path, finding


def _workers_text(n: int) -> str:
    return f"{n} worker" + ("" if n == 1 else "s")


def workers(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    """The data-wait share and images/s per worker count: both axes from zero, each in its
    line's colour, both extremes marked (they need not fall on the same count)."""
    plt = _plt()
    pts = sorted((b.params.get("num_workers", 0), b.summary["median_data_wait_share"],
                  b.summary["median_images_per_s"]) for b in entries)
    counts, share, rate = zip(*pts)
    wait_color, rate_color = "tab:red", "tab:blue"
    fig, ax1 = plt.subplots(figsize=(8, 4.4))
    ax1.plot(counts, [100 * s for s in share], marker="o", color=wait_color,
             label="data-wait share (%)")
    ax1.set_xlabel("DataLoader num_workers")
    ax1.set_ylabel("data-wait share of the epoch (%)", color=wait_color)
    ax1.tick_params(axis="y", colors=wait_color)
    ax1.set_ylim(0, max(100 * max(share) * 1.25, 1))
    ax1.set_title("Data loading vs workers")
    ax2 = ax1.twinx()
    ax2.plot(counts, rate, marker="s", color=rate_color, label="images/s")
    ax2.set_ylabel("images/s", color=rate_color)
    ax2.tick_params(axis="y", colors=rate_color)
    ax2.set_ylim(0, max(rate) * 1.25)
    lowest = min(pts, key=lambda p: p[1])
    fastest = max(pts, key=lambda p: p[2])
    ax1.annotate(f"lowest wait: {_workers_text(lowest[0])}", (lowest[0], 100 * lowest[1]),
                 textcoords="offset points", xytext=(6, -16), fontsize=9, color=wait_color)
    ax2.annotate(f"most images/s: {_workers_text(fastest[0])}", (fastest[0], fastest[2]),
                 textcoords="offset points", xytext=(6, 8), fontsize=9, color=rate_color)
    ax1.set_xscale("symlog", base=2)
    ax1.set_xticks(counts, [str(w) for w in counts])
    ax1.grid(alpha=0.3)
    fig.legend(loc="upper center", fontsize=8, ncol=2, bbox_to_anchor=(0.5, 0.9))
    caveat = _caveat(entries)
    _note(fig, caveat and caveat + f"; {(entries[0].scale or {}).get('device')} "
                                   "cores bound the useful worker count")
    fig.tight_layout(rect=(0, 0.04 if caveat else 0, 1, 1))
    path = _save(fig, out / "workers.png")
    finding = (f"the data-wait share was lowest with {_workers_text(lowest[0])} "
               f"({100 * lowest[1]:.1f}% of the epoch, {100 * pts[0][1]:.1f}% with "
               f"{_workers_text(pts[0][0])}); throughput peaked at {_workers_text(fastest[0])} "
               f"({fastest[2]:,.0f} images/s).")
    return path, finding


def precision(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    """Median epoch time per precision and memory format, the timed epochs' range as error
    bars, the speed-up over fp32 (NCHW) written on each bar."""
    plt = _plt()
    from matplotlib.patches import Patch  # lazy: matplotlib only when a chart is drawn

    order = {"fp32": 0, "amp_fp16": 1, "amp_bf16": 2}
    rows = sorted(((b.params.get("precision", "?"), bool(b.params.get("channels_last")),
                    b.summary["median_wall_s"], b.epoch_times()) for b in entries),
                  key=lambda r: (order.get(r[0], 9), r[1]))
    base = {cl: t for p, cl, t, _ in rows if p == "fp32"}
    labels = [f"{p}{' +CL' if cl else ''}" for p, cl, _, _ in rows]
    colors = {"fp32": "tab:grey", "amp_fp16": "tab:orange", "amp_bf16": "tab:green"}
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    times = [t for _, _, t, _ in rows]
    err = [[t - min(w) for _, _, t, w in rows], [max(w) - t for _, _, t, w in rows]]
    bars = ax.bar(labels, times, yerr=err, capsize=4,
                  color=[colors.get(p, "tab:blue") for p, _, _, _ in rows],
                  hatch=None, edgecolor=["black" if cl else "none" for _, cl, _, _ in rows])
    for bar, (_, cl, t, _), top in zip(bars, rows, err[1]):
        ref = base.get(False) or base.get(cl)
        if ref:  # above the error bar, not on it
            ax.annotate(f"{speedup(ref, t):.2f}x", (bar.get_x() + bar.get_width() / 2, t + top),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=9)
    ax.set(ylabel="median epoch time, s (bars: min-max)",
           title="Epoch time by precision (speed-up vs fp32 NCHW)")
    ax.set_ylim(0, max(t + e for t, e in zip(times, err[1])) * 1.2)
    ax.legend(handles=[Patch(color=c, label=p) for p, c in colors.items()]
              + [Patch(facecolor="white", edgecolor="black", label="+CL: channels_last")],
              fontsize=8, loc="upper left")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    device = next((b.device_type for b in entries), "")
    caveat = _caveat(entries)
    if device.startswith("cpu"):
        caveat = ((caveat + "\n") if caveat else "") + ("on a CPU, autocast has no fast fp16/bf16 "
                                                         "kernels: not the GPU's story")
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.08 if caveat else 0, 1, 1))
    path = _save(fig, out / "precision.png")
    fp32 = base.get(False)
    parts = [f"{p}{' + channels_last' if cl else ''} {speedup(fp32, t):.2f}x"
             for p, cl, t, _ in rows if fp32 and (p != "fp32" or cl)]
    finding = ("epoch-time speed-up over fp32: " + ", ".join(parts) + "."
               if parts else "no fp32 baseline to compare against.")
    return path, finding


def profiler(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    plt = _plt()
    extra = entries[0].extra_info
    shares = extra.get("categories") or {}
    basis = extra.get("time_basis", "cpu")
    items = sorted(shares.items(), key=lambda kv: kv[1], reverse=True)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.barh([k for k, _ in items][::-1], [100 * v for _, v in items][::-1], color="tab:purple")
    ax.set(xlabel=f"share of {basis} time (%)",
           title="Where a training step's time goes (torch.profiler)")
    ax.grid(axis="x", alpha=0.3)
    caveat = _caveat(entries)
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.05 if caveat else 0, 1, 1))
    path = _save(fig, out / "profiler.png")
    dom = extra.get("dominant_category") or (items[0][0] if items else "?")
    ratio = extra.get("overhead_ratio")
    slowed = (f"; the profiler slowed a step {ratio:.2f}x" if isinstance(ratio, (int, float))
              else "; the profiler's overhead was not recorded")
    finding = (f"{dom} dominates the profile ({100 * shares.get(dom, 0):.1f}% of "
               f"{basis} time){slowed}." if items else "the profile holds no op categories.")
    return path, finding


#: how the scaling chart names each experiment's series
_SCALING_KIND = {"dataparallel": "DP", "ddp": "DDP", "pose_dataparallel": "DP pose"}


def scaling(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    plt = _plt()
    # one series per (experiment, per-device batch); efficiency recomputed from the JSON
    series: dict[tuple[str, int | None], list[ScalingPoint]] = {}
    for p in scaling_points(entries):
        series.setdefault((_SCALING_KIND.get(p.experiment, p.experiment), p.per_device_batch),
                          []).append(p)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    best = None
    for (kind, batch), pts in sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        pts.sort(key=lambda p: p.devices)
        ax1.plot([p.devices for p in pts], [p.median_wall_s for p in pts], marker="o",
                 label=f"{kind}, batch {batch}/device")
        for p in pts:
            if p.efficiency is not None and p.devices > 1 and (
                    best is None or p.efficiency > best[3]):
                best = (kind, batch, p.devices, p.efficiency)
    eff_by_batch: dict[tuple[str, int], dict[int, float]] = {}
    for (kind, batch), pts in series.items():
        for p in pts:
            if p.efficiency is not None and p.devices > 1 and batch is not None:
                eff_by_batch.setdefault((kind, p.devices), {})[batch] = p.efficiency
    batches = sorted({b for effs in eff_by_batch.values() for b in effs})
    for (kind, devices), effs in sorted(eff_by_batch.items()):
        xs = sorted(effs)
        ax2.plot([batches.index(x) for x in xs], [effs[x] for x in xs], marker="o",
                 label=f"{kind}, {devices} devices")
    ax2.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax2.set_ylim(0, 1.1)
    device_counts = sorted({p.devices for pts in series.values() for p in pts})
    ax1.set_xticks(device_counts, [str(d) for d in device_counts])
    ax1.set(xlabel="devices", ylabel="median epoch time (s)", title="Time per epoch vs devices")
    ax1.set_ylim(0, ax1.get_ylim()[1] * 1.08)  # the time a device saves is a ratio: from zero
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
    caveat = _caveat(entries)
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.05 if caveat else 0, 1, 1))
    path = _save(fig, out / "scaling.png")
    if best:
        kind, batch, devices, eff = best
        finding = (f"best multi-device scaling efficiency {eff:.2f} ({kind}, batch "
                   f"{batch}/device, {devices} devices); 1.0 is ideal.")
    else:
        finding = "only single-device runs: no scaling efficiency to report."
    return path, finding


def batch_size(entries: Sequence[Bench], out: Path, *, metric: str = "validation accuracy",
               name: str = "batch_size") -> tuple[Path, str]:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    finals = []
    for b in sorted(entries, key=lambda b: b.params.get("batch_size", 0)):
        batch = b.params.get("batch_size")
        vals = _nan(_val_curve(b))
        seen = [r.images * (i + 1) for i, r in enumerate(b.records)]
        ax1.plot(range(1, len(vals) + 1), vals, marker="o", label=f"batch {batch}")
        ax2.plot(seen, vals, marker="o", label=f"batch {batch}")
        finals.append((batch, vals[-1] if vals else float("nan"), b.summary["median_wall_s"], b))
    ax1.set(xlabel="epoch", ylabel=metric, title="Convergence per epoch")
    ax2.set(xlabel="training images seen", ylabel=metric, title="Convergence per image")
    _integer_ticks(ax1.xaxis)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    caveat = _caveat(entries)
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.05 if caveat else 0, 1, 1))
    path = _save(fig, out / f"{name}.png")
    small, large = finals[0], finals[-1]
    ratio = speedup(small[2], large[2])
    faster = "faster" if ratio >= 1 else "slower"
    pace = (f"ran an epoch {max(ratio, 1 / ratio):.1f}x {faster} than batch {small[0]}"
            if apart(small[3], large[3]) else
            f"ran an epoch in {large[2]:.3f} s vs {small[2]:.3f} s for batch {small[0]}, "
            f"{CANNOT_TELL}")
    finding = f"batch {large[0]} {pace} and ended at {metric} {large[1]:.3f} vs {small[1]:.3f}."
    return path, finding


def pose(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    path, finding = batch_size(entries, out, metric="validation PCK@0.2", name="pose")
    return path, "HRNet pose: " + finding


def loader(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    plt = _plt()
    rows = sorted((b.params.get("loader", b.name), b.summary["median_images_per_s"],
                   b.summary["median_data_wait_share"]) for b in entries)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([r[0] for r in rows], [r[1] for r in rows], color="tab:cyan")
    for i, r in enumerate(rows):
        ax.annotate(f"wait {100 * r[2]:.1f}%", (i, r[1]), ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="images/s", title="Loader path")
    ax.grid(axis="y", alpha=0.3)
    caveat = _caveat(entries)
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.05 if caveat else 0, 1, 1))
    path = _save(fig, out / "loader.png")
    rates = {r[0]: r[1] for r in rows}
    by_loader = {b.params.get("loader", b.name): b for b in entries}
    if "device" in rates and "dataloader" in rates:
        told = apart(by_loader["device"], by_loader["dataloader"])
        finding = (f"the device-resident loader trained {rates['device'] / rates['dataloader']:.2f}x "
                   "the images/s of the DataLoader path" + ("." if told else f", {CANNOT_TELL}."))
    else:
        finding = "only one loader path was measured."
    return path, finding


#: the step experiment's modes, in the chart's order
STEP_MODES = ("eager", "fused", "graph", "compile", "compile+graph")


def step_regime(entries: Sequence[Bench]) -> str:
    """The regime the step experiment found, in one line from its numbers."""
    rate = {(b.params.get("mode"), b.params.get("precision")): b.summary["median_images_per_s"]
            for b in entries}
    eager = next((b for b in entries if b.params.get("mode") == "eager"
                  and b.params.get("precision") == "fp32"), None)
    if eager is None or ("eager", "fp32") not in rate:
        return "no eager fp32 point to compare against."
    parts = []
    host, step = eager.timed_median("host_step_s"), eager.timed_median("step_s.median")
    device = eager.device_type
    kernels = eager.kernels_per_step
    if host and step and device == "cuda":
        share = min(host / step, 1.0)
        regime = "launch-bound" if share > 0.8 else "device-bound"
        k = f", {kernels:.0f} kernels a step" if isinstance(kernels, (int, float)) else ""
        parts.append(f"{regime}: the eager fp32 step spends {100 * share:.0f}% of its time "
                     f"issuing work on the host{k}")
    elif device and device != "cuda":
        parts.append("on a CPU the host runs the kernels itself (graphs and compile need a GPU)")
    base = rate[("eager", "fp32")]
    speedups = [f"{mode} {rate[(mode, 'fp32')] / base:.2f}x" for mode in STEP_MODES[1:]
                if (mode, "fp32") in rate]
    if speedups:
        parts.append("fp32 images/s over eager: " + ", ".join(speedups))
    for mode in ("eager", "graph"):
        if (mode, "amp_bf16") in rate and (mode, "fp32") in rate:
            parts.append(f"amp_bf16 {rate[(mode, 'amp_bf16')] / rate[(mode, 'fp32')]:.2f}x fp32 "
                         f"({mode})")
    return "; ".join(parts) + "."


def step(entries: Sequence[Bench], out: Path) -> tuple[Path, str]:
    """Images/s per step mode, fp32 and amp_bf16 side by side, the speed-up over the eager
    step of the same precision written on each bar."""
    plt = _plt()

    precisions = [p for p in ("fp32", "amp_bf16", "amp_fp16")
                  if any(b.params.get("precision") == p for b in entries)]
    modes = [m for m in STEP_MODES if any(b.params.get("mode") == m for b in entries)]
    rate = {(b.params.get("mode"), b.params.get("precision")): b.summary["median_images_per_s"]
            for b in entries}
    colors = {"fp32": "tab:grey", "amp_bf16": "tab:green", "amp_fp16": "tab:orange"}
    width = 0.8 / max(len(precisions), 1)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for i, prec in enumerate(precisions):
        xs = [j + (i - (len(precisions) - 1) / 2) * width for j in range(len(modes))]
        ys = [rate.get((m, prec), 0.0) for m in modes]
        bars = ax.bar(xs, ys, width, color=colors.get(prec, "tab:blue"), label=prec)
        base = rate.get(("eager", prec))
        for bar, y in zip(bars, ys):
            if base and y:
                ax.annotate(f"{y / base:.2f}x", (bar.get_x() + bar.get_width() / 2, y),
                            textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(range(len(modes)), modes)
    ax.set(ylabel="median images/s", title="The training step: speed-up over eager, per precision")
    ax.set_ylim(0, max(rate.values() or [1]) * 1.2)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    caveat = _caveat(entries)
    _note(fig, caveat)
    fig.tight_layout(rect=(0, 0.05 if caveat else 0, 1, 1))
    path = _save(fig, out / "step.png")
    return path, step_regime(entries)


#: the summary figures each section's chart reads from every benchmark (``Bench.summary``,
#: which completes a stored summary from the records): a benchmark lacking one is left out
#: of the chart and listed in the report, never a KeyError
SECTION_NEEDS: dict[str, tuple[str, ...]] = {
    "workers": ("median_data_wait_share", "median_images_per_s"),
    "precision": ("median_wall_s",),
    "batch_size": ("median_wall_s",),
    "pose": ("median_wall_s",),
    "loader": ("median_images_per_s", "median_data_wait_share"),
    "step": ("median_images_per_s",),
}

#: the chart of each report section (fer.suite.experiments.SECTIONS)
SECTION_CHARTS: dict[str, Chart] = {
    "optimizer": optimizer,
    "workers": workers,
    "precision": precision,
    "profiler": profiler,
    "scaling": scaling,
    "batch_size": batch_size,
    "loader": loader,
    "pose": pose,
    "step": step,
}

