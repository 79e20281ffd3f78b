"""fer.bench.stats and `fer compare`: the noise model, the four verdicts, the gates."""

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer.bench.noise import (
    DEFAULT_NOISE,
    IMPROVED,
    INCONCLUSIVE,
    MIN_NOISE,
    NOT_GATED,
    REGRESSED,
    UNCHANGED,
    Level,
    Member,
    judge_family,
    judge_levels,
    split_noise,
)
from fer.bench.stats import GateOptions, compare
from fer.bench.storage import CompareError, load_history, load_run
from fer.cli import main
from unit_tests.helpers import make_run

FIXTURES = Path(__file__).parent / "fixtures" / "history"


def run(name):
    return load_run(FIXTURES / name)


# ------------------------------------------------------- golden runs --

def test_injected_slowdown_regresses_every_benchmark():
    result = compare(run("base.json"), run("slow.json"))
    assert [r.verdict for r in result.rows] == [REGRESSED, REGRESSED]
    assert all(r.method.startswith("raw") and r.time.noise_source == "floor" for r in result.rows)
    assert all(r.change > 0.5 and r.time.low > 0 for r in result.rows)


def test_swapping_runs_swaps_the_verdicts():
    forward = compare(run("base.json"), run("slow.json"))
    backward = compare(run("slow.json"), run("base.json"))
    assert [r.verdict for r in backward.rows] == [IMPROVED, IMPROVED]
    for f, b in zip(forward.rows, backward.rows):
        assert math.isclose((1 + f.change) * (1 + b.change), 1, rel_tol=1e-9)


def test_an_unchanged_rerun_at_the_floor_is_not_a_regression():
    result = compare(run("base.json"), run("same.json"))
    assert REGRESSED not in {r.verdict for r in result.rows}
    # one baseline run: the noise is the stated floor, and the table says what it cannot see
    assert all(r.mde > result.threshold for r in result.rows)


def test_v3_run_without_rounds_uses_its_median(tmp_path):
    slower = json.loads((FIXTURES / "v3_run.json").read_text())
    slower["benchmarks"][0]["stats"]["median"] = 0.37 * 1.2
    slower["benchmarks"].pop(1)
    slower["benchmarks"].append(dict(slower["benchmarks"][0], name="test_epoch[new]",
                                     fullname="test_gate_epoch.py::test_epoch[new]"))
    path = tmp_path / "v3b.json"
    path.write_text(json.dumps(slower))
    result = compare(run("v3_run.json"), load_run(path))
    row = result.rows[0]
    assert row.new_rounds == 1 and row.verdict == INCONCLUSIVE  # +20% is within one run's noise
    assert result.added == ["test_gate_epoch.py::test_epoch[new]"]
    assert result.removed == ["test_gate_epoch.py::test_epoch[rmsprop]"]


def test_history_teaches_the_noise(tmp_path):
    quiet = [make_run(tmp_path / f"h{i}.json", {"a": [1.0 * f] * 3}, when=f"2026-01-0{i + 1}")
             for i, f in enumerate((1.0, 1.012, 0.988, 1.006))]
    history = [load_run(p) for p in quiet]
    slower = load_run(make_run(tmp_path / "new.json", {"a": [1.08] * 3}, when="2026-02-01"))
    row = compare(history, slower).rows[0]
    assert row.time.noise_source == "history (4 runs)" and row.verdict == REGRESSED
    assert row.mde < 0.05  # a quiet history detects small changes
    same = load_run(make_run(tmp_path / "same.json", {"a": [1.001] * 3}, when="2026-02-01"))
    assert compare(history, same).rows[0].verdict == UNCHANGED  # shown within ±5%


def test_calibration_removes_common_mode_drift(tmp_path):
    base = load_run(make_run(tmp_path / "a.json", {"a": [1.0, 1.01, 0.99]}, calibration=0.05))
    # the whole machine 15% slower: the epochs and the reference workload alike
    drift = load_run(make_run(tmp_path / "b.json", {"a": [1.15, 1.16, 1.14]}, calibration=0.0575))
    calibrated = compare(base, drift).rows[0]
    assert calibrated.method.startswith("calibrated") and abs(calibrated.change) < 0.01
    raw = compare(base, drift, GateOptions(calibration="off")).rows[0]
    assert raw.method.startswith("raw") and raw.change > 0.14
    with pytest.raises(CompareError, match="calibration on"):
        compare(run("base.json"), run("slow.json"), GateOptions(calibration="on"))


