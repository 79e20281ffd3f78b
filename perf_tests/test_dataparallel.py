"""DataParallel: time per epoch across device counts and per-device batch sizes.

Scaling efficiency (weak scaling: the per-device batch is fixed) is
throughput(N devices) / (N x throughput(1 device)), against the 1-device run of
the same per-device batch measured in this session. The study found it never
ideal, best at a per-device batch of 64.
"""

import pytest

from fer.metrics import weak_scaling_efficiency
from fer.perf import base_config, benchmark_epochs
from fer.pytest_plugin import skip_unless_devices

DEVICE_COUNTS = [1, 2, 4, 8]
PER_DEVICE_BATCH = [32, 64, 128]

_one_device_images_per_s: dict[int, float] = {}


@pytest.mark.gpu
@pytest.mark.parametrize("per_device_batch", PER_DEVICE_BATCH)
@pytest.mark.parametrize("devices", DEVICE_COUNTS)
def test_dataparallel(benchmark, perf_scale, perf_data, devices, per_device_batch):
    skip_unless_devices(devices)
    config = base_config(perf_scale, parallel="dp", devices=devices, batch_size=per_device_batch)
    records, summary = benchmark_epochs(
        benchmark, config, perf_data, group=f"dataparallel-b{per_device_batch}", scale=perf_scale,
        extra={"devices": devices, "per_device_batch": per_device_batch})
    throughput = summary["median_images_per_s"]
    if devices == 1:
        _one_device_images_per_s[per_device_batch] = throughput
    baseline = _one_device_images_per_s.get(per_device_batch)
    if baseline:
        efficiency = weak_scaling_efficiency(baseline, throughput, devices)
        benchmark.extra_info["scaling_efficiency"] = efficiency
        assert efficiency > 0
