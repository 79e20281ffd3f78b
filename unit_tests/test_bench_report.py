"""fer.bench.report and `fer report`: every section and finding from real runs (old and
schema 2), missing and unknown experiments listed, and no torch on the way."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fer.bench.charts import SECTION_CHARTS
from fer.bench.report import SECTION_NAMES, ReportError, render_report
from fer.bench.storage import BenchmarkFileError, load_run
from fer.cli import main
from fer.suite.experiments import EXPERIMENTS

ROOT = Path(__file__).parents[1]
RUN = Path(__file__).parent / "fixtures" / "report" / "smoke-run.json"
PNG = b"\x89PNG\r\n\x1a\n"
LEGACY_RUNS = [RUN, ROOT / "docs" / "report-example" / "smoke-run.json",
               *sorted((ROOT / "docs" / "perf" / "NVIDIA_H200-x1").glob("*.json"))]


def test_every_section_has_a_chart_and_every_experiment_a_section():
    assert set(SECTION_CHARTS) == set(SECTION_NAMES)
    assert {e.section for e in EXPERIMENTS.values()} <= set(SECTION_NAMES)


def test_full_run_renders_every_chart_and_finding(tmp_path):
    report = render_report([RUN], tmp_path)
    assert {p.name for p in report.charts} == {f"{k}.png" for k in SECTION_NAMES}
    assert all(p.read_bytes()[:8] == PNG for p in report.charts)
    assert set(report.findings) == set(SECTION_NAMES) and not report.missing
    assert not report.unknown
    md = (tmp_path / "report.md").read_text()
    for finding in report.findings.values():
        assert finding in md
    assert "reached the best validation accuracy" in report.findings["optimizer"]
    assert "data-wait share was lowest with" in report.findings["workers"]
    assert "speed-up over fp32" in report.findings["precision"]
    assert "dominates the profile" in report.findings["profiler"]
    # recomputed from the JSON, not read from the stored scaling_efficiency
    assert report.findings["scaling"] == ("best multi-device scaling efficiency 0.65 (DDP, "
                                          "batch 64/device, 2 devices); 1.0 is ideal.")
    assert "Machine:" in md and "perf scale smoke" in md
    # the smoke run skipped DataParallel on a CPU box: the report says so and why
    assert "## Skipped" in md and "needs 2 CUDA device" in md


def _sections_held(path: Path) -> set[str]:
    return {EXPERIMENTS[b.experiment].section for b in load_run(path).benchmarks.values()}


@pytest.mark.parametrize("path", LEGACY_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_legacy_runs_render_every_section_they_hold(path, tmp_path):
    held = _sections_held(path)
    report = render_report([path], tmp_path)
    assert set(report.findings) == held
    assert set(report.missing) == set(SECTION_NAMES) - held and not report.unknown
    assert {p.name for p in report.charts} == {f"{k}.png" for k in held}


def test_example_report_findings_are_reproduced(tmp_path):
    example = ROOT / "docs" / "report-example"
    render_report([example / "smoke-run.json"], tmp_path)

    def findings(md: str) -> list[str]:
        return [line for line in md.splitlines() if line.startswith("- **")]

    assert findings((tmp_path / "report.md").read_text()) == findings(
        (example / "report.md").read_text())


# registry name of each group of the old fixture, and the parameters each experiment writes
_EXPERIMENT_OF_GROUP = {"pose_batch_size": "pose_batch_size"}


def _schema_2(payload: dict) -> dict:
    """The old fixture as a schema-2 run: typed params only, groups renamed to nonsense."""
    out = copy.deepcopy(payload)
    for b in out["benchmarks"]:
        extra = b["extra_info"]
        if extra.get("schema") == 2:  # written by the current harness already (the step points)
            b["group"] = f"renamed-{b['group']}"
            continue
        experiment = EXPERIMENTS[_EXPERIMENT_OF_GROUP.get(b["group"], b["group"])]
        params = {k: extra.pop(k) for k in experiment.param_names if k in extra}
        for k in ("num_workers", "precision", "channels_last", "optimizer", "batch_size",
                  "per_device_batch", "loader", "world_size", "devices"):
            extra.pop(k, None)
        extra["scaling_efficiency"] = 0.01  # stale: must be ignored
        extra.update(schema=2, experiment=experiment.name, params=params)
        b["group"] = f"renamed-{b['group']}"  # the report must not read group names
    return out


@pytest.mark.slow
def test_schema_2_run_renders_the_same_findings(tmp_path):
    payload = json.loads(RUN.read_text())
    new = _schema_2(payload)
    ddp = next(b for b in new["benchmarks"] if b["extra_info"]["experiment"] == "ddp")
    assert ddp["extra_info"]["params"] == {"world_size": 1}  # per-device batch from the config
    path = tmp_path / "schema2.json"
    path.write_text(json.dumps(new))
    legacy = render_report([RUN], tmp_path / "legacy")
    current = render_report([path], tmp_path / "current")
    assert current.findings == legacy.findings
    assert not current.missing and not current.unknown


def test_missing_experiments_are_listed_not_drawn(tmp_path):
    payload = json.loads(RUN.read_text())
    payload["benchmarks"] = [b for b in payload["benchmarks"] if b["group"] in ("workers", "loader")]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(payload))
    report = render_report([partial], tmp_path / "out")
    assert {p.name for p in report.charts} == {"workers.png", "loader.png"}
    assert set(report.missing) == set(SECTION_NAMES) - {"workers", "loader"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Not in these runs" in md and "no benchmark of this experiment" in md
    assert not (tmp_path / "out" / "optimizer.png").exists()


def test_unknown_experiments_are_listed_not_crashed_on(tmp_path):
    payload = json.loads(RUN.read_text())
    payload["benchmarks"] = [b for b in payload["benchmarks"] if b["group"] == "loader"]
    stranger = copy.deepcopy(payload["benchmarks"][0])
    stranger.update(name="test_step_mode[graphs]", fullname="perf_tests/x.py::test_step_mode[graphs]")
    stranger["extra_info"].update(schema=2, experiment="step_mode", params={"mode": "graphs"})
    payload["benchmarks"].append(stranger)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(payload))
    report = render_report([path], tmp_path / "out")
    assert set(report.findings) == {"loader"}
    assert report.unknown == {"step_mode": ["test_step_mode[graphs]"]}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Unknown experiments" in md and "`step_mode`: 1 benchmark(s) (test_step_mode[graphs])" in md


def test_a_bad_file_named_explicitly_is_an_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BenchmarkFileError, match="bad.json:1: not a readable JSON file"):
        render_report([RUN, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_cli(tmp_path, capsys):
    assert main(["report", str(RUN), "--out", str(tmp_path)]) == 0
    assert f"{len(SECTION_NAMES)} charts" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
    assert "none.json: no such file" in capsys.readouterr().err


def test_compare_and_report_import_no_torch():
    code = ("from fer.cli.compare import cmd_compare; "
            "from fer.bench import report, stats, storage, render, charts, derived; "
            "import sys; assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------- hostile input --

def _variant(tmp_path, name, mutate, source=RUN):
    payload = json.loads(source.read_text())
    mutate(payload)
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def test_summary_lacking_keys_is_completed_from_records(tmp_path):
    def strip(p):
        for b in p["benchmarks"]:
            b["extra_info"]["summary"] = {"peak_mem_bytes": 1}
    report = render_report([_variant(tmp_path, "s.json", strip)], tmp_path / "out")
    assert set(report.findings) == set(SECTION_NAMES) and not report.not_drawn


def test_summary_and_records_missing_is_noted_not_a_key_error(tmp_path):
    def strip(p):
        for b in p["benchmarks"]:
            if "test_workers" in b["fullname"] or "test_loader" in b["fullname"]:
                b["extra_info"]["summary"] = {}
                b["extra_info"].pop("records", None)
    report = render_report([_variant(tmp_path, "s.json", strip)], tmp_path / "out")
    assert report.findings["workers"].startswith("not drawn")
    assert "workers" in report.not_drawn and "loader" in report.not_drawn
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Not drawn" in md and "median_data_wait_share" in md


def test_records_lacking_loss_are_a_clean_error(tmp_path):
    def strip(p):
        for b in p["benchmarks"]:
            for r in b["extra_info"].get("records") or []:
                r.pop("loss", None)
    path = _variant(tmp_path, "noloss.json", strip)
    with pytest.raises(BenchmarkFileError, match=r"noloss.json: benchmark .* lacks loss"):
        render_report([path], tmp_path / "out")


def _other_machine(p):
    p["machine_info"]["fer"]["hardware_class"] = "NVIDIA_A100-x1"
    p["machine_info"]["fer"]["gpu_name"] = "NVIDIA A100"


@pytest.mark.slow
def test_runs_of_different_machines_are_not_merged_unless_allowed(tmp_path, capsys):
    other = _variant(tmp_path, "other.json", _other_machine)
    with pytest.raises(ReportError, match="--allow-cross-machine"):
        render_report([RUN, other], tmp_path / "out")
    assert main(["report", str(RUN), str(other), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "other.json ran on" in err and err.count("\n") == 1
    report = render_report([RUN, other], tmp_path / "out", allow_cross_machine=True)
    assert "different machines" in report.markdown and "NVIDIA A100" in report.markdown
    assert main(["report", str(RUN), str(other), "--out", str(tmp_path / "o"),
                 "--allow-cross-machine"]) == 0


def test_profiler_without_overhead_or_categories(tmp_path):
    def strip(p):
        for b in p["benchmarks"]:
            b["extra_info"].pop("overhead_ratio", None)
            b["extra_info"].pop("categories", None)
            b["extra_info"].pop("dominant_category", None)
    report = render_report([_variant(tmp_path, "p.json", strip)], tmp_path / "out")
    assert report.findings["profiler"] == "the profile holds no op categories."


def test_the_step_section_states_the_regime(tmp_path):
    from unit_tests.helpers import make_run

    # images/s: eager fp32 100, graph fp32 300; bf16 0.9x eager, 1.4x once graphed
    times = {"eager-fp32": 1.0, "graph-fp32": 1 / 3, "eager-amp_bf16": 1 / 0.9,
             "graph-amp_bf16": 1 / 4.2}
    path = make_run(tmp_path / "step.json", {k: [t] * 3 for k, t in times.items()}, group="step")
    run = json.loads(path.read_text())
    for b in run["benchmarks"]:
        mode, precision = b["name"].split("-")
        b["extra_info"]["params"] = {"mode": mode, "precision": precision}
        b["extra_info"]["plan"] = {"device_type": "cuda"}
        b["extra_info"]["step_breakdown"] = {"kernels_per_step": 900.0}
        step = b["stats"]["median"] / 2  # 2 steps an epoch
        for r in b["extra_info"]["records"]:
            r["step_s"] = {"n": 2, "median": step, "q25": step}
            r["host_step_s"] = 0.97 * step if mode == "eager" else 0.05 * step
    path.write_text(json.dumps(run))
    report = render_report([path], tmp_path / "out")
    finding = report.findings["step"]
    assert finding.startswith("launch-bound: the eager fp32 step spends 97% of its time issuing")
    assert "900 kernels a step" in finding and "graph 3.00x" in finding
    assert "amp_bf16 0.90x fp32 (eager)" in finding and "amp_bf16 1.40x fp32 (graph)" in finding
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**The study:** (beyond the study) at 48x48 the step is launch-bound" in md
    assert (tmp_path / "out" / "step.png").read_bytes()[:8] == PNG


def test_the_same_run_given_twice_is_read_once(tmp_path, capsys):
    copy_of_run = tmp_path / "copy.json"
    copy_of_run.write_bytes(RUN.read_bytes())
    once = render_report([RUN], tmp_path / "once")
    twice = render_report([RUN, str(RUN), copy_of_run], tmp_path / "twice")
    assert twice.findings == once.findings
    assert len(twice.duplicates) == 2 and "the same run as" in twice.duplicates[0]


def test_a_finding_compares_two_times_only_beyond_the_runs_own_spread():
    from fer.bench.charts import apart
    from fer.bench.storage import Bench

    def bench(times):
        records = [{"wall_s": t, "warmup": i == 0} for i, t in enumerate([times[0], *times])]
        return Bench("t::x", "x", "g", sorted(times)[1], list(times), {"records": records})

    assert apart(bench([1.0, 1.1, 1.2]), bench([1.3, 1.4, 1.5]))
    assert not apart(bench([1.0, 1.1, 1.4]), bench([1.3, 1.4, 1.5]))  # overlapping epochs
    assert not apart(bench([4.9, 24.7, 5.0]), bench([5.1, 5.2, 5.3]))  # one wild epoch