FAMILY = dict(threshold=0.05, confidence=0.95, method="calibrated", metric="time")


def _family(changes, history=None, sd=0.0):
    """Members whose candidate level is ``change`` above a baseline at 0 (one run, or a
    history of runs given as per-run lists of levels)."""
    runs = history or [[0.0] * len(changes)]
    return [Member(f"b{i}", Level(c, sd, 3), {j: Level(run[i], sd, 3) for j, run in enumerate(runs)})
            for i, c in enumerate(changes)]


def test_holm_keeps_a_large_gate_from_crying_wolf():
    # 40 benchmarks judged alone, each barely "significant" by itself: no family-wide evidence
    j, _ = judge_family(_family([0.07] * 40), pool="none", floor=0.03, common_floor=0.0,
                        **FAMILY)
    assert {x.verdict for x in j} == {INCONCLUSIVE} and {x.judged for x in j} == {"apart"}
    assert judge_levels(Level(0.07, 0.0, 3), [Level(0.0, 0.0, 3)], floor=0.03, common_floor=0.0,
                        **FAMILY).verdict == REGRESSED  # the same change alone is significant


def test_a_shift_shared_by_the_run_is_judged_together():
    # every benchmark +12%, with specific noise of 6.5% each (common 2%): alone none can
    # tell; together the specific noise averages out and the run's shift is clear
    changes = [math.log(1.12) + e for e in (0.03, -0.02, 0.01, -0.03, 0.02, 0.0, -0.01, 0.015)]
    floors = dict(floor=0.065, common_floor=0.02)
    alone, _ = judge_family(_family(changes), pool="none", **floors, **FAMILY)
    assert REGRESSED not in {x.verdict for x in alone}
    together, shift = judge_family(_family(changes), **floors, **FAMILY)
    assert {x.verdict for x in together} == {REGRESSED} and shift.verdict == REGRESSED
    assert {x.judged for x in together} == {"with the run"} and shift.apart == []
    assert 0.10 < shift.change < 0.14 and shift.low > 0
    assert all(x.mde < x.mde_alone for x in together)  # the run sees what one benchmark cannot


def test_a_benchmark_that_moved_alone_is_judged_apart():
    changes = [0.0, 0.01, -0.01, 0.005, -0.005, 0.0, 0.01, -0.01, 0.005, -0.005, 0.0, 0.0,
               math.log(1.5)]
    j, shift = judge_family(_family(changes), **FAMILY)
    assert shift.apart == ["b12"] and shift.verdict != REGRESSED
    assert j[-1].judged == "apart" and j[-1].verdict == REGRESSED
    assert {x.verdict for x in j[:-1]} == {INCONCLUSIVE}  # the rest: within a 10% MDE, not 5%


def test_scattered_noise_is_never_a_regression():
    # 16 benchmarks, unchanged, whose levels scatter by the specific floor: pooled, nothing
    changes = [0.065 * x for x in (1.2, -0.8, 0.3, -1.5, 0.9, -0.2, 0.6, -1.1, 1.4, -0.4, 0.1,
                                   -0.9, 0.7, -0.6, 1.0, -0.5)]
    j, shift = judge_family(_family(changes), **FAMILY)
    assert REGRESSED not in {x.verdict for x in j} and shift.verdict == INCONCLUSIVE


def test_history_splits_common_and_specific_noise():
    # five runs: each run moves all of its benchmarks together (common 4%), little else
    common = [0.04, -0.04, 0.0, 0.05, -0.05]
    history = [[c + 0.002 * ((i + j) % 3 - 1) for j in range(6)] for i, c in enumerate(common)]
    j, shift = judge_family(_family([0.01] * 6, history=history), **FAMILY)
    assert shift.noise_source == "history (5 runs)"
    assert 0.035 < shift.noise < 0.05  # the common part, learned
    assert all(x.noise < 0.05 for x in j)  # and little specific noise on top
    assert shift.verdict != REGRESSED


