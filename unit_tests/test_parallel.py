"""DataParallel and DDP: real 2-process gloo runs through torchrun, on CPU."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import build_trainer
from fer.errors import ConfigError

WORKER = Path(__file__).parent / "scripts" / "ddp_worker.py"


def torchrun(*args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.distributed
@pytest.mark.slow
def test_ddp_two_ranks_end_with_identical_weights(tmp_path):
    result = torchrun(WORKER, tmp_path, "train")
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # gradients are all-reduced, so every parameter is bit-identical on both ranks
    # (BatchNorm running stats are rank-local between DDP's buffer broadcasts)
    assert rank0["params"].keys() == rank1["params"].keys()
    assert all(torch.equal(rank0["params"][k], rank1["params"][k]) for k in rank0["params"])
    # metrics are all-reduced: both ranks report the global epoch
    # (each rank's own step and host times are local: the step clock is not all-reduced)
    local = {"step_s", "host_step_s"}
    assert ({k: v for k, v in rank0["record"].items() if k not in local}
            == {k: v for k, v in rank1["record"].items() if k not in local})
    assert rank0["record"]["images"] == 320  # 160 per rank, 10 steps of 16 each


@pytest.mark.distributed
@pytest.mark.slow
def test_a_crashing_rank_fails_the_run_without_hanging(tmp_path):
    start = time.monotonic()
    result = torchrun(WORKER, tmp_path, "crash", timeout=180)
    assert result.returncode != 0
    assert time.monotonic() - start < 150
    assert not (tmp_path / "rank0.pt").exists()


@pytest.mark.distributed
@pytest.mark.slow
def test_fer_train_under_torchrun_writes_once(tmp_path):
    metrics = tmp_path / "m.json"
    result = torchrun("-m", "fer", "train", "--parallel", "ddp", "--device", "cpu",
                      "--model", "test_efficientnet", "--synthetic-size", "400", "--epochs", "1",
                      "--batch-size", "16", "--metrics-json", metrics)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(metrics.read_text())
    assert payload["world_size"] == 2 and payload["records"][0]["images"] == 320
    assert result.stdout.count("final validation accuracy") == 1  # rank 0 alone prints


def test_dp_without_gpus_explains():
    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only message")
    with pytest.raises(ConfigError, match="--parallel dp needs CUDA GPUs"):
        build_trainer(TrainConfig(model="test_efficientnet", device="cpu", parallel="dp", epochs=1),
                data=make_synthetic_faces(100))


def test_ddp_without_torchrun_explains(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node"):
        build_trainer(TrainConfig(model="test_efficientnet", device="cpu", parallel="ddp", epochs=1),
                data=make_synthetic_faces(100))


def test_ddp_rejects_devices_flag():
    with pytest.raises(ConfigError, match="--nproc_per_node sets"):
        TrainConfig(parallel="ddp", devices=2)


def test_loader_shards_are_disjoint_and_cover():
    from fer.data import make_loader

    data = make_synthetic_faces(100, seed=0).split("train")  # 80
    for loader in ("device", "dataloader"):
        seen = []
        for rank in range(2):
            it = make_loader(data, batch_size=8, train=False, loader=loader, rank=rank,
                             world_size=2)
            seen.append(torch.cat([y for _, y in it]))
        assert len(seen[0]) + len(seen[1]) == 80
        train_counts = [len(make_loader(data, batch_size=8, train=True, loader=loader, rank=r,
                                        world_size=2)) for r in range(2)]
        assert train_counts == [5, 5]  # equal step counts on every rank
