"""The perf suite's plugin and summary without running a benchmark: the session's state, the
expected duration said up front, the machine's speed said at the end, and the options checked
before any test runs."""

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fer.suite import plugin
from fer.suite.summary import PerfSession, expected_duration, machine_speed, saved_sessions


def _saved(folder: Path, name: str, *, duration: float, points: int, cal: float,
           scale: str = "smoke") -> Path:
    path = folder / "Linux-CPython" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "machine_info": {"fer": {"perf_scale": scale}},
        "fer_session": {"duration_s": duration, "points": points, "benchmarks": points,
                        "calibration_median_s": cal},
        "benchmarks": []}))
    return path


def test_expected_duration_from_saved_runs_else_the_scale(tmp_path):
    _saved(tmp_path, "0001_a.json", duration=100.0, points=20, cal=0.02)  # 5 s a point
    _saved(tmp_path, "0002_b.json", duration=60.0, points=10, cal=0.02, scale="full")
    (tmp_path / "Linux-CPython" / "0003_torn.json").write_text("{not json")
    saved = saved_sessions(str(tmp_path))
    assert len(saved) == 2  # the torn file is left out
    assert "expected about 50 s" in expected_duration(10, "smoke", saved)
    assert "1 newest saved run" in expected_duration(10, "smoke", saved)
    assert "expected about 6 s" in expected_duration(1, "full", saved)
    # nothing saved: the scale's own figure, named as such
    assert "on a quiet 2-core CPU" in expected_duration(10, "smoke", [])
    assert "no saved run of this machine yet" in expected_duration(10, "study", [])


def test_saved_sessions_skip_special_and_missing_folders(tmp_path):
    assert saved_sessions(None) == [] and saved_sessions(str(tmp_path / "none")) == []
    (tmp_path / "dir.json").mkdir()  # a folder named like a run is not read
    assert saved_sessions(str(tmp_path)) == []


def test_machine_speed_against_the_saved_runs(tmp_path):
    session = PerfSession(started=time.monotonic())
    assert machine_speed(session) is None  # nothing measured: nothing said
    for cal in (0.020, 0.030, 0.025):
        session.note("t", {"records": [{}], "calibration": {"median_s": cal}})
    text = machine_speed(session)
    assert "25.0 ms (median of 3 benchmarks, 20.0-30.0 ms)" in text and "saved" not in text
    session.saved = [{"calibration_median_s": 0.0125}]
    assert "0.50x their speed" in machine_speed(session)  # twice as slow as before
    facts = session.facts()
    assert facts["calibration_median_s"] == 0.025 and facts["benchmarks"] == 3


@pytest.mark.parametrize("value,expected", [
    (Path("/some/dir/run1.json"), "/some/dir/run1.json"),  # pytest-benchmark >= 5.3: a path
    ("/some/dir/run1.json", "/some/dir/run1.json"),
    (SimpleNamespace(name="/some/dir/run1.json"), "/some/dir/run1.json"),  # an open file
    (None, None),
])
def test_the_next_hint_names_the_json_as_given(value, expected):
    config = SimpleNamespace(option=SimpleNamespace(benchmark_json=value))
    assert plugin._json_path(config) == expected


@pytest.mark.parametrize("columns", [None, list(plugin._PB_COLUMNS)])
def test_pytest_benchmark_table_trimmed_for_every_default(columns):
    option = SimpleNamespace(benchmark_columns=columns, benchmark_sort="min")
    plugin._trim_benchmark_table(option)
    assert option.benchmark_columns == ["median", "iqr", "rounds"] and option.benchmark_sort == "name"
    chosen = SimpleNamespace(benchmark_columns=["min"], benchmark_sort="mean")
    plugin._trim_benchmark_table(chosen)
    assert chosen.benchmark_columns == ["min"] and chosen.benchmark_sort == "mean"


def test_a_json_path_under_a_file_fails_before_any_test(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(pytest.UsageError, match="afile is a file"):
        plugin._check_json_path(str(tmp_path / "afile" / "run.json"))
    with pytest.raises(pytest.UsageError, match="is a folder"):
        plugin._check_json_path(tmp_path)
    plugin._check_json_path(str(tmp_path / "new" / "run.json"))  # a folder to be made: fine


# pytester in a subprocess: an in-process run puts sys.modules back afterwards, and torch's
# and numpy's extension modules cannot be loaded twice in one process
@pytest.mark.slow
def test_session_state_lives_on_the_config_and_reads_finished_benchmarks(pytester):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_x="""
        import pytest
        from fer.suite.plugin import perf_session

        def test_a(benchmark):
            benchmark.pedantic(lambda: None, rounds=1)
            benchmark.extra_info.update(experiment="x", records=[
                {"wall_s": 1.0, "images": 8, "images_per_s": 8.0, "data_wait_s": 0.1}])

        def test_b_skipped():
            pytest.skip("no such device here")

        def test_c_not_a_benchmark(benchmark):
            benchmark.pedantic(lambda: None, rounds=1)

        def test_z_state(pytestconfig):
            state = perf_session(pytestconfig)
            assert [r["name"] for r in state.results] == ["test_a"]
            assert [s["reason"] for s in state.skipped] == ["no such device here"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json")
    assert result.ret == 0, result.stdout.str()
    saved = json.loads((pytester.path / "out.json").read_text())
    assert saved["fer_skipped"][0]["test"].endswith("test_b_skipped")
    assert saved["fer_session"]["benchmarks"] == 1


def _result(name, walls, cal=0.02):
    records = [{"wall_s": w, "images": 8, "images_per_s": 8 / w, "data_wait_s": 0.0,
                "warmup": i == 0} for i, w in enumerate([walls[0], *walls])]
    return {"name": name, "extra": {"records": records, "calibration": {"median_s": cal}}}


def test_disturbed_benchmarks_are_found_by_their_spread_or_their_reference_workload():
    from fer.suite.summary import disturbances

    quiet = [_result(f"q{i}", [1.0, 1.1, 1.2]) for i in range(4)]
    found = disturbances([*quiet, _result("busy", [1.0, 7.0, 1.1]),
                          _result("slow_machine", [1.0, 1.05, 1.1], cal=0.05)])
    assert set(found) == {"busy", "slow_machine"}
    assert "epochs spread 7.0x" in found["busy"]
    assert "reference workload ran 2.5x" in found["slow_machine"]
    assert disturbances(quiet) == {}


@pytest.mark.slow
def test_a_disturbed_run_is_marked_in_the_json_and_warned_about(pytester):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.parametrize("walls", [[1.0, 1.1, 1.0], [1.0, 6.0, 1.0]], ids=["quiet", "busy"])
        def test_epochs(benchmark, walls):
            benchmark.pedantic(lambda: None, rounds=1)
            benchmark.extra_info.update(experiment="x", records=[
                {"wall_s": w, "images": 8, "images_per_s": 8 / w, "data_wait_s": 0.0,
                 "warmup": i == 0} for i, w in enumerate([walls[0], *walls])])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json")
    assert result.ret == 0, result.stdout.str()
    saved = {b["name"]: b["extra_info"] for b in
             json.loads((pytester.path / "out.json").read_text())["benchmarks"]}
    assert "epochs spread 6.0x" in saved["test_epochs[busy]"]["disturbed"]
    assert "disturbed" not in saved["test_epochs[quiet]"]
    out = result.stdout.str()
    assert "WARNING: 1 benchmark(s) ran on a disturbed machine (test_epochs[busy]" in out
