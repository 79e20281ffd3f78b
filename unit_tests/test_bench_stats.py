"""fer.bench.stats and `fer compare`: golden runs, edge cases, verdict properties."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer.bench.stats import IMPROVED, REGRESSED, UNCHANGED, compare, verdict
from fer.bench.storage import CompareError, load_run
from fer.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "history"


def run(name):
    return load_run(FIXTURES / name)


# ------------------------------------------------------- golden runs --

def test_injected_slowdown_regresses_every_benchmark():
    result = compare(run("base.json"), run("slow.json"))
    assert [r.verdict for r in result.rows] == [REGRESSED, REGRESSED]
    assert all(r.method == "mann-whitney" and r.p_value < 0.05 for r in result.rows)
    assert all(r.change > 0.5 for r in result.rows)
    wait = result.rows[0].metrics["median_data_wait_share"]
    assert wait["new"] > wait["base"]  # the slowdown shows up as data wait


def test_swapping_runs_swaps_the_verdicts():
    forward = compare(run("base.json"), run("slow.json"))
    backward = compare(run("slow.json"), run("base.json"))
    assert [r.verdict for r in backward.rows] == [IMPROVED, IMPROVED]
    assert [r.p_value for r in forward.rows] == pytest.approx([r.p_value for r in backward.rows])


def test_v3_run_without_rounds_falls_back_to_the_threshold(tmp_path):
    r = run("v3_run.json")
    slower = json.loads((FIXTURES / "v3_run.json").read_text())
    slower["benchmarks"][0]["stats"]["median"] = 0.37 * 1.2
    slower["benchmarks"].pop(1)
    slower["benchmarks"].append(dict(slower["benchmarks"][0], name="test_epoch[new]",
                                     fullname="test_gate_epoch.py::test_epoch[new]"))
    path = tmp_path / "v3b.json"
    path.write_text(json.dumps(slower))
    result = compare(r, load_run(path))
    row = result.rows[0]
    assert row.method == "threshold" and row.p_value is None and row.verdict == REGRESSED
    assert result.added == ["test_gate_epoch.py::test_epoch[new]"]
    assert result.removed == ["test_gate_epoch.py::test_epoch[rmsprop]"]


def test_cross_machine_is_refused_unless_allowed(tmp_path):
    other = json.loads((FIXTURES / "base.json").read_text())
    other["machine_info"]["fer"]["hardware_class"] = "NVIDIA_H100_80GB_HBM3-x1"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    with pytest.raises(CompareError, match="--allow-cross-machine"):
        compare(run("base.json"), load_run(path))
    result = compare(run("base.json"), load_run(path), allow_cross_machine=True)
    assert result.cross_machine


def test_empty_baseline_and_bad_thresholds_are_refused():
    with pytest.raises(CompareError, match="no earlier run"):
        compare([], run("base.json"))
    with pytest.raises(CompareError, match="--threshold"):
        compare(run("base.json"), run("slow.json"), alpha=1.5)


def test_to_dict_is_json():
    payload = json.loads(json.dumps(compare(run("base.json"), run("slow.json")).to_dict()))
    assert len(payload["regressed"]) == 2 and payload["threshold"] == 0.05


# ------------------------------------------------------------- properties --

samples = st.lists(st.floats(min_value=1.0, max_value=1.04), min_size=5, max_size=12)


@settings(max_examples=60, deadline=None)
@given(data=samples)
def test_identical_samples_never_regress(data):
    from statistics import median

    v, p, _ = verdict(data, list(data), median(data), median(data))
    assert v == UNCHANGED


@settings(max_examples=60, deadline=None)
@given(data=samples, k=st.floats(min_value=1.06, max_value=5.0))
def test_scaling_every_time_by_k_always_regresses(data, k):
    from statistics import median

    slower = [x * k for x in data]
    v, p, method = verdict(data, slower, median(data), median(slower), threshold=0.05)
    assert method == "mann-whitney" and v == REGRESSED
    back, _, _ = verdict(slower, data, median(slower), median(data), threshold=0.05)
    assert back == IMPROVED


@settings(max_examples=100, deadline=None)
@given(base=st.floats(0.01, 100), new=st.floats(0.01, 100))
def test_threshold_verdict_is_antisymmetric(base, new):
    forward, _, _ = verdict(None, None, base, new)
    backward, _, _ = verdict(None, None, new, base)
    flip = {REGRESSED: IMPROVED, IMPROVED: REGRESSED, UNCHANGED: UNCHANGED}
    assert backward == flip[forward]


# -------------------------------------------------------------------- CLI --

def test_cli_table_and_gate(capsys):
    base, slow = str(FIXTURES / "base.json"), str(FIXTURES / "slow.json")
    assert main(["compare", base, slow]) == 0
    assert "REGRESSED" in capsys.readouterr().out
    assert main(["compare", base, slow, "--fail-on-regression"]) == 1


def test_cli_markdown_json_and_plot(tmp_path, capsys):
    base, slow = str(FIXTURES / "base.json"), str(FIXTURES / "slow.json")
    assert main(["compare", base, slow, "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### fer compare") and "| `test_epoch[adam]` |" in md
    assert main(["compare", base, slow, "--json", "--plot", str(tmp_path)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["regressed"]) == 2
    png = tmp_path / "trend_gate.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_history(tmp_path, capsys):
    for i, name in enumerate(("base.json", "same.json", "slow.json")):
        shutil.copy(FIXTURES / name, tmp_path / f"000{i}_{name}")
    assert main(["compare", "--history", str(tmp_path), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "2 earlier runs" in out and "REGRESSED" in out


@pytest.mark.parametrize("argv,match", [
    (["compare", "a.json"], "give two benchmark JSON files"),
    (["compare", str(FIXTURES / "corrupt.json"), str(FIXTURES / "base.json")], "not a readable"),
    (["compare", "--history", "/no/such/dir"], "no such folder"),
    (["compare", str(FIXTURES / "base.json"), str(FIXTURES / "slow.json"), "--threshold", "0"],
     "--threshold"),
])
def test_cli_usage_errors_exit_2(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err
