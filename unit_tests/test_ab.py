"""fer ab and fer bisect: sides, selection, usage errors, the bisect search, and an end-to-end
A/B test of two commits of a scratch repository."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer.bench.paired import IMPROVED, REGRESSED, UNCHANGED, UNKNOWN, Benchmark, RunShift
from fer.cli import main
from fer.suite import ab
from fer.suite.ab import ABOptions, ABResult, Side, bisect, outcome, select

ROOT = Path(__file__).resolve().parents[1]


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def _repo(path: Path, commits: int = 0) -> Path:
    """A git repository holding a copy of this checkout's fer/ package, and ``commits``
    further commits that change nothing of fer."""
    shutil.copytree(ROOT / "fer", path / "fer", ignore=shutil.ignore_patterns("__pycache__"))
    _git(path.parent, "init", "-q", str(path))
    _git(path, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    for i in range(commits):
        (path / "notes.txt").write_text(f"{i}\n")
        _git(path, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
        _git(path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", f"c{i}")
    return path


def test_selection_is_pytest_s_k():
    names = [n for n, _, _ in select("optimizer and not sgd")]
    assert names and all(n.startswith("test_optimizer[") and "sgd" not in n for n in names)
    assert "test_optimizer[adam]" in names
    assert not any(n.startswith(("test_ddp", "test_profiler")) for n, _, _ in select(None))


@pytest.mark.parametrize("argv, match", [
    (["ab", "nope", "HEAD", "-k", "adam"], "BASE 'nope' is neither a revision"),
    (["ab", "HEAD", "HEAD", "-k", "zzz_none"], "selects none of the"),
    (["ab", "HEAD", "HEAD", "-k", "adam and ("], "-k 'adam and ('"),
    (["ab", "HEAD", "HEAD", "--budget", "0"], "--budget must be > 0"),
    (["ab", "HEAD"], "give BASE and CANDIDATE"),
    (["bisect", "HEAD", "HEAD~1", "-k", "adam"], "is not an ancestor"),
])
def test_usage_errors_exit_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    repo = _repo(tmp_path / "r", commits=1)
    monkeypatch.chdir(repo)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, match", [
    (["--perf-rounds", "1"], "must be >= 2"),
    (["--processes", "0"], "must be >= 1"),
    (["--processes", "5"], "must be <= 4"),
])
def test_a_bad_flag_value_is_argparse_s_one_line(argv, match, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["ab", "HEAD", "HEAD", *argv])
    assert exited.value.code == 2 and match in capsys.readouterr().err


def test_a_dirty_tree_is_refused_where_it_matters(tmp_path, monkeypatch, capsys):
    repo = _repo(tmp_path / "r", commits=1)
    monkeypatch.chdir(repo)
    (repo / "fer" / "engine.py").write_text((repo / "fer" / "engine.py").read_text() + "\n# x\n")
    assert main(["ab", "HEAD~1", "HEAD", "-k", "adam"]) == 2
    assert "uncommitted changes it lacks (fer/engine.py)" in capsys.readouterr().err
    # the folder itself is the tree as it is: resolved, with its changes noted
    side = ab.resolve_side("CANDIDATE", str(repo), ab.repository(repo), tmp_path)
    assert side.root == repo.resolve() and "1 uncommitted change(s)" in side.note


def test_a_revision_is_exported_without_touching_the_checkout(tmp_path, monkeypatch):
    repo = _repo(tmp_path / "r", commits=2)
    before = _git(repo, "status", "--porcelain"), _git(repo, "worktree", "list")
    side = ab.resolve_side("BASE", "HEAD~2", repo, tmp_path / "scratch")
    assert (side.root / "fer" / "engine.py").is_file() and not (side.root / "notes.txt").exists()
    assert side.commit == _git(repo, "rev-parse", "HEAD~2")
    assert (_git(repo, "status", "--porcelain"), _git(repo, "worktree", "list")) == before


# ------------------------------------------------------------------ bisect --

def _fake_result(regressed: bool, unknown: bool = False) -> ABResult:
    side = Side("BASE", "x", Path("."), "0" * 40)
    b = Benchmark("test_optimizer[adam]")
    b.verdict = REGRESSED if regressed else (UNKNOWN if unknown else UNCHANGED)
    shift = RunShift(3, 0.05 if regressed else 0.0, 0.0, 0.1, 0.02,
                     REGRESSED if regressed else (UNKNOWN if unknown else UNCHANGED))
    return ABResult(side, side, ABOptions(), [b], [shift], 1.0)


@pytest.mark.parametrize("culprit", range(1, 9))
def test_bisect_finds_the_culprit_of_eight_commits_in_four_tests(culprit, tmp_path,
                                                                 monkeypatch):
    repo = _repo(tmp_path / "r", commits=8)
    chain = _git(repo, "rev-list", "--reverse", "HEAD").split()  # chain[0]: the base commit
    calls = []

    def fake(base, candidate, options, progress=None, keep=None):
        calls.append((base, candidate))
        return _fake_result(chain.index(base) < culprit <= chain.index(candidate))

    monkeypatch.setattr(ab, "run_ab", fake)
    monkeypatch.chdir(repo)
    found = bisect(chain[0], chain[-1], ABOptions(keyword="adam"))
    assert found.culprit == chain[culprit]
    assert len(found.steps) <= 4 and len(calls) == len(found.steps)
    assert found.steps[-1].tested == chain[culprit] and found.steps[-1].good == chain[culprit - 1]


def test_bisect_says_why_it_could_not_isolate(tmp_path, monkeypatch, capsys):
    repo = _repo(tmp_path / "r", commits=4)
    monkeypatch.chdir(repo)
    budgets = []
    monkeypatch.setattr(ab, "run_ab", lambda b, c, options, **k: budgets.append(options.budget)
                        or _fake_result(False, unknown=True))
    assert main(["bisect", "HEAD~4", "HEAD", "-k", "adam", "-q", "--budget", "30"]) == 1
    out = capsys.readouterr().out
    assert "no culprit isolated" in out and "raise --budget" in out
    assert budgets == [30, 60]  # an unknown step is asked once more, with twice the budget


def test_an_excess_shift_that_is_not_counted_does_not_fail_the_run():
    sped_up = _fake_result(False)
    sped_up.shifts.append(RunShift(8, 0.025, 0.02, 0.03, 0.01, REGRESSED, "excess", False))
    assert not sped_up.failed and outcome(sped_up) == "good"
    sped_up.shifts[-1].counted = True  # a stall: the whole epoch moved its way
    assert sped_up.failed and outcome(sped_up) == "bad"


def test_outcome_of_a_step():
    assert outcome(_fake_result(True)) == "bad"
    assert outcome(_fake_result(False)) == "good"
    assert outcome(_fake_result(False, unknown=True)) == "unknown"
    improved = _fake_result(False)
    improved.shift.verdict = IMPROVED
    assert outcome(improved) == "good"
    # unknown, but its upper bound is below the threshold: not a regression worth bisecting
    below = _fake_result(False, unknown=True)
    below.shifts[0].high = below.options.threshold - 0.01
    assert outcome(below) == "good"
    below.shifts[0].high = below.options.threshold + 0.01
    assert outcome(below) == "unknown"


# ------------------------------------------------------------ end to end --

PLANT = """
        _ = inputs.sum().item()  # planted: one more op and one host read per step
