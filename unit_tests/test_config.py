"""TrainConfig validation: each bad field named with its allowed values."""

import pytest

from fer.config import TrainConfig
from fer.errors import ConfigError


@pytest.mark.parametrize("kwargs,match", [
    ({"precision": "fp8"}, r"--precision 'fp8' is not one of: fp32, amp_fp16, amp_bf16"),
    ({"optimizer": "lion"}, r"--optimizer 'lion' is not one of: sgd, .*adadelta"),
    ({"loader": "ram"}, r"--loader 'ram'"),
    ({"batch_size": 0}, r"--batch-size must be a number >= 1"),
    ({"epochs": -1}, r"--epochs"),
    ({"num_workers": -2}, r"--num-workers"),
    ({"learning_rate": 0.0}, r"--learning-rate must be > 0"),
    ({"image_size": 50}, r"--image-size must be a multiple of 8"),
    ({"prefetch_factor": 2}, r"--prefetch-factor needs --num-workers"),
    ({"loader": "device", "num_workers": 2}, r"--num-workers applies to --loader dataloader"),
    ({"resume": True}, r"--resume needs --checkpoint-dir"),
    ({"devices": 2}, r"--devices > 1 needs --parallel dp"),
    ({"device": "tpu"}, r"--device 'tpu'"),
    ({"pretrained": "/no/such/weights.pth"}, r"--pretrained /no/such/weights.pth: no such file"),
    ({"warmup_epochs": 5, "epochs": 5}, r"--warmup-epochs"),
    ({"label_smoothing": 1.5}, r"--label-smoothing"),
])
def test_bad_values_name_the_flag(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_loader_auto_follows_workers():
    assert TrainConfig().loader == "device"
    assert TrainConfig(num_workers=4).loader == "dataloader"
    assert TrainConfig(loader="dataloader").loader == "dataloader"


def test_auto_is_resolved_once_into_the_plan():
    c = TrainConfig()
    gpu, cpu = c.resolve(device="cuda", cuda_devices=1), c.resolve(device="cpu")
    assert (gpu.model, gpu.synthetic_size, gpu.pin_memory) == ("efficientnet_b0", 35887, True)
    assert (cpu.model, cpu.synthetic_size) == ("test_efficientnet", 12000)
    assert TrainConfig(model="tinynet_e").resolve(device="cuda").model == "tinynet_e"
    assert TrainConfig(synthetic_size=10).resolve(device="cpu").synthetic_size == 10
    pose = TrainConfig(task="pose").resolve(device="cpu")
    assert (pose.model, pose.synthetic_size) == ("hrnet_w18_small", 256)
    # the optimizer's default learning rate, scaled by the global batch
    assert c.resolve(device="cpu").lr == 1e-3
    dp = TrainConfig(parallel="dp", lr_scaling="linear", batch_size=64).resolve(
        device="cuda:0", cuda_devices=4)
    assert (dp.devices, dp.global_batch, dp.loader_batch, dp.lr) == (4, 256, 256, 4e-3)
    ddp = TrainConfig(parallel="ddp").resolve(device="cuda:1", world_size=2, rank=1)
    assert (ddp.devices, ddp.global_batch, ddp.loader_batch, ddp.rank) == (2, 128, 64, 1)
    assert TrainConfig(pin_memory=False).resolve(device="cuda").pin_memory is False


def test_choices_come_from_the_registries():
    import dataclasses

    from fer.data.fer2013 import FERPLUS_MODES
    from fer.optim import OPTIMIZERS
    from fer.parallel import PARALLEL_MODES
    from fer.precision import PRECISIONS
    from fer.tasks import TASKS

    choices = {f.name: f.metadata["choices"]() for f in dataclasses.fields(TrainConfig)
               if f.metadata.get("choices")}
    assert choices["optimizer"] == tuple(OPTIMIZERS)
    assert choices["precision"] == tuple(PRECISIONS)
    assert choices["task"] == tuple(TASKS)
    assert choices["parallel"] == PARALLEL_MODES
    assert choices["ferplus_mode"] == FERPLUS_MODES
    assert set(choices["loader"]) == {"auto", "dataloader", "device"}


def test_every_field_has_help_and_a_group():
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help") and f.metadata.get("group"), f.name


def test_replace_revalidates():
    with pytest.raises(ConfigError):
        TrainConfig().replace(batch_size=0)


# ------------------------------------------------------ hostile flags --

@pytest.mark.parametrize("kwargs,match", [
    ({"image_size": 10000}, r"--image-size 10000 is above 640"),
    ({"drop_rate": 1.5}, r"--drop-rate must be in \[0, 1\)"),
    ({"drop_rate": 1.0}, r"--drop-rate must be in \[0, 1\)"),
    ({"drop_rate": float("nan")}, r"--drop-rate must be a number >= 0"),
    ({"learning_rate": float("inf")}, r"--learning-rate must be > 0 and finite"),
    ({"learning_rate": float("nan")}, r"--learning-rate must be > 0 and finite"),
    ({"momentum": float("inf")}, r"--momentum must be a number >= 0"),
    ({"weight_decay": float("nan")}, r"--weight-decay must be a number >= 0"),
    ({"model": "hrnet_w18_small"}, r"--model hrnet_w18_small is a pose backbone; pass --task pose"),
    ({"task": "pose", "model": "efficientnet_b0"}, r"--model efficientnet_b0 is not an HRNet"),
    ({"task": "pose", "ferplus": "votes.csv"}, r"--ferplus applies to --task fer"),
    ({"task": "pose", "imbalance": True}, r"--imbalance applies to --task fer"),
    ({"task": "pose", "skip_bad_rows": True}, r"--skip-bad-rows applies to --task fer"),
    ({"coco_images": "imgs"}, r"--coco-images applies to --task pose"),
    ({"ferplus_mode": "soft"}, r"--ferplus-mode soft needs --ferplus"),
    ({"overwrite": True}, r"--overwrite needs --checkpoint-dir"),
])
def test_hostile_flags_are_refused_before_any_work(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_largest_image_size_is_accepted():
    assert TrainConfig(image_size=640).image_size == 640


def test_output_paths_are_checked_before_any_work(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"--metrics-json .*file.txt is a file, not a folder"):
        TrainConfig(metrics_json=str(a_file / "m.json"))
    with pytest.raises(ConfigError, match=r"--checkpoint-dir .*file.txt is a file, not a folder"):
        TrainConfig(checkpoint_dir=str(a_file / "deeper" / "ckpt"))
    with pytest.raises(ConfigError, match=r"--checkpoint-dir .*: is a file, not a folder"):
        TrainConfig(checkpoint_dir=str(a_file))
    with pytest.raises(ConfigError, match=r"--metrics-json .*: is a folder; pass a file path"):
        TrainConfig(metrics_json=str(tmp_path))
    ok = TrainConfig(metrics_json=str(tmp_path / "new" / "m.json"),
                     checkpoint_dir=str(tmp_path / "new" / "ckpt"))
    assert ok.metrics_json.endswith("m.json")


def test_an_unwritable_folder_is_refused(tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ConfigError, match="permission denied"):
            TrainConfig(metrics_json=str(locked / "m.json"))
    finally:
        locked.chmod(0o700)


def test_compile_modes_and_the_bare_flag():
    from fer.cli.args import config_from_args
    from fer.cli.main import build_parser

    assert TrainConfig(compile=True).compile == "default"  # configs written before the modes
    assert TrainConfig(compile=False).compile == "none"
    with pytest.raises(ConfigError, match="--compile 'fast' is not one of"):
        TrainConfig(compile="fast")
    parser = build_parser()

    def compile_of(*argv):
        return config_from_args(parser.parse_args(["train", "--run-dir", "none", *argv])).compile

    assert compile_of("--compile") == "default"
    assert compile_of("--compile", "max-autotune") == "max-autotune"
    assert compile_of() == "none"


def test_channels_are_for_expressions_only():
    assert TrainConfig(channels=3).resolve(device="cpu").channels == 3
    with pytest.raises(ConfigError, match="--channels 2 is not one of"):
        TrainConfig(channels=2)
    with pytest.raises(ConfigError, match="--channels 3 applies to --task fer"):
        TrainConfig(task="pose", channels=3)