def test_memory_is_gated_tightly_on_cuda_only(tmp_path):
    a = load_run(make_run(tmp_path / "a.json", {"x": [1.0] * 3}, cuda_mem={"x": 1_000_000}))
    b = load_run(make_run(tmp_path / "b.json", {"x": [1.0] * 3}, cuda_mem={"x": 1_030_000}))
    row = compare(a, b).rows[0]
    assert row.judgements["memory"].verdict == REGRESSED and row.verdict == REGRESSED
    cpu = compare(run("base.json"), run("same.json")).rows[0]
    assert cpu.judgements["memory"].verdict == NOT_GATED  # RSS is not a deterministic gate
    only_time = compare(a, b, GateOptions(gate_on=("time",))).rows[0]
    assert only_time.verdict != REGRESSED and "memory" not in only_time.judgements


def test_throughput_and_data_wait_gates(tmp_path):
    a = load_run(make_run(tmp_path / "a.json", {"x": [1.0, 1.0, 1.0]}))
    b = load_run(make_run(tmp_path / "b.json", {"x": [1.5, 1.5, 1.5]}))
    row = compare(a, b, GateOptions(gate_on=("throughput", "data_wait"))).rows[0]
    assert row.judgements["throughput"].verdict == REGRESSED  # 1/1.5 the images/s
    assert row.judgements["data_wait"].verdict == UNCHANGED  # the share stayed at 10%


def test_bad_options_are_refused():
    with pytest.raises(CompareError, match="no earlier run"):
        compare([], run("base.json"))
    for bad, match in [(dict(threshold=0), "--threshold"), (dict(confidence=1.5), "confidence"),
                       (dict(gate_on=("speed",)), "--gate-on"), (dict(noise_floor=2), "noise_floor"),
                       (dict(common_noise_floor=-1), "common_noise_floor"),
                       (dict(pool="group"), "pool")]:
        with pytest.raises(CompareError, match=match):
            compare(run("base.json"), run("slow.json"), GateOptions(**bad))


def test_to_dict_is_json():
    payload = json.loads(json.dumps(compare(run("base.json"), run("slow.json")).to_dict()))
    assert len(payload["regressed"]) == 2 and payload["options"]["threshold"] == 0.05
    assert payload["counts"]["regressed"] == 2
    assert payload["rows"][0]["judgements"]["time"]["mde"] > 0
    assert payload["shifts"][0]["metric"] == "time" and payload["shifts"][0]["verdict"] == REGRESSED


# ------------------------------------------------------------- properties --

times = st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=1, max_size=6)
JUDGE = dict(threshold=0.05, confidence=0.95, method="raw", floor=None, metric="time")


@settings(max_examples=80, deadline=None)
@given(a=times, b=times)
def test_swapping_two_runs_mirrors_the_verdict(a, b):
    forward = judge_levels(Level.of(b), [Level.of(a)], **JUDGE)
    backward = judge_levels(Level.of(a), [Level.of(b)], **JUDGE)
    flip = {REGRESSED: IMPROVED, IMPROVED: REGRESSED, UNCHANGED: UNCHANGED,
            INCONCLUSIVE: INCONCLUSIVE}
    assert backward.verdict == flip[forward.verdict]
    assert math.isclose((1 + forward.change) * (1 + backward.change), 1, rel_tol=1e-9)


@settings(max_examples=80, deadline=None)
@given(a=times, b=times, k=st.floats(min_value=0.01, max_value=100))
def test_verdicts_do_not_depend_on_the_unit(a, b, k):
    plain = judge_levels(Level.of(b), [Level.of(a)], **JUDGE)
    scaled = judge_levels(Level.of([x * k for x in b]), [Level.of([x * k for x in a])], **JUDGE)
    assert plain.verdict == scaled.verdict
    assert math.isclose(plain.change, scaled.change, rel_tol=1e-6, abs_tol=1e-9)


@settings(max_examples=80, deadline=None)
@given(a=times, history=st.integers(min_value=1, max_value=6))
def test_identical_runs_never_regress(a, history):
    j = judge_levels(Level.of(a), [Level.of(a)] * history, **JUDGE)
    assert j.verdict in (UNCHANGED, INCONCLUSIVE) and abs(j.change) < 1e-12