"""


@pytest.mark.slow
def test_fer_ab_of_two_commits_names_the_planted_op(tmp_path):
    """A commit that adds one op and one .item() per step: the counters regress it, named,
    whatever the clock says; exit 1 with --fail-on-regression."""
    repo = _repo(tmp_path / "r")
    engine = repo / "fer" / "engine.py"
    text = engine.read_text()
    anchor = "        sums.steps += 1\n"
    assert anchor in text
    engine.write_text(text.replace(anchor, anchor + PLANT, 1))
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "plant")
    done = subprocess.run([sys.executable, "-m", "fer", "ab", "HEAD~1", "HEAD", "-k",
                           "test_optimizer and sgd and not momentum and not nesterov",
                           "--budget", "1", "--json", "--fail-on-regression", "--threads", "1",
                           "--processes", "1"],  # one worker a side: the loop, not its power
                          cwd=repo, capture_output=True, text=True, timeout=280)
    assert done.returncode == 1, done.stderr[-2000:]
    result = json.loads(done.stdout)
    (row,) = result["rows"]
    assert row["fullname"] == "test_optimizer[sgd]" and row["verdict"] == REGRESSED
    assert row["judged_by"] in ("counters", "step", "epoch", "excess")
    assert row["counters"]["verdict"] == REGRESSED
    detail = row["counters"]["detail"]
    assert "aten ops/step" in detail and "+1: aten::sum" in detail
    assert "+1: aten::_local_scalar_dense" in detail and "syncs/step" in detail
    # pairs a busy machine spoilt are left out and counted (the counts judge all the same)
    assert len(row["pairs"]) + row["disturbed_pairs"] >= 3
    if len(row["pairs"]) >= 2:
        assert {p["order"] for p in row["pairs"]} == {"AB", "BA"}
    assert result["base"]["commit"] != result["candidate"]["commit"]


def test_a_busy_machine_leaves_the_time_inconclusive_and_the_counts_judged():
    from fer.bench.storage import Bench

    def bench(ops):
        counters = {"per_step": {"aten_ops": ops}, "variation": {"aten_ops": 0.0},
                    "ops": {"add": ops}}
        return Bench("t", "t", None, 1.0, [1.0], {"records": [], "counters": counters})

    quiet = ab._Point(Benchmark("t", disturbed_pairs=5), bench(10), bench(10))
    ab._finish(quiet)
    assert quiet.bench.verdict == "inconclusive" and "rerun on a quiet machine" in quiet.bench.why
    planted = ab._Point(Benchmark("t", disturbed_pairs=5), bench(10), bench(11))
    ab._finish(planted)
    assert planted.bench.verdict == REGRESSED and planted.bench.judged_by == "counters"
    assert planted.bench.why.startswith("aten ops/step 10 -> 11 (+1: aten::add)")
    assert "time inconclusive" in planted.bench.why


# ------------------------------------------------- the loop, with stand-in workers --

class FakeWorker:
    """A worker's answers without a process: epochs of ``seconds`` each (the step sample
    0.8 of it), the step ``ran``; every epoch asked is logged as (side, process pair)."""

    def __init__(self, side, proc, log, seconds=1.0, ran=None):
        self.side, self.proc, self.calls = side, proc, log
        self.seconds, self.ran = seconds, ran or {"cuda_graph": False, "compile": "none"}

    def ask(self, msg):
        record = {"wall_s": self.seconds, "steps": 10, "step_s": {"q25": 0.08 * self.seconds}}
        if msg["op"] == "load":
            return {"config": {}, "warmup": record, "device": "cpu"}
        if msg["op"] == "epoch":
            self.calls.append((self.side, self.proc))
            return {"record": dict(record, call_s=self.seconds), "others_share": 0.0,
                    "ran": self.ran}
        if msg["op"] == "count":
            return {"counters": None}
        return {"step_breakdown": None}


def _fake_pairs(log, b_kwargs=None):
    """Two process pairs; ``b_kwargs``: per process pair, its B worker's settings."""
    return [{"A": FakeWorker("A", j, log),
             "B": FakeWorker("B", j, log, **(b_kwargs or {}).get(j, {}))} for j in range(2)]


