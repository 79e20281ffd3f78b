"""A step mode never breaks the run: a CUDA graph capture, torch.compile or a fused optimizer
that fails on the machine falls back to the next honest step (graph -> eager, compile -> no
compile, fused -> foreach -> torch's default), runs the batch again, and says so: in
``Trainer.step_mode`` / ``extra_info["step_mode"]``, in the suite's summary, in `fer train`'s
warning, and in `fer compare`, which never judges it against runs of the step it asked for.

Each failure is injected on a CPU: a graph backend whose capture raises, ``torch.compile``
raising when called or returning a module whose first call fails, an optimizer whose
constructor refuses ``fused=True``.
"""

import contextlib
import dataclasses
import functools
import json
import math
import signal
import time

import pytest
import torch

from fer.bench.stats import compare
from fer.bench.storage import Bench, load_run
from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import build_trainer
from fer.errors import ConfigError
from fer.graphs import GraphedStep
from fer.suite import harness
from fer.suite.summary import format_summary
from unit_tests.helpers import FakeBenchmark, make_run

CUDA = torch.cuda.is_available()
CAPTURE_ERROR = "operation not permitted when stream is capturing"


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(100, seed=3)  # 80 train: 5 steps of 16 (the capture at the 4th)


def cfg(**kw):
    base = dict(model="test_efficientnet", device="cpu", epochs=2, batch_size=16,
                synthetic_size=100, run_dir="none")
    return TrainConfig(**{**base, **kw})


class FailingCapture:
    """A graph backend whose capture fails as a real one does on an op it cannot hold."""

    def side_stream(self):
        return contextlib.nullcontext()

    def capture(self, body):
        raise RuntimeError(f"{CAPTURE_ERROR}\n(a second line the record leaves out)")

    def replay(self, graph):
        raise AssertionError("a graph that failed to capture is never replayed")

    def synchronize(self):
        pass


def graphed_on_cpu(config, data=None):
    """A trainer that asked for ``--cuda-graph`` (``config``, device cuda), built on the CPU with
    a capture that fails: what a machine whose capture fails builds, less CUDA."""
    trainer = build_trainer(dataclasses.replace(config, device="cpu", cuda_graph=False), data=data)
    trainer.config, trainer.ran["cuda_graph"] = config, True
    trainer.step_graph = GraphedStep(trainer, backend=FailingCapture())
    return trainer