@settings(max_examples=80, deadline=None)
@given(new=times, runs=st.lists(times, min_size=1, max_size=6))
def test_the_noise_floor_is_never_undercut(new, runs):
    j = judge_levels(Level.of(new), [Level.of(r) for r in runs], **JUDGE)
    assert j.noise >= math.expm1(MIN_NOISE) - 1e-12
    if len(runs) < 3:
        assert j.noise >= math.expm1(math.hypot(*DEFAULT_NOISE["raw"])) - 1e-12


@settings(max_examples=60, deadline=None)
@given(changes=st.lists(st.floats(min_value=-0.5, max_value=0.5), min_size=2, max_size=12))
def test_a_family_mirrors_when_the_runs_swap(changes):
    forward, fs = judge_family(_family(changes), **FAMILY)
    backward, bs = judge_family(_family([-c for c in changes]), **FAMILY)
    flip = {REGRESSED: IMPROVED, IMPROVED: REGRESSED, UNCHANGED: UNCHANGED,
            INCONCLUSIVE: INCONCLUSIVE}
    assert [flip[f.verdict] for f in forward] == [b.verdict for b in backward]
    assert fs.apart == bs.apart and math.isclose((1 + fs.change) * (1 + bs.change), 1,
                                                 rel_tol=1e-9)


# -------------------------------------------------------------------- CLI --

def test_cli_table_and_gate(capsys):
    base, slow = str(FIXTURES / "base.json"), str(FIXTURES / "slow.json")
    assert main(["compare", base, slow]) == 0
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "MDE" in out and "cannot detect less than" in out
    assert re.search(r"the run as a whole \(time, the (typical step|whole epoch), 2 benchmark\(s\) "
                     r"together\)", out)
    assert main(["compare", base, slow, "--fail-on-regression"]) == 1


