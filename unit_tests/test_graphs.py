"""--cuda-graph: the graphed step trains exactly as the eager one.

On a CPU the capture itself cannot run, so a stand-in backend keeps the captured
function and calls it on each replay, with the gradients set to None first (what
a graph captured after ``zero_grad(set_to_none=True)`` does: its backward writes
fresh gradients). That exercises everything of :mod:`fer.graphs` except CUDA:
the warm-up steps, the static buffers, the device accumulators drained once per
epoch, the eager fallback for a batch of another shape. On a GPU the real
capture is compared with the eager step (fp32, bf16, fp16 with its GradScaler).
"""

import contextlib
import math

import pytest
import torch

from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import build_trainer
from fer.errors import ConfigError
from fer.graphs import WARMUP_STEPS, GraphedStep

CUDA = torch.cuda.is_available()


class ReplayingBackend:
    """Capture keeps the body; replay runs it, after setting the gradients to None."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.captures = 0

    def side_stream(self):
        return contextlib.nullcontext()

    def capture(self, body):
        self.captures += 1
        return body  # capture records, it does not run

    def replay(self, body) -> None:
        self.trainer.optimizer.zero_grad(set_to_none=True)
        body()

    def synchronize(self) -> None:
        pass


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(400, seed=3)  # 320 train: 10 steps of 32


def cfg(**kw):
    base = dict(model="test_efficientnet", device="cpu", epochs=2, batch_size=32,
                synthetic_size=400, run_dir="none")
    base.update(kw)
    return TrainConfig(**base)


def _params(trainer):
    return [p.detach().clone() for p in trainer.raw_model.parameters()]


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_the_graphed_step_trains_like_the_eager_step(data, optimizer):
    eager = build_trainer(cfg(optimizer=optimizer), data=data)
    graphed = build_trainer(cfg(optimizer=optimizer), data=data)
    graphed.step_graph = GraphedStep(graphed, backend=ReplayingBackend(graphed))
    for _ in range(2):
        a, b = eager.train_epoch(), graphed.train_epoch()
        assert a.steps == b.steps == 10 and a.images == b.images == 320
        assert math.isclose(a.loss, b.loss, rel_tol=1e-5)
        assert math.isclose(a.train_acc, b.train_acc)
    for p, q in zip(_params(eager), _params(graphed)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    g = graphed.step_graph
    assert g.warmed == WARMUP_STEPS and g.replays == 20 - WARMUP_STEPS and g.eager_steps == 0
    assert g.backend.captures == 1 and graphed.setup_s["capture_s"] >= 0
    assert graphed.setup_s["graph_warmup_s"] >= 0
    # the accumulators were read and zeroed at each epoch's end
    assert float(g.acc_loss) == 0 and int(g.acc_trials) == 0


def test_a_batch_of_another_shape_runs_eagerly(data):
    trainer = build_trainer(cfg(epochs=1), data=data)
    trainer.step_graph = GraphedStep(trainer, backend=ReplayingBackend(trainer))
    trainer.train_epoch()
    from fer.engine import _Sums

    sums = _Sums(trainer.device)
    x, y = next(iter(trainer.train_loader))
    trainer.step_graph(x[:5], y[:5], sums)  # a last partial batch
    assert trainer.step_graph.eager_steps == 1 and sums.images == 5 and sums.steps == 1
    assert float(sums.loss) > 0  # summed by the eager step, not lost


def test_a_checkpoint_cannot_be_loaded_under_a_captured_graph(data, tmp_path):
    from fer.engine import TrainingError

    trainer = build_trainer(cfg(epochs=1), data=data)
    trainer.step_graph = GraphedStep(trainer, backend=ReplayingBackend(trainer))
    trainer.train_epoch()
    trainer.save_checkpoint(tmp_path / "last.pt")
    with pytest.raises(TrainingError, match="already captured in a CUDA graph"):
        trainer.load_checkpoint(tmp_path / "last.pt")


def test_host_step_time_is_recorded(data):
    r = build_trainer(cfg(epochs=1), data=data).train_epoch()
    assert 0 < r.host_step_s <= r.wall_s


@pytest.mark.parametrize("changes,match", [
    (dict(device="cpu"), "needs a CUDA device"),
    (dict(device="cuda", parallel="dp"), "cannot capture --parallel dp"),
    (dict(device="cuda", scheduler="cosine"), "fixed learning rate"),
    (dict(device="cuda", optimizer="adagrad"), "--optimizer adagrad"),
    (dict(device="cuda", compile="reduce-overhead"), "reduce-overhead"),
    (dict(device="cuda", compile="max-autotune"), "max-autotune"),
])
def test_what_cannot_be_captured_is_refused(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(cuda_graph=True, **changes)


@pytest.mark.skipif(CUDA, reason="checks a machine without CUDA")
def test_device_auto_without_cuda_refuses_a_graph(data):
    with pytest.raises(ConfigError, match="--cuda-graph needs a CUDA device; --device auto"):
        build_trainer(cfg(device="auto", cuda_graph=True), data=data)


def test_the_cli_refuses_a_cpu_graph_with_exit_2(capsys):
    from fer.cli import main

    assert main(["train", "--device", "cpu", "--cuda-graph", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--cuda-graph needs a CUDA device" in err and "Traceback" not in err


# ------------------------------------------------------------------- GPU --

@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("amp_bf16", 2e-2), ("amp_fp16", 1e-2)])
def test_cuda_graph_matches_eager_on_a_gpu(precision, tol):
    from fer.optim import create_optimizer

    data = make_synthetic_faces(1200, seed=0)  # 960 train: 15 steps of 64
    base = dict(model="efficientnet_b0", device="cuda", epochs=2, batch_size=64,
                synthetic_size=1200, precision=precision, run_dir="none")
    torch.backends.cudnn.deterministic = True
    try:
        eager = build_trainer(TrainConfig(**base), data=data)
        # the same capturable Adam on both sides: the graph is the only difference
        eager.optimizer = create_optimizer(eager.raw_model, "adam", lr=eager.lr, capturable=True)
        graphed = build_trainer(TrainConfig(**base, cuda_graph=True), data=data)
        for _ in range(2):
            a, b = eager.train_epoch(), graphed.train_epoch()
            assert a.images == b.images
            assert math.isclose(a.loss, b.loss, rel_tol=tol), (a.loss, b.loss)
        assert graphed.step_graph.replays == 30 - WARMUP_STEPS
        assert graphed.setup_s["capture_s"] > 0
    finally:
        torch.backends.cudnn.deterministic = False


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("impl,compile_mode,precision,workers", [
    ("fused", "none", "fp32", 2),  # fused capturable Adam; the DataLoader's pin thread
    ("foreach", "default", "amp_bf16", 0),  # a compiled model under autocast, captured
])
def test_fused_compiled_and_loader_graphs_train_on_a_gpu(impl, compile_mode, precision, workers):
    data = make_synthetic_faces(800, seed=0)
    config = TrainConfig(model="efficientnet_b0", device="cuda", epochs=1, batch_size=64,
                         synthetic_size=800, optimizer_impl=impl, compile=compile_mode,
                         precision=precision, num_workers=workers, cuda_graph=True,
                         run_dir="none")
    trainer = build_trainer(config, data=data)
    r = trainer.train_epoch()
    assert math.isfinite(r.loss) and trainer.step_graph.replays > 0
    assert trainer.setup_s["capture_s"] > 0
    if compile_mode != "none":
        assert trainer.setup_s["compile_s"] > 0