class FailsOnFirstCall(torch.nn.Module):
    """What ``torch.compile`` returns (the model kept as ``_orig_mod``), whose calls fail as a
    compilation that fails on the machine does."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model
        self.calls = 0

    def forward(self, inputs):
        self.calls += 1
        raise RuntimeError("CppCompileError: C++ compile error\ng++: not found")


@pytest.fixture
def refusing_adam(monkeypatch):
    """``refusing_adam("fused", ...)``: torch.optim.Adam refuses those keywords set True when
    built, as torch does for a device or dtype its fused kernel lacks (signature kept)."""
    real = torch.optim.Adam

    def install(*refused):
        class Adam(real):
            @functools.wraps(real.__init__)
            def __init__(self, params, *args, **kwargs):
                for keyword in refused:
                    if kwargs.get(keyword):
                        raise RuntimeError(f"`{keyword}=True` requires all the params to be "
                                           "floating point Tensors of supported devices")
                super().__init__(params, *args, **kwargs)

        monkeypatch.setattr(torch.optim, "Adam", Adam)

    return install


def _same_training(a, b):
    for p, q in zip(a.raw_model.parameters(), b.raw_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the engine --

def test_a_failed_capture_runs_the_eager_step_and_records_why(data):
    eager = build_trainer(cfg(epochs=1), data=data)
    graphed = graphed_on_cpu(cfg(device="cuda", cuda_graph=True, epochs=1), data=data)
    a, b = eager.train_epoch(), graphed.train_epoch()
    assert a.steps == b.steps == 5 and a.images == b.images == 80  # no batch lost or twice
    assert math.isclose(a.loss, b.loss, rel_tol=1e-5)
    _same_training(eager, graphed)
    assert graphed.step_graph is None and "capture_s" not in graphed.setup_s
    assert graphed.step_mode == {
        "asked": {"cuda_graph": True, "compile": "none", "optimizer_impl": "auto"},
        "ran": {"cuda_graph": False, "compile": "none", "optimizer_impl": "auto"},
        "fallbacks": [{"knob": "cuda_graph", "from": "cuda_graph", "to": "eager",
                       "why": f"RuntimeError: {CAPTURE_ERROR}"}]}


def test_torch_compile_failing_when_called_runs_uncompiled(data, monkeypatch):
    def refuse(model, **kwargs):
        raise RuntimeError("Dynamo is not supported on Python 3.99+")

    monkeypatch.setattr(torch, "compile", refuse)
    trainer = build_trainer(cfg(compile="default", epochs=1), data=data)
    assert trainer.model is trainer.raw_model
    assert trainer.train_epoch().images == 80 and trainer.setup_s == {}
    assert trainer.step_mode["ran"]["compile"] == "none"
    assert trainer.fallbacks == [{"knob": "compile", "from": "compile default", "to": "no compile",
                                  "why": "RuntimeError: Dynamo is not supported on Python 3.99+"}]


def test_a_failed_first_compiled_step_runs_the_batch_uncompiled(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: FailsOnFirstCall(model))
    eager = build_trainer(cfg(epochs=1), data=data)
    trainer = build_trainer(cfg(compile="default", epochs=1), data=data)
    compiled = trainer.model
    a, b = eager.train_epoch(), trainer.train_epoch()
    assert a.steps == b.steps == 5 and a.images == b.images == 80
    _same_training(eager, trainer)
    assert compiled.calls == 1 and trainer.model is trainer.raw_model
    assert "compile_s" not in trainer.setup_s  # no step compiled
    assert trainer.fallbacks == [{"knob": "compile", "from": "compile default", "to": "no compile",
                                  "why": "RuntimeError: CppCompileError: C++ compile error"}]


def test_an_error_that_is_not_the_compilers_still_stops_the_run(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: FailsOnFirstCall(model))
    trainer = build_trainer(cfg(compile="default"), data=data)

    def broken_loss(logits, targets):
        raise ValueError("the model's own bug")

    trainer.task.loss = broken_loss  # fails compiled or not: falling back cannot hide it
    with pytest.raises(ValueError, match="the model's own bug"):
        trainer.train_epoch()


@pytest.mark.slow
def test_a_real_compile_whose_backend_fails_runs_uncompiled(data, monkeypatch):
    """torch.compile itself, with a backend that fails as a missing compiler does: dynamo's
    BackendCompilerFailed, recorded by the backend's own error."""
    compile_ = torch.compile

    def no_compiler(gm, example_inputs):
        raise OSError("no C++ compiler found (CXX unset)")

    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, backend=no_compiler))
    trainer = build_trainer(cfg(compile="default", epochs=1), data=data)
    assert trainer.train_epoch().images == 80
    assert trainer.step_mode["ran"]["compile"] == "none" and trainer.setup_s == {}
    assert trainer.fallbacks[0]["why"] == "OSError: no C++ compiler found (CXX unset)"


