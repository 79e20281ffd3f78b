"""`fer report`: the study reproduced as charts and a markdown report.

Reads perf-suite benchmark JSON (one run or several, merged), groups the
benchmarks by ``extra_info["experiment"]``, maps each experiment to its report
section through the registry (:data:`fer.suite.experiments.EXPERIMENTS`), draws
one PNG per section it finds (:data:`fer.bench.charts.SECTION_CHARTS`) and
writes ``report.md``: the machine, each finding in one line from the numbers,
what was skipped and why, which sections the JSON does not hold, and any
benchmark of an experiment the registry does not know.

Every file is read through :func:`fer.bench.storage.load_run`, the one schema
check: a bad file named on the command line is an error naming it. Runs of
different machines (:func:`fer.bench.storage.machine_key`) are not merged into
one chart unless ``allow_cross_machine`` (``--allow-cross-machine``) is given;
then the report names every machine. A benchmark lacking a figure its chart
needs (a summary key, when its records cannot supply it) is left out of the
chart and listed under "Not drawn", never a ``KeyError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.charts import SECTION_CHARTS, SECTION_NEEDS
from fer.bench.storage import Bench, Run, load_run, machine_key
from fer.errors import FERError
from fer.suite.experiments import EXPERIMENTS, SECTIONS, experiments_in

#: the report's sections, in the report's order
SECTION_NAMES: tuple[str, ...] = tuple(SECTIONS)


class ReportError(FERError):
    """Nothing to report on, or runs that must not be merged (different machines)."""


@dataclass
class Report:
    markdown: str
    charts: list[Path]
    findings: dict[str, str]  # section -> finding
    missing: list[str]  # sections with no benchmark in the runs
    skipped: list[dict] = field(default_factory=list)  # {"test", "reason"} from fer_skipped
    unknown: dict[str, list[str]] = field(default_factory=dict)  # experiment -> benchmark names
    not_drawn: dict[str, list[str]] = field(default_factory=dict)  # section -> "bench: why"
    duplicates: list[str] = field(default_factory=list)  # "a.json: the same run as b.json"


def _distinct(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """The runs to read, each once: a file given twice, or a copy of another, is read once."""
    seen: dict[tuple, Path] = {}
    distinct, duplicates = [], []
    for path in map(Path, paths):
        try:
            key = (path.resolve(), ) if not path.is_file() else (
                "content", hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            key = (path.resolve(), )  # unreadable: load_run names the problem
        if key in seen:
            duplicates.append(f"{path}: the same run as {seen[key]}, read once")
            continue
        seen[key] = path
        distinct.append(path)
    return distinct, duplicates


def by_section(runs: list[Run]) -> tuple[dict[str, list[Bench]], dict[str, list[str]]]:
    """The benchmarks of each report section, and those of experiments not in the registry."""
    sections: dict[str, list[Bench]] = {}
    unknown: dict[str, list[str]] = {}
    for run in runs:
        for b in run.benchmarks.values():
            experiment = EXPERIMENTS.get(b.experiment or "")
            if experiment is None or experiment.section not in SECTION_CHARTS:
                unknown.setdefault(b.experiment or "(none)", []).append(b.name)
                continue
            sections.setdefault(experiment.section, []).append(b)
    return sections, unknown


def _machine_line(runs: list[Run]) -> str:
    """The machine of the runs; each machine and its runs when they differ."""
    machines: dict[str, list[str]] = {}
    for run in runs:
        machines.setdefault(_one_machine(run), []).append(run.path.name)
    if len(machines) == 1:
        return next(iter(machines))
    return "; ".join(f"[{', '.join(names)}] {line}" for line, names in machines.items()) + \
        " (different machines, merged with --allow-cross-machine: timings are not comparable)"


def check_same_machine(runs: list[Run], *, allow_cross_machine: bool = False) -> None:
    """ReportError unless every run has the machine of the first (or ``allow_cross_machine``)."""
    first = machine_key(runs[0].machine_info)
    for run in runs[1:]:
        key = machine_key(run.machine_info)
        if key != first and not allow_cross_machine:
            raise ReportError(
                f"{run.path} ran on {key} but {runs[0].path} on {first}; one report merges "
                "runs of one machine (report them separately, or pass --allow-cross-machine "
                "to merge them anyway)")


def _one_machine(run: Run) -> str:
    info = run.machine_info
    fer = info.get("fer") or {}
    cpu = (info.get("cpu") or {}).get("brand_raw") or info.get("processor") or "unknown CPU"
    gpu = f"{fer.get('gpu_count') or 1}x {fer['gpu_name']}" if fer.get("gpu_name") else "no GPU"
    sw = ", ".join(f"{k} {fer[k]}" for k in ("torch", "torchvision", "timm") if fer.get(k))
    scale = fer.get("perf_scale", "?")
    return f"{gpu}; {cpu}; {sw or 'versions not recorded'}; perf scale {scale}"


def _drawable(section: str, entries: list[Bench]) -> tuple[list[Bench], list[str]]:
    """The benchmarks holding every figure the section's chart needs, and why the rest not."""
    needs = SECTION_NEEDS.get(section, ())
    usable, left_out = [], []
    for b in entries:
        missing = [k for k in needs if k not in b.summary]
        if missing:
            left_out.append(f"{b.name}: no {', '.join(missing)} in extra_info.summary "
                            "and no records to compute it from")
        else:
            usable.append(b)
    return usable, left_out


