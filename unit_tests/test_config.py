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


def test_auto_model_and_size_by_device():
    c = TrainConfig()
    assert c.resolved_model("cuda") == "efficientnet_b0"
    assert c.resolved_model("cpu") == "test_efficientnet"
    assert c.resolved_synthetic_size("cuda") == 35887
    assert TrainConfig(model="tinynet_e").resolved_model("cuda") == "tinynet_e"
    assert TrainConfig(synthetic_size=10).resolved_synthetic_size("cpu") == 10


def test_replace_revalidates():
    with pytest.raises(ConfigError):
        TrainConfig().replace(batch_size=0)
