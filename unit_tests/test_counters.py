"""fer.counters and the counters gate: exact counts per step, judged without noise."""

import pytest
import torch

from fer.bench.counts import describe, judge_counters, moved
from fer.bench.noise import IMPROVED, NOT_GATED, REGRESSED, UNCHANGED
from fer.bench.stats import GateOptions, compare
from fer.bench.storage import Bench, load_run
from fer.config import TrainConfig
from fer.counters import count_steps
from fer.data import make_synthetic_faces
from fer.engine import Trainer, build_trainer
from unit_tests.helpers import make_run


def _trainer(device="cpu"):
    data = make_synthetic_faces(96, seed=0)
    trainer = build_trainer(TrainConfig(model="test_efficientnet", device=device, batch_size=16,
                                        synthetic_size=96), data=data)
    trainer.train_epoch()
    return trainer


def _plant(monkeypatch, extra):
    step = Trainer._train_step

    def planted(self, inputs, targets, sums):
        step(self, inputs, targets, sums)
        extra(inputs)

    monkeypatch.setattr(Trainer, "_train_step", planted)


@pytest.fixture(scope="module")
def counted():
    return count_steps(_trainer())


def test_a_cpu_step_is_counted_exactly(counted):
    per_step = counted["per_step"]
    assert counted["steps"] == 4 and counted["device"] == "cpu"
    assert per_step["aten_ops"] > 100 and per_step["allocations"] > 0
    assert per_step["allocated_bytes"] > 0
    # deterministic: the two windows (the same schedule: a new pass over the data inside
    # them is counted in both) agree to the count
    assert set(counted["variation"].values()) == {0.0}
    assert sum(counted["ops"].values()) == per_step["aten_ops"]
    assert counted["ops"]["convolution"] == counted["ops"]["convolution_backward"]
    assert "h2d_copies" not in per_step  # CUDA only


def _bench(counters, name="x"):
    return Bench(f"t::{name}", name, "g", 1.0, None, {"counters": counters})


def test_a_planted_op_and_a_host_read_are_named(monkeypatch, counted):
    _plant(monkeypatch, lambda inputs: inputs.sum().item())  # one more op, one host read
    planted = count_steps(_trainer())
    assert planted["per_step"]["aten_ops"] == counted["per_step"]["aten_ops"] + 2
    assert planted["per_step"]["syncs"] == counted["per_step"]["syncs"] + 1
    new, old = _bench(planted), _bench(counted)
    judged = judge_counters(new, [old])
    assert judged.verdict == REGRESSED
    assert "aten::sum" in judged.detail and "aten::_local_scalar_dense" in judged.detail
    assert "syncs/step" in judged.detail
    assert judge_counters(old, [new]).verdict == IMPROVED  # swapping the sides mirrors
    assert judge_counters(old, [_bench(counted)]).verdict == UNCHANGED


def _counters(ops: float, variation: float = 0.0, **more):
    per_step = {"aten_ops": ops, "syncs": 0.0, **more}
    return {"steps": 4, "per_step": per_step,
            "variation": {k: variation if k == "aten_ops" else 0.0 for k in per_step},
            "ops": {"add": ops}}


@pytest.mark.parametrize("base, new, variation, verdict", [
    (412, 412, 0, UNCHANGED),
    (412, 413, 0, REGRESSED),  # one op more: a regression, however small in time
    (412, 413, 1, UNCHANGED),  # within the variation measured for the counter
    (412, 411, 0, IMPROVED),
])
def test_the_counters_gate(base, new, variation, verdict):
    judged = judge_counters(_bench(_counters(new, variation)), [_bench(_counters(base))])
    assert judged.verdict == verdict


def test_the_spread_of_the_baseline_runs_is_variation_too():
    olds = [_bench(_counters(410)), _bench(_counters(414))]
    assert judge_counters(_bench(_counters(414)), olds).verdict == UNCHANGED
    assert judge_counters(_bench(_counters(419)), olds).verdict == REGRESSED


def test_kernels_and_mallocs_are_shown_not_gated():
    old = _bench(_counters(412, cuda_mallocs=0.0))
    new = _bench(_counters(412, cuda_mallocs=2.0))
    assert judge_counters(new, [old]).verdict == UNCHANGED
    assert describe(new, [old]) == "cudaMalloc/step 0 -> 2"
    assert [m.gated for m in moved(new.counters, [old.counters])] == [False]


def test_no_counters_is_not_gated():
    assert judge_counters(Bench("t::x", "x", "g", 1.0, None, {}), [_bench(_counters(1))]
                          ).verdict == NOT_GATED
    broken = Bench("t::x", "x", "g", 1.0, None, {"counters": {"per_step": "many"}})
    assert broken.counters is None


def test_compare_gates_a_count_the_clock_cannot_see(tmp_path, capsys):
    """Times equal, one op more per step: regressed by the counters, named in the why."""
    times = {"a": [1.0, 1.01, 0.99], "b": [2.0, 2.02, 1.98]}
    base = make_run(tmp_path / "base.json", times,
                    counters={"a": _counters(412), "b": _counters(900)})
    new = make_run(tmp_path / "new.json", times,
                   counters={"a": {**_counters(413), "ops": {"add": 412, "_local_scalar_dense": 1}},
                             "b": _counters(900)})
    result = compare(load_run(base), load_run(new))
    rows = {r.fullname: r for r in result.rows}
    assert rows["t.py::a"].verdict == REGRESSED and rows["t.py::b"].verdict != REGRESSED
    assert rows["t.py::b"].judgements["counters"].verdict == UNCHANGED
    assert rows["t.py::a"].time.verdict != REGRESSED
    assert rows["t.py::a"].explanation.startswith(
        "aten ops/step 412 -> 413 (+1: aten::_local_scalar_dense)")
    only_time = compare(load_run(base), load_run(new), GateOptions(gate_on=("time",)))
    assert REGRESSED not in {r.verdict for r in only_time.rows}
    from fer.cli import main

    assert main(["compare", str(base), str(new), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "aten::_local_scalar_dense" in out and "counts" in out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_counters_see_a_sync_and_copies(monkeypatch):
    base = count_steps(_trainer("cuda"))
    per_step = base["per_step"]
    assert per_step["h2d_copies"] >= 2  # the batch's inputs and targets
    assert per_step["cuda_mallocs"] >= 0 and per_step["peak_allocated"] > 0
    _plant(monkeypatch, lambda inputs: inputs.sum().item())
    planted = count_steps(_trainer("cuda"))["per_step"]
    assert planted["syncs"] >= per_step["syncs"] + 1
    assert planted["d2h_copies"] >= per_step["d2h_copies"]
    assert planted["aten_ops"] == per_step["aten_ops"] + 2
