"""DistributedDataParallel under torchrun: time per epoch across world sizes.

Each benchmark round is one whole torchrun launch (process start, rendezvous,
data, and every epoch); the per-epoch records come back from rank 0's metrics
JSON. The weak-scaling efficiency against world size 1 is computed after the
run from the JSON (``fer.bench.derived``). On a CPU the processes use gloo
(sizes 1 and 2); on a GPU box NCCL, up to the GPU count — beside the
DataParallel runs of test_dataparallel.py at equal device counts.
"""

import json
import subprocess
import sys

import pytest

from fer.bench.records import EpochRecord
from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import extra_info, skip_reason

EXPERIMENT = EXPERIMENTS["ddp"]


@EXPERIMENT.parametrize()
def test_ddp(benchmark, perf_scale, params, tmp_path):
    reason = skip_reason(EXPERIMENT, params, perf_scale)
    if reason:
        pytest.skip(reason)
    world_size = params["world_size"]
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

    benchmark.group = EXPERIMENT.group(params)
    benchmark.pedantic(launch, rounds=1, iterations=1)
    payload = json.loads(metrics.read_text())
    records = [EpochRecord.from_dict(r) for r in payload["records"]]
    benchmark.extra_info.update(extra_info(
        experiment=EXPERIMENT.name, params={**params, "per_device_batch": perf_scale.batch_size},
        scale=perf_scale, records=records, config=payload["config"], plan=payload.get("plan"),
        device=perf_scale.device))
    assert payload["world_size"] == world_size
    assert len(records) == perf_scale.rounds + 1
    per_rank = perf_scale.train_images // world_size // perf_scale.batch_size
    assert all(r.images == per_rank * perf_scale.batch_size * world_size for r in records)
