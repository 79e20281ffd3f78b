"""DistributedDataParallel under torchrun: time per epoch across world sizes.

Each benchmark round is one whole torchrun launch (process start, rendezvous,
data, and every epoch); the per-epoch records come back from rank 0's metrics
JSON, and their medians (warm-up epoch excluded) give the weak-scaling
efficiency against world size 1 of this session. On a CPU the processes use
gloo (sizes 1 and 2); on a GPU box NCCL, up to the GPU count — beside the
DataParallel runs of test_dataparallel.py at equal device counts.
"""

import json
import os
import subprocess
import sys

import pytest

from fer.engine import EpochRecord
from fer.metrics import weak_scaling_efficiency
from fer.perf import summarize
from fer.pytest_plugin import cuda_device_count

WORLD_SIZES = [1, 2, 4, 8]
_world1_images_per_s: dict[str, float] = {}


@pytest.mark.distributed
@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_ddp(benchmark, perf_scale, world_size, tmp_path):
    gpus = cuda_device_count()
    if perf_scale.device == "cuda" and world_size > gpus:
        pytest.skip(f"needs {world_size} CUDA devices; this machine has {gpus}")
    if perf_scale.device == "cpu" and world_size > min(2, os.cpu_count() or 1):
        pytest.skip(f"on a CPU, gloo world sizes stop at 2 (this machine has "
                    f"{os.cpu_count()} CPUs); run on a GPU box for more")
    metrics = tmp_path / "metrics.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={world_size}", "-m", "fer", "train", "--parallel", "ddp",
           "--device", perf_scale.device, "--model", perf_scale.model,
           "--synthetic-size", str(perf_scale.synthetic_size), "--epochs",
           str(perf_scale.rounds + 1), "--batch-size", str(perf_scale.batch_size),
           "--metrics-json", str(metrics)]

    def launch():
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stderr[-4000:]

    benchmark.group = "ddp"
    benchmark.pedantic(launch, rounds=1, iterations=1)
    payload = json.loads(metrics.read_text())
    records = [EpochRecord.from_dict(r) for r in payload["records"]]
    summary = summarize(records)
    rate = summary["median_images_per_s"]
    if world_size == 1:
        _world1_images_per_s[perf_scale.device] = rate
    base = _world1_images_per_s.get(perf_scale.device)
    benchmark.extra_info.update({
        "experiment": "ddp", "world_size": world_size, "device": perf_scale.device,
        "per_device_batch": perf_scale.batch_size, "config": payload["config"],
        "records": payload["records"], "summary": summary,
        "scaling_efficiency": weak_scaling_efficiency(base, rate, world_size) if base else None,
    })
    assert payload["world_size"] == world_size
    assert len(records) == perf_scale.rounds + 1
    per_rank = perf_scale.train_images // world_size // perf_scale.batch_size
    assert all(r.images == per_rank * perf_scale.batch_size * world_size for r in records)
