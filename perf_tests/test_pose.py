"""The second workload, HRNet body pose: batch size and DataParallel device counts.

The study ran its DataParallel experiments on HRNet pose estimation: more GPUs
and larger batches cut time per epoch, scaling was never ideal. Accuracy here
is PCK@0.2 on synthetic stick figures.
"""

from fer.suite.experiments import EXPERIMENTS
from fer.suite.harness import run_point

BATCH = EXPERIMENTS["pose_batch_size"]
DATAPARALLEL = EXPERIMENTS["pose_dataparallel"]


@BATCH.parametrize()
def test_pose_batch_size(benchmark, perf_scale, perf_pose_data, params):
    records, summary = run_point(benchmark, BATCH, params, perf_scale, perf_pose_data)
    assert all(0 <= r.train_acc <= 1 for r in records)
    assert all(r.val_acc is not None for r in records)


@DATAPARALLEL.parametrize()
def test_pose_dataparallel(benchmark, perf_scale, perf_pose_data, params):
    records, summary = run_point(benchmark, DATAPARALLEL, params, perf_scale, perf_pose_data)
    assert summary["median_images_per_s"] > 0