def test_process_pairs_take_turns_each_in_its_own_ab_ba_order():
    log = []
    point = ab._measure_point(_fake_pairs(log), "test_optimizer[adam]", "optimizer",
                              {"optimizer": "adam"}, ABOptions(), lambda: 1e12, 1, {}, {})
    b = point.bench
    assert b.skipped is None and b.verdict == UNCHANGED  # identical sides: the same
    assert [p["proc"] for p in b.pairs] == [0, 1, 0, 1]  # the first look: two pairs each
    assert [p["order"] for p in b.pairs] == ["AB", "AB", "BA", "BA"]
    assert log == [("A", 0), ("B", 0), ("A", 1), ("B", 1), ("B", 0), ("A", 0), ("B", 1), ("A", 1)]
    assert b.processes == 2 and set(b.seconds) == {"pairs"}


def test_a_step_that_fell_back_in_one_process_pair_s_side_skips_the_benchmark():
    log = []
    fell = {1: {"ran": {"cuda_graph": True, "compile": "none"}}}
    point = ab._measure_point(_fake_pairs(log, fell), "test_step[x]", "step", {},
                              ABOptions(), lambda: 1e12, 1, {}, {})
    assert point.bench.skipped == ("the sides ran different steps (a step mode fell back on "
                                   "one side): cuda_graph False vs True (process pair 2)")