def test_cli_markdown_json_and_plot(tmp_path, capsys):
    base, slow = str(FIXTURES / "base.json"), str(FIXTURES / "slow.json")
    assert main(["compare", base, slow, "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### fer compare") and "| `test_epoch[adam]` |" in md
    assert main(["compare", base, slow, "--json", "--plot", str(tmp_path)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["regressed"]) == 2 and payload["change_points"] == []
    svg = (tmp_path / "trend_gate.svg").read_text()  # the dashboard's chart, standalone
    assert svg.startswith("<svg xmlns=") and "median epoch time" in svg and "images/s" in svg
    assert 'class="regressed"' in svg  # the newest run regressed: ringed, as on the dashboard


def test_cli_history_and_baseline_folders(tmp_path, capsys):
    for i, name in enumerate(("base.json", "same.json", "slow.json")):
        shutil.copy(FIXTURES / name, tmp_path / f"000{i}_{name}")
    assert main(["compare", "--history", str(tmp_path), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "2 earlier runs" in out and "REGRESSED" in out
    folder = tmp_path / "baseline"
    folder.mkdir()
    shutil.copy(FIXTURES / "base.json", folder / "a.json")
    shutil.copy(FIXTURES / "same.json", folder / "b.json")
    assert main(["compare", str(folder), str(FIXTURES / "slow.json"), "--fail-on-regression"]) == 1


def test_cli_history_names_where_it_stepped(tmp_path, capsys):
    for i in range(8):
        level = 1.0 if i < 4 else 1.3
        wobble = (1.0, 1.01, 0.99, 1.005)[i % 4]
        make_run(tmp_path / f"run{i}.json", {"a": [level * wobble] * 3},
                 when=f"2026-01-0{i + 1}T00:00:00")
    assert main(["compare", "--history", str(tmp_path), "--plot", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("a:"))
    assert "run4.json" in line and "2026-01-05" in line and "confidence" in line
    assert 28 < float(line.split("%")[0].split()[-1]) < 32  # the step: +30%
    assert "+30% at run4.json" in (tmp_path / "plots" / "trend_gate.svg").read_text()


@pytest.mark.parametrize("argv,match", [
    (["compare", "a.json"], "give a baseline and a candidate"),
    (["compare", "--history", "/no/such/dir"], "no such folder"),
    (["compare", str(FIXTURES / "base.json"), str(FIXTURES / "slow.json"), "--threshold", "0"],
     "--threshold"),
    (["compare", "--history", str(FIXTURES), "--last", "-3"], "--last -3"),
    (["compare", str(FIXTURES / "base.json"), str(FIXTURES / "slow.json"), "--plot",
      str(FIXTURES / "base.json")], "is a file"),
    (["compare", str(FIXTURES / "base.json"), str(FIXTURES)], "the candidate must be one run"),
])
def test_cli_usage_errors_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_split_noise_separates_a_run_wide_shift_from_one_benchmark_s_own():
    # eight benchmarks over four runs: run 2 is 10% slower for all of them (common), and
    # benchmark "h" alone wobbles (specific)
    levels = {name: {j: math.log(1.10 if j == 2 else 1.0) + (0.05 * (-1) ** j if name == "h" else 0)
                     for j in range(4)} for name in "abcdefgh"}
    split = split_noise(levels)
    assert split.common > 0.04 and split.common_df == 3
    assert split.specific["h"] > 5 * split.specific["a"]
    assert split.pooled_specific is not None and split.pooled_specific > 0
    # every benchmark moved together only: no specific noise at all
    together = split_noise({n: {j: 0.1 * j for j in range(4)} for n in "ab"})
    assert together.specific["a"] < 1e-12 and together.pooled_specific < 1e-12


# ------------------------------------------------ one set of numbers, in every output --

epoch_times = st.lists(st.floats(min_value=0.01, max_value=50.0), min_size=2, max_size=4)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(base=st.lists(epoch_times, min_size=1, max_size=3), factor=st.floats(0.2, 5.0),
       wobble=st.floats(0.9, 1.1), calibration=st.sampled_from([None, 0.02]))
def test_every_printed_change_is_recomputable_from_the_printed_times(
        tmp_path_factory, base, factor, wobble, calibration):
    from fer.bench.dashboard import _comparison_table
    from fer.bench.render import format_markdown, format_table

    folder = tmp_path_factory.mktemp("pair")
    names = [f"b{i}" for i in range(len(base))]
    old = make_run(folder / "old.json", dict(zip(names, base)), calibration=calibration)
    scaled = {n: [t * factor * (wobble if i == 0 else 1.0) for t in times]
              for i, (n, times) in enumerate(zip(names, base))}
    new = make_run(folder / "new.json", scaled, calibration=calibration)
    result = compare(load_run(old), load_run(new))

    def check(base_s: str, new_s: str, change: str, where: str) -> None:
        recomputed = 100 * (float(new_s) / float(base_s) - 1)
        # times carry five significant digits, the change one decimal of a percent
        assert abs(recomputed - float(change.rstrip("%"))) <= 0.05 + 2e-4 * abs(recomputed + 100), \
            (where, base_s, new_s, change)

    for row in result.rows:  # JSON: exact
        assert math.isclose(row.new_s / row.base_s - 1, row.change, rel_tol=1e-9, abs_tol=1e-12)
    payload = json.loads(json.dumps(result.to_dict()))
    for row in payload["rows"]:
        assert math.isclose(row["new_s"] / row["base_s"] - 1, row["change"], abs_tol=1e-9)
    table = format_table(result).splitlines()
    for line in table:
        words = line.split()
        if words and words[0] in names:
            check(words[1], words[2], words[3], "text")
    for line in format_markdown(result).splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0].strip("`") in names:
            check(cells[1], cells[2], cells[3], "markdown")
    html = _comparison_table(result)
    for row in re.findall(r"<tr class=.*?</tr>", html):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        check(cells[1], cells[2], cells[3], "dashboard")
    # the verdict says whose change it is about
    assert all(("judged by" in line) for line in table if line.startswith("benchmark"))


def _mark_disturbed(path, names, why="its epochs spread 6.0x (slowest over fastest)"):
    payload = json.loads(path.read_text())
    for b in payload["benchmarks"]:
        if b["name"] in names:
            b["extra_info"]["disturbed"] = why
    path.write_text(json.dumps(payload))
    return path


def test_disturbed_runs_stay_out_of_the_baseline_and_a_disturbed_candidate_is_inconclusive(
        tmp_path, capsys):
    times = {"a": [1.0, 1.01, 0.99], "b": [2.0, 2.02, 1.98]}
    quiet = [make_run(tmp_path / f"q{i}.json", times, when=f"2026-01-0{i + 1}T00:00:00")
             for i in range(3)]
    busy = _mark_disturbed(make_run(tmp_path / "busy.json", {"a": [9.0] * 3, "b": [9.0] * 3},
                                    when="2026-01-04T00:00:00"), {"a", "b"})
    new = make_run(tmp_path / "new.json", times, when="2026-01-05T00:00:00")
    result = compare([load_run(p) for p in (*quiet, busy)], load_run(new))
    assert all(r.verdict != REGRESSED and r.verdict != IMPROVED for r in result.rows)
    assert any("left 2 benchmark run(s)" in n for n in result.reasons())
    assert all(r.base_runs == 3 for r in result.rows)  # the busy run is not in the baseline
    # a disturbed candidate: inconclusive, never regressed, and the reason travels
    slow = _mark_disturbed(make_run(tmp_path / "slow.json", {"a": [3.0] * 3, "b": [6.0] * 3}),
                           {"a"})
    result = compare([load_run(p) for p in quiet], load_run(slow))
    rows = {r.fullname: r for r in result.rows}
    assert rows["t.py::a"].verdict == INCONCLUSIVE and rows["t.py::b"].verdict == REGRESSED
    assert main(["compare", *map(str, quiet), str(slow), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert "disturbed machine when it was measured" in md
    assert main(["compare", *map(str, quiet), str(slow), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert any("disturbed machine when it was measured" in r for r in payload["reasons"])


def _relabel(path, **plan):
    payload = json.loads(path.read_text())
    for b in payload["benchmarks"]:
        b["extra_info"]["plan"] = {**(b["extra_info"].get("plan") or {}), **plan}
    path.write_text(json.dumps(payload))
    return path


def test_other_work_under_the_same_name_is_never_judged_as_one(tmp_path, capsys):
    times = {"a": [1.0, 1.01, 0.99], "b": [2.0, 2.02, 1.98]}
    smoke = [_relabel(make_run(tmp_path / f"s{i}.json", times, when=f"2026-01-0{i + 1}T00:00:00"),
                      model="test_efficientnet", batch_size=64) for i in range(2)]
    full = _relabel(make_run(tmp_path / "full.json", {"a": [9.0] * 3, "b": [19.0] * 3}),
                    model="efficientnet_b0", batch_size=64)
    result = compare([load_run(p) for p in smoke], load_run(full))
    assert result.rows == [] and result.count(REGRESSED) == 0
    assert any("model test_efficientnet -> efficientnet_b0" in r for r in result.reasons())
    assert main(["compare", *map(str, smoke), str(full), "--fail-on-regression"]) == 0
    assert "measured other work under the same name" in capsys.readouterr().out
    # a history that mixes the two: each benchmark is judged against its own kind only
    same = _relabel(make_run(tmp_path / "s2.json", times, when="2026-01-05T00:00:00"),
                    model="test_efficientnet", batch_size=64)
    result = compare([load_run(full), *(load_run(p) for p in smoke)], load_run(same))
    assert all(r.base_runs == 2 and r.verdict != REGRESSED for r in result.rows)
    assert any("only the baseline runs of the same work" in r for r in result.reasons())


def test_a_run_is_never_its_own_baseline_and_copies_count_once(tmp_path, capsys):
    times = {"a": [1.0, 1.01, 0.99]}
    old = make_run(tmp_path / "old.json", times, when="2026-01-01T00:00:00")
    new = make_run(tmp_path / "new.json", {"a": [1.5] * 3}, when="2026-01-02T00:00:00")
    shutil.copy(new, tmp_path / "copy_of_new.json")
    shutil.copy(old, tmp_path / "copy_of_old.json")
    result = compare([load_run(old), load_run(tmp_path / "copy_of_old.json"),
                      load_run(tmp_path / "copy_of_new.json")], load_run(new))
    assert result.rows[0].base_runs == 1
    assert any("copy(ies) of the candidate itself" in r for r in result.reasons())
    assert any("given twice once" in r for r in result.reasons())
    assert main(["compare", str(tmp_path / "copy_of_new.json"), str(new)]) == 2
    assert "is the candidate" in capsys.readouterr().err
    # in a history folder, a copy is skipped with a warning
    assert len(load_history(tmp_path)) == 2


def test_a_bad_date_is_an_error_not_the_newest_run(tmp_path, capsys):
    path = make_run(tmp_path / "r.json", {"a": [1.0] * 3}, when="zzzz-99")
    assert main(["compare", str(path), str(path)]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_an_interrupted_run_stays_out_of_a_history(tmp_path, caplog):
    import logging

    make_run(tmp_path / "a.json", {"a": [1.0] * 3}, when="2026-01-01T00:00:00")
    cut = make_run(tmp_path / "b.json", {"a": [1.0] * 3}, when="2026-01-02T00:00:00")
    payload = json.loads(cut.read_text())
    payload["fer_session"] = {"interrupted": True, "benchmarks": 1}
    cut.write_text(json.dumps(payload))
    with caplog.at_level(logging.WARNING):
        runs = load_history(tmp_path)
    assert [r.path.name for r in runs] == ["a.json"] and "an interrupted run" in caplog.text
    assert load_run(cut).interrupted  # named on the command line, it is read, and said so


# ------------------------------------------- the excess: a stall seen by one baseline --

def _stepped(tmp_path, name, stall, speed=1.0, n=8, when="2026-01-01T00:00:00",
             calibration=None):
    """``n`` benchmarks whose typical step is unchanged and whose whole epoch is ``stall``
    times it (a stall in some steps, work after the step loop), on a machine ``speed`` times
    slower, with a little noise of each epoch's own."""
    import random

    rng = random.Random(name)
    typical, walls = {}, {}
    for i in range(n):
        steps = [speed * (1 + 0.1 * i) * math.exp(rng.gauss(0, 0.01)) for _ in range(5)]
        typical[f"b{i}"] = steps
        walls[f"b{i}"] = [s * stall * math.exp(rng.gauss(0, 0.01)) for s in steps]
    return load_run(make_run(tmp_path / f"{name}.json", walls, typical=typical, when=when,
                             calibration=calibration))


def test_one_baseline_sees_a_stall_through_the_excess_though_the_machine_moved(tmp_path):
    """+17% of every epoch outside its typical step, on a machine 10% faster: against one
    baseline run the whole epoch cannot tell (its floor: 10.5% per benchmark, 7% common), the
    typical step is improved by the machine, the excess (which the machine's speed cancels
    from) flags every benchmark; its row and the run's line say which sample it was."""
    from fer.bench.render import format_table

    base = _stepped(tmp_path, "base", stall=1.05)
    new = _stepped(tmp_path, "new", stall=1.05 * 1.17, speed=0.9, when="2026-01-02T00:00:00")
    c = compare(base, new)
    assert [r.verdict for r in c.rows] == [REGRESSED] * 8
    assert all("over its typical step" in r.method and 0.14 < r.change < 0.20 for r in c.rows)
    text = format_table(c)
    assert "the whole epoch over its typical step x steps, a ratio" in text
    assert re.search(r"the run as a whole \(time, the whole epoch over its typical step, 8 "
                     r"benchmark\(s\) together\): \+1[5-9]\.\d%.*REGRESSED", text)


def test_an_unchanged_excess_on_a_moved_machine_is_never_a_regression(tmp_path):
    base = _stepped(tmp_path, "base", stall=1.05)
    new = _stepped(tmp_path, "new", stall=1.05, speed=1.12, when="2026-01-02T00:00:00")
    c = compare(base, new)
    assert REGRESSED not in {r.verdict for r in c.rows}
    assert not any("over its typical step" in r.method for r in c.rows)


def test_a_stall_measured_on_a_disturbed_machine_stays_inconclusive(tmp_path):
    """The reference workload ran twice its baseline time: the machine was disturbed, and no
    sample, the excess included, may call the benchmark regressed."""
    base = _stepped(tmp_path, "base", stall=1.05, calibration=1.0)
    new = _stepped(tmp_path, "new", stall=1.05 * 1.3, when="2026-01-02T00:00:00",
                   calibration=2.0)
    c = compare(base, new)
    assert {r.verdict for r in c.rows} == {INCONCLUSIVE}
    assert not any("excess" in s.method for s in c.shifts)
