"""DistributedDataParallel under torchrun: time per epoch across world sizes.

One torchrun launch per world size trains a warm-up and ``rounds`` epochs; the
epochs are timed inside the ranks by the engine (the slowest rank's wall time,
all-reduced) and handed to pytest-benchmark as the benchmark's rounds, so the
benchmark's median, ``fer compare`` and the gate see epochs like every other
benchmark — not the launch (process start, imports, data), which is recorded
apart as ``launch_s``. The weak-scaling efficiency against world size 1 is
computed after the run from the JSON (``fer.bench.derived``). On a CPU the
processes use gloo (sizes 1 and 2); on a GPU box NCCL, up to the GPU count.
"""

import json
import statistics
import subprocess
import sys
import time

import pytest

from fer.records import EpochRecord
from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import extra_info, replay_epochs, skip_reason

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
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    launch_s = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-4000:]
    payload = json.loads(metrics.read_text())
    records = [EpochRecord.from_dict(r) for r in payload["records"]]
    timed = [r.wall_s for r in records[1:]]  # the first epoch is the warm-up

    benchmark.group = EXPERIMENT.group(params)
    replay_epochs(benchmark, timed)
    benchmark.extra_info.update(extra_info(
        experiment=EXPERIMENT.name, params={**params, "per_device_batch": perf_scale.batch_size},
        scale=perf_scale, records=records, config=payload["config"], plan=payload.get("plan"),
        device=perf_scale.device, launch_s=launch_s))
    assert payload["world_size"] == world_size
    assert len(records) == perf_scale.rounds + 1
    per_rank = perf_scale.train_images // world_size // perf_scale.batch_size
    assert all(r.images == per_rank * perf_scale.batch_size * world_size for r in records)
    # the benchmark's rounds are the ranks' epochs, not the launch
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        assert stats.median == pytest.approx(statistics.median(timed), rel=1e-9)
        assert stats.rounds == perf_scale.rounds and launch_s > sum(timed)