class CompilesForever(torch.nn.Module):
    """What ``torch.compile`` returns, whose first call compiles far past any budget; it keeps
    how long its compile ran before something stopped it."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model
        self.calls = 0
        self.ran_s = None

    def forward(self, inputs):
        self.calls += 1
        start = time.perf_counter()
        try:
            self.compile()
        finally:
            self.ran_s = time.perf_counter() - start
        raise AssertionError("the budget's alarm never came")

    def compile(self):
        time.sleep(30)  # the alarm interrupts it


@contextlib.contextmanager
def _outer_alarm(seconds):
    """An alarm of someone else's (pytest-timeout's, say) pending around the block; yields
    its handler, and restores what was there before."""
    def outer(signum, frame):
        raise AssertionError("the outer alarm fired")

    before = signal.signal(signal.SIGALRM, outer)
    left = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield outer
    finally:
        signal.setitimer(signal.ITIMER_REAL, *left)
        signal.signal(signal.SIGALRM, before)


def test_a_compile_past_its_budget_is_skipped_the_run_goes_on_uncompiled(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: CompilesForever(model))
    eager = build_trainer(cfg(epochs=1), data=data)
    trainer = build_trainer(cfg(compile="max-autotune", compile_budget=0.2, epochs=1), data=data)
    compiled = trainer.model
    with _outer_alarm(100) as outer:
        a, b = eager.train_epoch(), trainer.train_epoch()
        assert compiled.calls == 1 and compiled.ran_s < 10  # stopped, not the 30 s compile
        # the outer alarm is back, with what it had left
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 70 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
    assert a.steps == b.steps == 5 and a.images == b.images == 80
    _same_training(eager, trainer)  # the interrupted step did not update the weights twice
    assert trainer.model is trainer.raw_model and "compile_s" not in trainer.setup_s
    assert trainer.fallbacks == [{
        "knob": "compile", "from": "compile max-autotune", "to": "no compile",
        "why": "CompileBudgetExceeded: compile max-autotune took over its budget of 0.2 s "
               "(--compile-budget): skipped, trained uncompiled"}]


class SwallowsErrors(CompilesForever):
    """A compile whose code catches ``Exception`` around its slow part (as autotuning does)."""

    def compile(self):
        try:
            time.sleep(30)
        except Exception:  # the budget's alarm is not an Exception: it is not swallowed here
            time.sleep(30)


def test_a_compile_that_catches_exception_is_still_stopped(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: SwallowsErrors(model))
    trainer = build_trainer(cfg(compile="default", compile_budget=0.2, epochs=1), data=data)
    compiled = trainer.model
    assert trainer.train_epoch().images == 80
    assert compiled.ran_s < 10
    assert trainer.fallbacks[0]["why"].startswith("CompileBudgetExceeded: compile default")


def test_the_alarm_is_disarmed_once_the_optimizer_steps(data, monkeypatch):
    """A compile that finished in time: the alarm is gone before the optimizer's step (a step
    interrupted there would update the weights twice), the outer alarm back."""
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: _Passthrough(model))
    trainer = build_trainer(cfg(compile="default", compile_budget=30, epochs=1), data=data)
    seen = []
    trainer.optimizer.register_step_post_hook(
        lambda *a: seen.append(signal.getsignal(signal.SIGALRM)))
    with _outer_alarm(100) as outer:
        assert trainer.train_epoch().images == 80
        assert signal.getsignal(signal.SIGALRM) is outer
    assert seen and all(handler is outer for handler in seen)
    assert trainer.fallbacks == [] and "compile_s" in trainer.setup_s


def test_a_compile_within_its_budget_keeps_its_compiled_step(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: _Passthrough(model))
    trainer = build_trainer(cfg(compile="default", compile_budget=30, epochs=1), data=data)
    assert trainer.train_epoch().images == 80
    assert trainer.fallbacks == [] and "compile_s" in trainer.setup_s


def test_a_negative_compile_budget_is_refused():
    with pytest.raises(ConfigError, match="--compile-budget -1"):
        cfg(compile="default", compile_budget=-1)


class _Passthrough(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self._orig_mod = model

    def forward(self, inputs):
        return self._orig_mod(inputs)


def test_a_refused_fused_optimizer_runs_foreach(data, refusing_adam):
    refusing_adam("fused")
    trainer = build_trainer(cfg(optimizer="adam", optimizer_impl="fused", epochs=1), data=data)
    assert trainer.optimizer.defaults["foreach"] is True and not trainer.optimizer.defaults["fused"]
    assert trainer.train_epoch().images == 80
    assert trainer.step_mode["ran"]["optimizer_impl"] == "foreach"
    assert trainer.fallbacks == [{
        "knob": "optimizer_impl", "from": "fused optimizer", "to": "foreach optimizer",
        "why": "RuntimeError: `fused=True` requires all the params to be floating point Tensors "
               "of supported devices"}]


def test_where_foreach_is_refused_too_the_default_runs(data, refusing_adam):
    refusing_adam("fused", "foreach")
    trainer = build_trainer(cfg(optimizer="adam", optimizer_impl="fused", epochs=1), data=data)
    assert not trainer.optimizer.defaults["foreach"] and not trainer.optimizer.defaults["fused"]
    assert [(f["from"], f["to"]) for f in trainer.fallbacks] == [
        ("fused optimizer", "foreach optimizer"), ("foreach optimizer", "torch's default optimizer")]
    assert trainer.step_mode["ran"]["optimizer_impl"] == "auto"
    assert trainer.train_epoch().images == 80


def test_an_optimizer_torch_refuses_in_every_implementation_is_an_error(data, refusing_adam):
    refusing_adam("lr")  # every implementation passes lr
    with pytest.raises(ConfigError, match="--optimizer adam --optimizer-impl auto: torch refused"):
        build_trainer(cfg(optimizer="adam", optimizer_impl="fused"), data=data)


# ------------------------------------------------ the suite, fer compare, fer train --

def _inject(kind, monkeypatch, refusing_adam):
    """The config of one step mode and its failure injected; the fallback it must record."""
    if kind == "capture":
        monkeypatch.setattr(harness, "build_trainer", graphed_on_cpu)
        return cfg(device="cuda", cuda_graph=True), ("cuda_graph", "cuda_graph", "eager")
    if kind == "compile":
        monkeypatch.setattr(torch, "compile", lambda model, **kwargs: FailsOnFirstCall(model))
        return cfg(compile="default"), ("compile", "compile default", "no compile")
    refusing_adam("fused")
    return cfg(optimizer="adam", optimizer_impl="fused"), \
        ("optimizer_impl", "fused optimizer", "foreach optimizer")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["capture", "compile", "fused"])
def test_each_failure_gives_a_finished_benchmark_recorded_printed_and_other_work(
        kind, data, monkeypatch, refusing_adam):
    config, (knob, came, went) = _inject(kind, monkeypatch, refusing_adam)
    bench = FakeBenchmark()
    records, summary = harness.benchmark_epochs(bench, config, data, experiment="step",
                                                group="step", params={"mode": kind},
                                                with_breakdown=False)
    assert len(records) == 2 and summary["median_wall_s"] > 0  # the benchmark finished
    step_mode = bench.extra_info["step_mode"]
    assert step_mode["asked"][knob] == getattr(config, knob) != step_mode["ran"][knob]
    [fallback] = step_mode["fallbacks"]
    assert (fallback["knob"], fallback["from"], fallback["to"]) == (knob, came, went)
    name = f"test_step[{kind}]"
    text = format_summary([{"name": name, "extra": bench.extra_info},
                           {"name": "test_step[eager]", "extra": {**bench.extra_info,
                                                                   "step_mode": None}}])
    [line] = [x for x in text.splitlines() if "fell back" in x]
    assert line.startswith(f"WARNING: {name} fell back") and f"{came} -> {went} (" in line
    # the run that fell back is other work beside one that ran the step it asked for
    stored = json.loads(json.dumps(bench.extra_info))  # as fer compare reads it back
    fell = Bench(name, name, "step", 1.0, None, stored)
    asked = dict(step_mode["asked"])
    ran_as_asked = Bench(name, name, "step", 1.0, None,
                         {**stored, "step_mode": {"asked": asked, "ran": asked, "fallbacks": []}})
    assert fell.identity[knob] == step_mode["ran"][knob]
    assert fell.differs_from(ran_as_asked) == [
        f"{knob} {asked[knob]} -> {step_mode['ran'][knob]} (fell back)"]
    assert fell.differs_from(fell) == []


def _with_step(path, ran_graph: bool):
    """A saved run whose benchmarks asked for --cuda-graph and ran it (or fell back to eager)."""
    payload = json.loads(path.read_text())
    for b in payload["benchmarks"]:
        asked = {"cuda_graph": True, "compile": "none", "optimizer_impl": "auto"}
        fallbacks = [] if ran_graph else [{"knob": "cuda_graph", "from": "cuda_graph",
                                           "to": "eager", "why": f"RuntimeError: {CAPTURE_ERROR}"}]
        b["extra_info"].update(plan={"model": "efficientnet_b0", **asked}, step_mode={
            "asked": asked, "ran": {**asked, "cuda_graph": ran_graph}, "fallbacks": fallbacks})
    path.write_text(json.dumps(payload))
    return path


def test_fer_compare_never_judges_a_fallen_back_run_as_the_step_it_asked_for(tmp_path):
    times = {"a": [1.0, 1.01, 0.99], "b": [2.0, 2.02, 1.98]}
    graphed = [_with_step(make_run(tmp_path / f"g{i}.json", times, when=f"2026-01-0{i + 1}T00:00:00"),
                          True) for i in range(2)]
    slow = {"a": [3.0, 3.03, 2.97], "b": [6.0, 6.06, 5.94]}  # eager: 3x slower, no regression
    fell = _with_step(make_run(tmp_path / "fell.json", slow, when="2026-01-05T00:00:00"), False)
    result = compare([load_run(p) for p in graphed], load_run(fell))
    assert result.rows == []
    assert any("2 benchmark(s) not compared: the baseline measured other work" in r
               and "cuda_graph True -> False (fell back)" in r for r in result.reasons())
    # two runs that fell back alike ran the same step: they are compared
    again = _with_step(make_run(tmp_path / "again.json", slow, when="2026-01-06T00:00:00"), False)
    assert [r.fullname for r in compare(load_run(fell), load_run(again)).rows] == ["t.py::a", "t.py::b"]


@pytest.mark.parametrize("kind", ["compile", "fused"])
def test_fer_train_warns_in_one_line(kind, tmp_path, capsys, monkeypatch, refusing_adam):
    from fer.cli import main

    config, (knob, came, went) = _inject(kind, monkeypatch, refusing_adam)
    out = tmp_path / "m.json"
    argv = ["train", "--synthetic-size", "120", "--model", "test_efficientnet", "--epochs", "1",
            "--device", "cpu", "--run-dir", "none", "--metrics-json", str(out),
            "--optimizer", config.optimizer, "--optimizer-impl", config.optimizer_impl,
            "--compile", config.compile]
    assert main(argv) == 0
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "fell back" in x]
    assert line.startswith(f"warning: {came} failed on this machine (RuntimeError: ")
    assert line.endswith(f"the run fell back to {went}")
    assert json.loads(out.read_text())["step_mode"]["fallbacks"][0]["knob"] == knob


# ------------------------------------------------------------------- GPU --

@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_a_real_capture_that_fails_falls_back_to_eager_on_a_gpu():
    """A host sync inside the step (a loss read on the host) cannot be captured: the run goes
    on eagerly, every batch trained once."""
    data = make_synthetic_faces(400, seed=0)  # 320 train: 20 steps of 16
    trainer = build_trainer(cfg(device="cuda", cuda_graph=True, synthetic_size=400), data=data)
    loss = trainer.task.loss

    def syncing_loss(logits, targets):
        value = loss(logits, targets)
        float(value)  # a host read: fine eagerly, not permitted while capturing
        return value

    trainer.task.loss = syncing_loss
    records = [trainer.train_epoch() for _ in range(2)]
    assert [r.images for r in records] == [320, 320] and all(math.isfinite(r.loss) for r in records)
    assert trainer.step_graph is None and trainer.step_mode["ran"]["cuda_graph"] is False
    assert trainer.fallbacks[0]["to"] == "eager"