def render_report(paths: list[str | Path], out_dir: str | Path, *,
                  allow_cross_machine: bool = False) -> Report:
    if not paths:
        raise ReportError("give at least one benchmark JSON file")
    paths, duplicates = _distinct(paths)
    runs = [load_run(p) for p in paths]  # a bad file named explicitly is an error
    check_same_machine(runs, allow_cross_machine=allow_cross_machine)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot create it ({exc.strerror}); pass another "
                          "folder") from None
    groups, unknown = by_section(runs)
    charts, findings, sections = [], {}, []
    not_drawn: dict[str, list[str]] = {}
    for key in SECTIONS:  # read now: a section may be added after import
        if key not in groups:
            continue
        title = SECTIONS[key]
        usable, left_out = _drawable(key, groups[key])
        if left_out:
            not_drawn[key] = left_out
        if not usable:
            findings[key] = "not drawn: no benchmark holds the figures this chart needs."
            sections += [f"## {title}", "", f"**Finding:** {findings[key]}", ""]
            continue
        chart, finding = SECTION_CHARTS[key](usable, out)
        charts.append(chart)
        findings[key] = finding
        study = "; ".join(dict.fromkeys(e.finding for e in experiments_in(key)))
        sections += [f"## {title}", "", f"**Measured:** {finding}", "",
                     f"**The study:** {study}.", "", f"![{title}]({chart.name})", ""]
    missing = [k for k in SECTIONS if k not in groups]
    skipped = [s for r in runs for s in r.skipped]
    total = sum(len(r.benchmarks) for r in runs)
    lines = ["# fer perf report", "",
             f"Machine: {_machine_line(runs)}.", "",
             f"Runs: {', '.join(r.path.name for r in runs)} ({total} benchmarks).", "",
             "## Findings", ""]
    lines += [f"- **{SECTIONS[k]}:** {v}" for k, v in findings.items()]
    lines.append("")
    lines += sections
    if missing:
        lines += ["## Not in these runs", "",
                  *[f"- {SECTIONS[k]} (`{k}`): no benchmark of this experiment in the JSON"
                    for k in missing], ""]
    if unknown:
        lines += ["## Unknown experiments", "",
                  *[f"- `{name}`: {len(benches)} benchmark(s) ({', '.join(benches[:3])}"
                    f"{', ...' if len(benches) > 3 else ''}); not an experiment of "
                    "fer.suite.experiments, not drawn" for name, benches in unknown.items()], ""]
    if skipped:
        lines += ["## Skipped", "", *[f"- `{s['test']}`: {s['reason']}" for s in skipped], ""]
    if not_drawn:
        lines += ["## Not drawn", "",
                  *[f"- {SECTIONS[k]}: `{why}`" for k, whys in not_drawn.items() for why in whys],
                  ""]
    markdown = "\n".join(lines)
    try:
        with atomic_open(out / "report.md", "w") as f:
            f.write(markdown)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot write report.md there ({exc.strerror}); pass "
                          "another folder") from None
    return Report(markdown=markdown, charts=charts, findings=findings, missing=missing,
                  skipped=skipped, unknown=unknown, not_drawn=not_drawn, duplicates=duplicates)
