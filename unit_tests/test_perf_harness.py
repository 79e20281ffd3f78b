"""The perf harness: scales, record checks, out-of-memory skips."""

import pytest
import torch

from fer.data import make_synthetic_faces
from fer.engine import EpochRecord
from fer.perf import base_config, benchmark_epochs, check_records, resolve_scale


def _record(**kw):
    values = dict(epoch=0, images=64, steps=1, wall_s=1.0, data_wait_s=0.25, compute_s=0.75,
                  images_per_s=64.0, loss=1.0, train_acc=0.5, lr=0.1, peak_mem_bytes=1,
                  peak_mem_kind="process_peak_rss")
    values.update(kw)
    return EpochRecord(**values)


def test_scales():
    smoke = resolve_scale("smoke")
    assert smoke.model == "test_efficientnet" and smoke.rounds == 3
    full = resolve_scale("full", rounds=5)
    assert full.model == "efficientnet_b0" and full.synthetic_size == 35887 and full.rounds == 5
    assert full.train_images == 28709
    assert resolve_scale("auto").name == ("full" if torch.cuda.is_available() else "smoke")
    with pytest.raises(ValueError):
        resolve_scale("huge")
    with pytest.raises(ValueError):
        resolve_scale("smoke", rounds=0)


def test_check_records_catches_inconsistent_runs():
    check_records([_record()], expected_images=64, round_times=[1.01])
    with pytest.raises(AssertionError, match="images"):
        check_records([_record(images=32)], expected_images=64)
    with pytest.raises(AssertionError):
        check_records([_record(compute_s=0.1)], expected_images=64)  # parts do not sum
    with pytest.raises(AssertionError, match="round"):
        check_records([_record()], expected_images=64, round_times=[0.5])  # epoch > round
    with pytest.raises(AssertionError, match="under half"):
        check_records([_record()], expected_images=64, round_times=[3.0])


class _OOMBenchmark:
    group = None
    extra_info: dict = {}

    def pedantic(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_is_a_skip_with_the_reason():
    scale = resolve_scale("smoke")
    config = base_config(scale, device="cpu", batch_size=512, synthetic_size=200)
    with pytest.raises(pytest.skip.Exception, match="out of memory at batch 512"):
        benchmark_epochs(_OOMBenchmark(), config, make_synthetic_faces(200), group="batch_size")
