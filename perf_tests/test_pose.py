"""The second workload, HRNet body pose: batch size and DataParallel device counts.

The study ran its DataParallel experiments on HRNet pose estimation: more GPUs
and larger batches cut time per epoch, scaling was never ideal. Accuracy here
is PCK@0.2 on synthetic stick figures.
"""

import pytest

from fer.metrics import weak_scaling_efficiency
from fer.perf import benchmark_epochs, pose_config
from fer.pytest_plugin import skip_unless_devices

_one_device: dict[int, float] = {}


@pytest.mark.parametrize("batch_size", [16, 32, 64])
def test_pose_batch_size(benchmark, perf_scale, perf_pose_data, batch_size):
    config = pose_config(perf_scale, batch_size=batch_size)
    records, summary = benchmark_epochs(benchmark, config, perf_pose_data, group="pose_batch_size",
                                        scale=perf_scale, extra={"batch_size": batch_size,
                                                                 "task": "pose"})
    benchmark.extra_info["convergence"] = {"val_pck": [r.val_acc for r in records]}
    assert all(0 <= r.train_acc <= 1 for r in records)


@pytest.mark.gpu
@pytest.mark.parametrize("per_device_batch", [16, 32, 64])
@pytest.mark.parametrize("devices", [1, 2, 4, 8])
def test_pose_dataparallel(benchmark, perf_scale, perf_pose_data, devices, per_device_batch):
    skip_unless_devices(devices)
    config = pose_config(perf_scale, parallel="dp", devices=devices, batch_size=per_device_batch)
    records, summary = benchmark_epochs(
        benchmark, config, perf_pose_data, group=f"pose-dataparallel-b{per_device_batch}",
        scale=perf_scale, extra={"devices": devices, "per_device_batch": per_device_batch,
                                 "task": "pose"})
    rate = summary["median_images_per_s"]
    if devices == 1:
        _one_device[per_device_batch] = rate
    if _one_device.get(per_device_batch):
        benchmark.extra_info["scaling_efficiency"] = weak_scaling_efficiency(
            _one_device[per_device_batch], rate, devices)