def test_the_budget_ends_a_benchmark_after_its_first_look():
    log = []
    slower = {0: {"seconds": 1.05}, 1: {"seconds": 0.97}}  # the pairs disagree: not yet known
    point = ab._measure_point(_fake_pairs(log, slower), "test_optimizer[adam]", "optimizer",
                              {}, ABOptions(), lambda: 0.0, 1, {}, {})
    assert len(point.bench.pairs) == ABOptions().first_look == 4


class _Clock:
    """``time`` for fer.suite.ab: seconds pass only when a stand-in worker says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def _run_points(monkeypatch, tmp_path, n, budget):
    """``n`` benchmarks of stand-in workers that take 8 s to start and 1 s an epoch."""
    clock, lines = _Clock(), []
    monkeypatch.setattr(ab, "time", clock)

    class Starting(FakeWorker):
        def __init__(self, side, log, threads):
            super().__init__(side, 0, [])

        def check(self):
            clock.now += 8.0

        def ask(self, msg):
            clock.now += msg["op"] == "epoch"
            return super().ask(msg)

        def close(self, wait=True):
            pass

        reap = close

    monkeypatch.setattr(ab, "Worker", Starting)
    points = [(f"test_optimizer[o{i}]", "optimizer", {}) for i in range(n)]
    measured, closing = [], []
    ab._measure_points(points, "A", "B", ABOptions(budget=budget), tmp_path, 0.0, measured,
                       closing, lines.append)
    return [m.bench for m in measured], [x for x in lines if x.startswith("warning")]


def test_a_budget_too_small_for_the_selection_is_said_at_once(monkeypatch, tmp_path):
    """Each benchmark needs 32 s of starts and 8 s of its first four pairs: ten of them cannot
    fit 60 s. The run says so after the first, with what it will take and the fix."""
    benches, warnings = _run_points(monkeypatch, tmp_path, 10, budget=60)
    assert all(len(b.pairs) == 4 for b in benches)  # each still gets its first look
    assert ab.least_seconds(benches, 4) == pytest.approx(40.0)
    assert warnings == ["warning: --budget 60 s is too small for 10 benchmarks: each takes "
                        "about 40 s at least (its workers and its first 4 pairs), so this run "
                        "will take about 400 s; select fewer with -k, or raise --budget"]
    assert ab.overrun_notes(benches, 400.0, ABOptions(budget=60)) == [
        "the run took 400 s, over its --budget of 60 s: each of its 10 benchmarks needs about "
        "40 s at least (its workers and its first 4 pairs); select fewer with -k, or raise "
        "--budget"]
    assert ab.overrun_notes(benches, 70.0, ABOptions(budget=60)) == []  # within 20%
    # over by 20%, but the first looks fit the budget: something else took the time
    assert ab.overrun_notes(benches, 600.0, ABOptions(budget=400)) == []
    assert _run_points(monkeypatch, tmp_path, 10, budget=600)[1] == []  # it fits: no word


def test_gpu_facts_of_the_two_sides_are_warned_about():
    """NVML saw the card throttle during B's epochs only, and the sides on different cards:
    one line each (a CPU run has neither and gets no line)."""
    def pair(reasons_b):
        rec = {"wall_s": 1.0, "steps": 10, "step_s": {"q25": 0.08}}
        return {"a": dict(rec, gpu_sampling={"throttle_reasons": ["gpu_idle"]}),
                "b": dict(rec, gpu_sampling={"throttle_reasons": reasons_b}), "order": "AB"}

    b = Benchmark("test_optimizer[adam]", pairs=[pair(["sw_thermal_slowdown"]), pair([])])
    b.gpus = {"A": ["GPU-aaaaaaaaaaaa-1"], "B": ["GPU-bbbbbbbbbbbb-2"]}
    notes = ab.gpu_notes([b])
    assert notes[0].startswith("1 benchmark(s) ran the sides on different physical GPUs "
                               "(GPU-aaaaaaaa vs GPU-bbbbbbbb)")
    assert notes[1].startswith("the card throttled during B's epochs only "
                               "(sw_thermal_slowdown in 1)")
    assert ab.gpu_notes([Benchmark("t", pairs=[pair(["gpu_idle"])])]) == []
