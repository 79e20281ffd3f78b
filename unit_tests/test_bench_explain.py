"""`fer compare` explains: real changes of a known kind, injected into real (tiny) runs,
are named by the explanation of the benchmark they slowed."""

import json
import statistics
from pathlib import Path

import pytest
import torch

from fer.bench.explain import explain
from fer.bench.stats import REGRESSED, compare
from fer.bench.storage import load_run
from fer.data import make_synthetic_faces
from fer.suite.harness import base_config, benchmark_epochs
from fer.suite.scales import resolve_scale

FIXTURES = Path(__file__).parent / "fixtures" / "history"


class _Benchmark:
    """pytest-benchmark's fixture, reduced to what the harness uses."""

    def __init__(self):
        self.group, self.extra_info, self.rounds = None, {}, []

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        import time

        for i in range(warmup_rounds + rounds):
            if setup:
                setup()
            start = time.perf_counter()
            target()
            if i >= warmup_rounds:
                self.rounds.append(time.perf_counter() - start)


def _record(path: Path, data) -> Path:
    scale = resolve_scale("smoke", cuda=False, rounds=2)
    config = base_config(scale, synthetic_size=len(data), batch_size=50, device="cpu",
                         optimizer="adam")
    bench = _Benchmark()
    benchmark_epochs(bench, config, data, experiment="explain", group="explain", scale=scale)
    machine = json.loads((FIXTURES / "base.json").read_text())["machine_info"]
    when = f"2026-01-0{path.stem[0]}T00:00:00"  # runs are ordered by their time
    payload = {"machine_info": machine, "commit_info": {}, "datetime": when,
               "version": "5.2.3", "benchmarks": [{
                   "name": "test_step", "fullname": "t.py::test_step", "group": "explain",
                   "stats": {"median": statistics.median(bench.rounds), "data": bench.rounds,
                             "rounds": len(bench.rounds), "min": min(bench.rounds),
                             "max": max(bench.rounds), "mean": statistics.fmean(bench.rounds)},
                   "extra_info": bench.extra_info}]}
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain")
    data = make_synthetic_faces(500, seed=0)  # 400 training images: 8 steps an epoch
    out = {"base": _record(tmp / "1-base.json", data)}
    mp = pytest.MonkeyPatch()

    # 1. an optimizer-side cost: every Adam step does extra per-parameter work
    adam_step = torch.optim.Adam.step

    def heavier_step(self, *args, **kwargs):
        result = adam_step(self, *args, **kwargs)
        params = [p for g in self.param_groups for p in g["params"]]
        with torch.no_grad():
            for _ in range(60):
                torch._foreach_mul_(params, 1.0)
        return result

    mp.setattr(torch.optim.Adam, "step", heavier_step)
    out["optimizer"] = _record(tmp / "2-optimizer.json", data)
    mp.undo()

    # 2. extra elementwise ops in the model's forward (and so in its backward)
    from fer import models

    build = models.build_model

    def with_extra_ops(*args, **kwargs):
        model = build(*args, **kwargs)

        def hook(module, inputs, output):
            for _ in range(6):
                output = output * 1.0001 + 0.0
            return output

        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(hook)
        return model

    mp.setattr(models, "build_model", with_extra_ops)
    out["elementwise"] = _record(tmp / "3-elementwise.json", data)
    mp.undo()

    # 3. a slower loader: every batch arrives 30 ms late
    from fer.data.loaders import DeviceLoader

    iterate = DeviceLoader.__iter__

    def slow_iter(self):
        import time

        for batch in iterate(self):
            time.sleep(0.03)
            yield batch

    mp.setattr(DeviceLoader, "__iter__", slow_iter)
    out["loader"] = _record(tmp / "4-loader.json", data)
    mp.undo()
    return {k: load_run(v) for k, v in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize("change,named,counted", [
    ("optimizer", "optimizer +", "aten::_foreach_mul_"),
    ("elementwise", "elementwise +", "aten::mul"),
    ("loader", "data wait", None),
])
def test_the_explanation_names_the_change(runs, change, named, counted):
    name = "t.py::test_step"
    text = explain(runs[change].benchmarks[name], [runs["base"].benchmarks[name]])
    assert text, text
    if counted:  # the exact counts lead and name the operators, whatever the machine does
        assert text.startswith("aten ops/step") and counted in text.split(";")[0], text
    else:  # a few profiled CPU steps on a busy machine are noisy: the time part may not name
        assert named in text, text  # a category; the data wait is measured over the epochs


def test_compare_attaches_the_explanation_to_what_moved(tmp_path):
    """A regressed benchmark carries its why; an unchanged one does not."""
    from unit_tests.helpers import make_run

    fast = {"convolution": 20.0, "optimizer": 2.0, "elementwise": 1.0}
    history = [load_run(make_run(tmp_path / f"h{i}.json", {"a": [1.0 * w] * 3, "b": [2.0 * w] * 3},
                                 when=f"2026-01-0{i + 1}", breakdown=fast))
               for i, w in enumerate((1.0, 1.01, 0.99, 1.005))]
    slower = load_run(make_run(tmp_path / "new.json", {"a": [1.4] * 3, "b": [2.0] * 3},
                               when="2026-02-01", breakdown=dict(fast, optimizer=14.0)))
    rows = {r.fullname: r for r in compare(history, slower).rows}
    assert rows["t.py::a"].verdict == REGRESSED
    assert rows["t.py::a"].explanation.startswith("+12.0 ms/step: optimizer +12.0")
    assert rows["t.py::b"].explanation is None


@pytest.mark.slow
def test_breakdown_is_stored_and_cheap(runs):
    extra = runs["base"].benchmarks["t.py::test_step"].extra_info
    b = extra["step_breakdown"]
    assert set(b["ms_per_step"]) >= {"convolution", "optimizer", "elementwise"}
    assert b["ops_per_step"] > 0 and b["kernels_per_step"] is None  # no kernels on a CPU
    epochs_s = sum(r["wall_s"] for r in extra["records"])
    assert b["cost_s"] < epochs_s  # profiling a few steps costs less than the timed epochs
