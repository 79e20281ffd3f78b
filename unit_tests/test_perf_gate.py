"""The perf suite's plugin driven through pytest itself (pytester): machine info, the
calibration and step breakdown in the JSON, storage partitioned by hardware class, the
suite's own terminal summary, and pytest-benchmark's own compare-fail still working.
(fer compare's gate end to end: test_gate.py.)"""

import json

import pytest

from fer.gpu import hardware_class

BENCH_TEST = """
from fer.data import make_synthetic_faces
from fer.suite.harness import base_config, benchmark_epochs
from fer.suite.scales import resolve_scale

def test_epoch(benchmark):
    scale = resolve_scale("smoke", cuda=False)
    data = make_synthetic_faces(500, seed=0)  # 400 training images
    config = base_config(scale, synthetic_size=500, epochs=4, batch_size=50, device="cpu")
    records, summary = benchmark_epochs(benchmark, config, data, experiment="gate",
                                        group="gate", scale=scale)
    assert records[-1].images == 400
"""

# A test-side plugin that makes every batch 100 ms late: a data-loading regression. 8 batches
# add 0.8 s to a ~0.25 s epoch (+300%); gated at 50% below, so a machine 3x slower than usual
# (0.75 s epochs: +107%) still leaves the gate a 2x margin.
SLOWDOWN_PLUGIN = """
import time
from fer.data.loaders import DeviceLoader

_iter = DeviceLoader.__iter__

def _slow_iter(self):
    for batch in _iter(self):
        time.sleep(0.1)
        yield batch

DeviceLoader.__iter__ = _slow_iter
"""


@pytest.fixture
def gate_project(pytester):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_gate_epoch=BENCH_TEST)
    pytester.makepyfile(slowdown=SLOWDOWN_PLUGIN)
    return pytester


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=300)


@pytest.mark.slow
def test_saved_run_summary_and_pytest_benchmark_compare(gate_project, tmp_path):
    first = _run(gate_project, "--benchmark-autosave", "--benchmark-save-data")
    assert first.ret == 0, first.stdout.str()
    out = first.stdout.str()
    # the suite's own summary: the experiment's table, then the next commands
    assert "fer perf suite" in out and "epoch s" in out and "data wait" in out
    assert "fer compare --history" in out and "fer report" in out
    saved = list((gate_project.path / ".benchmarks").rglob("*.json"))
    assert len(saved) == 1
    # runs are stored per hardware class, so a compare never crosses machines
    assert hardware_class() in saved[0].parts and "smoke" in saved[0].parts
    payload = json.loads(saved[0].read_text())
    fer_info = payload["machine_info"]["fer"]
    assert fer_info["hardware_class"] == hardware_class()
    assert {"torch", "torchvision", "timm", "python"} <= set(fer_info)
    bench = payload["benchmarks"][0]
    assert bench["group"] == "gate" and len(bench["stats"]["data"]) == 3
    extra = bench["extra_info"]
    assert len(extra["records"]) == 4  # a warm-up and 3 timed epochs
    assert len(extra["calibration"]["samples_s"]) == 4  # the reference workload, each round
    assert extra["step_breakdown"]["ms_per_step"]["convolution"] > 0

    gate = ("--benchmark-compare", "--benchmark-compare-fail=median:50%")
    slower = _run(gate_project, "-p", "slowdown", *gate)
    assert slower.ret != 0
    output = slower.stdout.str() + slower.stderr.str()
    assert "Performance has regressed" in output
    assert "test_epoch" in output and "PercentageRegressionCheck" in output


def test_explicit_storage_is_left_alone(pytester):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_x="""
        def test_storage(pytestconfig):
            assert pytestconfig.getoption("benchmark_storage") == "file://./mine"
    """)
    result = pytester.runpytest_inprocess("--benchmark-storage=file://./mine", "-p",
                                          "no:cacheprovider")
    assert result.ret == 0


@pytest.mark.slow
def test_interrupted_run_keeps_finished_benchmarks(pytester):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_x="""
        import time

        def test_a_finished(benchmark):
            benchmark.pedantic(time.sleep, args=(0.001,), rounds=2)

        def test_b_interrupted(benchmark):
            def interrupted():
                raise KeyboardInterrupt
            benchmark.pedantic(interrupted, rounds=2)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json")
    assert result.ret == 2  # interrupted
    saved = json.loads((pytester.path / "out.json").read_text())
    assert [b["name"] for b in saved["benchmarks"]] == ["test_a_finished"]


# ------------------------------------------- options checked up front --

@pytest.mark.parametrize("args,match", [
    (["--perf-rounds", "0"], "--perf-rounds 0: must be >= 1"),
    (["--perf-rounds", "-3", "--collect-only"], "--perf-rounds -3: must be >= 1"),
    (["--benchmark-storage", "AFILE"], "AFILE is a file, not a folder"),
    (["--benchmark-storage", "file://AFILE/runs"], "AFILE is a file, so no folder"),
])
def test_bad_perf_options_are_one_usage_error_before_any_test(pytester, args, match):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_x="def test_never_runs(): raise AssertionError('ran')")
    (pytester.path / "AFILE").write_text("not a folder")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert match in err and "Traceback" not in err and "ran" not in result.stdout.str()
    assert len([line for line in err.splitlines() if line.strip()]) == 1
