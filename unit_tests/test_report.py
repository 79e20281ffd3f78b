"""fer report: every chart and finding from a real smoke run; missing experiments listed."""

import json
from pathlib import Path

import pytest

from fer.cli import main
from fer.report import EXPERIMENTS, ReportError, render_report

RUN = Path(__file__).parent / "fixtures" / "report" / "smoke-run.json"
PNG = b"\x89PNG\r\n\x1a\n"


def test_full_run_renders_every_chart_and_finding(tmp_path):
    report = render_report([RUN], tmp_path)
    assert {p.name for p in report.charts} == {f"{k}.png" for k in EXPERIMENTS}
    assert all(p.read_bytes()[:8] == PNG for p in report.charts)
    assert set(report.findings) == set(EXPERIMENTS) and not report.missing
    md = (tmp_path / "report.md").read_text()
    for finding in report.findings.values():
        assert finding in md
    assert "reached the best validation accuracy" in report.findings["optimizer"]
    assert "data-wait share was lowest with" in report.findings["workers"]
    assert "speed-up over fp32" in report.findings["precision"]
    assert "dominates the profile" in report.findings["profiler"]
    assert "Machine:" in md and "perf scale smoke" in md
    # the smoke run skipped DataParallel on a CPU box: the report says so and why
    assert "## Skipped" in md and "needs 2 CUDA device" in md


def test_missing_experiments_are_listed_not_drawn(tmp_path):
    payload = json.loads(RUN.read_text())
    payload["benchmarks"] = [b for b in payload["benchmarks"] if b["group"] in ("workers", "loader")]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(payload))
    report = render_report([partial], tmp_path / "out")
    assert {p.name for p in report.charts} == {"workers.png", "loader.png"}
    assert set(report.missing) == set(EXPERIMENTS) - {"workers", "loader"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Not in these runs" in md and "no benchmark of this experiment" in md
    assert not (tmp_path / "out" / "optimizer.png").exists()


def test_nothing_readable(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ReportError, match="none of the given files"):
        render_report([bad], tmp_path / "out")


def test_cli(tmp_path, capsys):
    assert main(["report", str(RUN), "--out", str(tmp_path)]) == 0
    assert f"{len(EXPERIMENTS)} charts" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
    assert "none of the given files" in capsys.readouterr().err
