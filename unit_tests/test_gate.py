"""The regression gate end to end, driven through pytest itself (pytester) and `fer compare`:
a baseline run, an unchanged rerun that passes the gate, and a rerun with a real injected
slowdown (every training step waits half its own time) that fails it with exit 1 — at the
suite's default rounds and fer compare's default settings, with four benchmarks (a run of the
suite has many: the gate judges those that moved together by the run's shift)."""

import sys
from pathlib import Path

import pytest

from fer.cli import main

ROOT = Path(__file__).resolve().parents[1]

BENCH_TEST = """
import pytest

from fer.data import make_synthetic_faces
from fer.suite.harness import base_config, benchmark_epochs
from fer.suite.scales import resolve_scale

@pytest.mark.parametrize("batch", [40, 48, 64, 96])
def test_epoch(benchmark, batch):
    scale = resolve_scale("smoke", cuda=False)  # the default rounds: a warm-up and 3 timed
    data = make_synthetic_faces(480, seed=0)  # 384 training images: 9, 8, 6 or 4 steps
    config = base_config(scale, synthetic_size=480, batch_size=batch, device="cpu")
    # no step breakdown: the gate is under test, not the explanation (profiling is slow here)
    records, summary = benchmark_epochs(benchmark, config, data, experiment="gate",
                                        group="gate", scale=scale, with_breakdown=False)
    assert len(records) == scale.rounds + 1
"""


def _run(pytester, out: str, *args):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q",
                                           f"--benchmark-json={out}", *args, timeout=300)
    assert result.ret == 0, result.stdout.str()
    return str(pytester.path / out)


@pytest.mark.slow
def test_fer_compare_gate_passes_unchanged_and_fails_on_a_real_slowdown(pytester, monkeypatch,
                                                                        capsys):
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_gate_epoch=BENCH_TEST)
    pytester.makepyfile(slowdown=(ROOT / "benchmarks" / "slowdown_plugin.py").read_text())
    baseline = _run(pytester, "a.json")
    unchanged = _run(pytester, "b.json")
    passed = main(["compare", baseline, unchanged, "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    if not passed:
        # A neighbour on a shared machine can really slow one benchmark of an unchanged rerun
        # for a second (seen here: 3 epochs at 1.6x, the reference workload 1.25x): one more
        # unchanged pair must then pass. A gate that false-alarms on A/A fails both.
        print(out, file=sys.stderr)  # kept for the report, apart from the retry's output
        baseline, unchanged = _run(pytester, "a2.json"), _run(pytester, "b2.json")
        assert main(["compare", baseline, unchanged, "--fail-on-regression"]) == 0, out
        out = capsys.readouterr().out
    # exit 0 above: no benchmark regressed (a run-level line may still name a shift that no
    # benchmark of a busy machine's rerun carries); the reference workload was timed
    assert "calibrated" in out

    monkeypatch.setenv("FER_SLOWDOWN", "0.5")
    slowed = _run(pytester, "c.json", "-p", "slowdown")
    assert main(["compare", baseline, slowed, "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "the run as a whole (time, " in out, out
