"""`fer report`: the study reproduced as charts and a markdown report.

Reads perf-suite benchmark JSON (one run or several, merged), groups the
benchmarks by ``extra_info["experiment"]``, maps each experiment to its report
section through the registry (:data:`fer.suite.experiments.EXPERIMENTS`), draws
one PNG per section it finds (:data:`fer.bench.charts.SECTION_CHARTS`) and
writes ``report.md``: the machine, each finding in one line from the numbers,
what was skipped and why, which sections the JSON does not hold, and any
benchmark of an experiment the registry does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fer.atomic import atomic_open
from fer.bench.charts import SECTION_CHARTS
from fer.bench.storage import Bench, Run, load_run
from fer.errors import FERError
from fer.suite.experiments import EXPERIMENTS, SECTIONS

#: the report's sections, in the report's order
SECTION_NAMES: tuple[str, ...] = tuple(SECTIONS)


class ReportError(FERError):
    """Nothing to report on."""


@dataclass
class Report:
    markdown: str
    charts: list[Path]
    findings: dict[str, str]  # section -> finding
    missing: list[str]  # sections with no benchmark in the runs
    skipped: list[dict] = field(default_factory=list)  # {"test", "reason"} from fer_skipped
    unknown: dict[str, list[str]] = field(default_factory=dict)  # experiment -> benchmark names


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
    groups, unknown = by_section(runs)
    charts, findings, sections = [], {}, []
    for key in SECTION_NAMES:
        if key not in groups:
            continue
        title = SECTIONS[key]
        chart, finding = SECTION_CHARTS[key](groups[key], out)
        charts.append(chart)
        findings[key] = finding
        sections += [f"## {title}", "", f"**Finding:** {finding}", "",
                     f"![{title}]({chart.name})", ""]
    missing = [k for k in SECTION_NAMES if k not in groups]
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
    markdown = "\n".join(lines)
    with atomic_open(out / "report.md", "w") as f:
        f.write(markdown)
    return Report(markdown=markdown, charts=charts, findings=findings, missing=missing,
                  skipped=skipped, unknown=unknown)
