"""The perf suite's own terminal summary: one table per experiment, in the factor's order.

pytest-benchmark prints epoch seconds with Min/Max/StdDev/OPS, sorted by speed;
what a performance engineer reads here is the experiment: its factor in grid
order, the images each epoch trained, the median epoch, the spread of the timed
epochs, images/s and the data-wait share — then the commands that come next.
The harness notes every benchmark it times (:func:`note`); the plugin prints
:func:`format_summary` at the end of the session. No torch here.
"""

from __future__ import annotations

import statistics

RESULTS: list[dict] = []


def note(name: str, extra_info: dict) -> None:
    """Remember one finished benchmark (its test name and extra_info)."""
    RESULTS.append({"name": name, "extra": dict(extra_info)})


def _timed(extra: dict) -> list[dict]:
    records = [r for r in extra.get("records") or [] if isinstance(r, dict)]
    timed = [r for r in records if not r.get("warmup")]
    return timed or records


def _row(params: dict, extra: dict) -> list[str]:
    timed = _timed(extra)
    walls = [r["wall_s"] for r in timed]
    median = statistics.median(walls)
    spread = (max(walls) - min(walls)) / median if median > 0 else 0.0
    rate = statistics.median(r["images_per_s"] for r in timed)
    wait = statistics.median(r["data_wait_s"] / r["wall_s"] for r in timed if r["wall_s"] > 0)
    images = timed[-1]["images"]
    from fer.suite.experiments import point_id

    return [point_id(params) or "-", f"{images:,}", f"{median:.3f}", f"{100 * spread:.1f}%",
            f"{rate:,.0f}", f"{100 * wait:.1f}%"]


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % w for i, w in enumerate(widths))
    return ["  " + fmt.format(*head)] + ["  " + fmt.format(*r) for r in rows]


def format_summary(results: list[dict], *, json_path: str | None = None,
                   storage: str | None = None) -> str:
    from fer.suite.experiments import EXPERIMENTS

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
