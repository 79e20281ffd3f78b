"""The perf harness: scales, record checks, out-of-memory skips."""

import pytest
import torch

from fer.data import make_synthetic_faces
from fer.records import EpochRecord
from fer.suite.experiments import EXPERIMENTS, Machine, point_id
from fer.suite.harness import base_config, benchmark_epochs, check_records, point_config
from fer.suite.scales import resolve_scale


def _record(**kw):
    values = dict(epoch=0, images=64, steps=1, wall_s=1.0, data_wait_s=0.25, compute_s=0.75,
                  images_per_s=64.0, loss=1.0, train_acc=0.5, lr=0.1, peak_mem_bytes=1,
                  peak_mem_kind="process_peak_rss")
    values.update(kw)
    return EpochRecord(**values)


def test_scales():
    smoke = resolve_scale("smoke", cuda=False)
    assert smoke.model == "test_efficientnet" and smoke.rounds == 3 and smoke.device == "cpu"
    full = resolve_scale("full", cuda=True, rounds=5)
    assert full.model == "efficientnet_b0" and full.synthetic_size == 35887 and full.rounds == 5
    assert full.train_images == 28709
    assert resolve_scale("auto", cuda=True).name == "full"
    assert resolve_scale("auto", cuda=False).name == "smoke"
    with pytest.raises(ValueError):
        resolve_scale("huge", cuda=False)
    with pytest.raises(ValueError):
        resolve_scale("smoke", cuda=False, rounds=0)


def test_the_study_scale_and_the_fastest_honest_step():
    study = resolve_scale("study", cuda=True)
    config = base_config(study)
    assert (config.image_size, config.channels, config.loader, config.num_workers) == \
        (224, 3, "dataloader", 8)
    assert config.max_steps_per_epoch == 6400 // 64 and study.train_images == 6400
    assert not config.cuda_graph  # only experiments not about the step take the graphed step
    assert base_config(study, fast_step=True).cuda_graph
    pose = base_config(study, "pose")
    assert (pose.image_size, pose.channels, pose.loader) == (48, 1, "device")
    # on a CPU, or with --perf-step eager, nothing is graphed
    assert not base_config(resolve_scale("full", cuda=False), fast_step=True).cuda_graph
    assert not resolve_scale("full", cuda=True, eager=True).graph_step
    precision = point_config(EXPERIMENTS["precision"], {"precision": "amp_bf16",
                                                       "channels_last": True}, study)
    assert precision.cuda_graph and precision.max_steps_per_epoch == 100
    optimizer = point_config(EXPERIMENTS["optimizer"], {"optimizer": "rmsprop"}, study)
    assert not optimizer.cuda_graph  # the optimizer experiment compares eager steps
    step = EXPERIMENTS["step"]
    full = resolve_scale("full", cuda=True)
    eager = point_config(step, {"mode": "eager", "precision": "fp32"}, full)
    graph = point_config(step, {"mode": "compile+graph", "precision": "amp_bf16"}, full)
    assert not eager.cuda_graph and eager.max_steps_per_epoch == 200  # the mode decides
    assert graph.cuda_graph and graph.compile == "default" and graph.precision == "amp_bf16"
    assert point_config(step, {"mode": "fused", "precision": "fp32"},
                        SMOKE).max_steps_per_epoch is None


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
    scale = resolve_scale("smoke", cuda=False)
    config = base_config(scale, device="cpu", batch_size=512, synthetic_size=200)
    with pytest.raises(pytest.skip.Exception, match="out of memory at batch 512"):
        benchmark_epochs(_OOMBenchmark(), config, make_synthetic_faces(200),
                         experiment="batch_size", group="batch_size")


# ------------------------------------------------------------ registry --

SMOKE = resolve_scale("smoke", cuda=False)


def test_every_experiment_is_complete():
    for name, e in EXPERIMENTS.items():
        assert e.name == name and e.title and e.finding and e.grid
        ids = e.ids()
        assert len(set(ids)) == len(ids), f"{name}: duplicate test ids {ids}"
        for point in e.grid:
            assert set(point) == set(e.param_names)
            # a valid TrainConfig: on a CPU where the skip rule lets it run, else on CUDA
            cpu = e.skip(point, SMOKE, Machine(cuda_devices=0, cpus=2)) is None
            config = point_config(e, point, SMOKE, device="cpu" if cpu else "cuda")
            assert config.task == e.task


def test_skip_rules_name_the_reason():
    cpu_box = Machine(cuda_devices=0, cpus=2)
    dp = EXPERIMENTS["dataparallel"]
    assert "none" in dp.skip({"devices": 2, "per_device_batch": 64}, SMOKE, cpu_box)
    assert dp.skip({"devices": 2, "per_device_batch": 64}, SMOKE, Machine(2, 16)) is None
    assert "has 4" in dp.skip({"devices": 8, "per_device_batch": 64}, SMOKE, Machine(4, 16))
    workers = EXPERIMENTS["workers"]
    assert "oversubscription" in workers.skip({"num_workers": 16}, SMOKE, cpu_box)
    assert "oversubscription" in workers.skip({"num_workers": 8}, SMOKE, cpu_box)
    assert workers.skip({"num_workers": 4}, SMOKE, cpu_box) is None
    assert workers.skip({"num_workers": 8}, SMOKE, Machine(0, 4)) is None
    assert "exceeds" in EXPERIMENTS["batch_size"].skip({"batch_size": 4096}, SMOKE, cpu_box)
    assert "gloo" in EXPERIMENTS["ddp"].skip({"world_size": 4}, SMOKE, cpu_box)


def test_points_set_their_factor_and_group():
    dp = EXPERIMENTS["dataparallel"]
    point = {"devices": 2, "per_device_batch": 128}
    assert dp.group(point) == "dataparallel-b128" and point_id(point) == "2-128"
    assert EXPERIMENTS["workers"].group({"num_workers": 4}) == "workers"
    config = point_config(EXPERIMENTS["workers"], {"num_workers": 2}, SMOKE, device="cpu")
    assert (config.loader, config.num_workers, config.persistent_workers) == ("dataloader", 2, True)
    pose = point_config(EXPERIMENTS["pose_batch_size"], {"batch_size": 16}, SMOKE, device="cpu")
    assert (pose.task, pose.batch_size, pose.pose_size) == ("pose", 16, SMOKE.pose_size)
    assert point_id({"precision": "amp_bf16", "channels_last": True}) == "amp_bf16-channels_last"


def test_run_point_writes_the_schema(tmp_path):
    """One real (tiny) benchmark through a stand-in for pytest-benchmark's fixture."""
    from fer.suite.harness import run_point
    from unit_tests.helpers import FakeBenchmark

    bench = FakeBenchmark()
    scale = resolve_scale("smoke", cuda=False, rounds=1)
    records, summary = run_point(bench, EXPERIMENTS["optimizer"], {"optimizer": "sgd"}, scale,
                                 make_synthetic_faces(200, seed=0), synthetic_size=200)
    info = bench.extra_info
    assert info["schema"] == 2 and info["experiment"] == "optimizer"
    assert info["params"] == {"optimizer": "sgd"} and info["config"]["optimizer"] == "sgd"
    assert info["plan"]["model"] == "test_efficientnet" and info["plan"]["device"] == "cpu"
    assert len(info["records"]) == 2 and info["records"][0]["warmup"] is True
    assert bench.group == "optimizer" and summary["median_wall_s"] > 0
