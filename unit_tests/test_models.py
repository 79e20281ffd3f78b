"""build_model and weight files: timm factories, 1-channel input, safe loading."""

import pytest
import torch
from safetensors.torch import save_file

from fer.errors import ConfigError
from fer.models import build_model, load_weights


@pytest.mark.parametrize("name", ["test_efficientnet", "tinynet_e", "efficientnet_lite0"])
def test_builds_one_channel_seven_classes(name):
    model = build_model(name, num_classes=7)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_ferplus_eight_classes():
    assert build_model("test_efficientnet", num_classes=8)(torch.randn(1, 1, 48, 48)).shape == (1, 8)


def test_unknown_model_suggests():
    with pytest.raises(ConfigError, match="not a timm model"):
        build_model("efficientnet_b99")


def test_pth_and_safetensors_round_trip(tmp_path):
    src = build_model("test_efficientnet")
    torch.save(src.state_dict(), tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "w.safetensors")
    for name in ("w.pth", "w.safetensors"):
        dst = build_model("test_efficientnet", pretrained=str(tmp_path / name))
        assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(),
                                                      dst.state_dict().values()))


def test_imagenet_style_weights_are_adapted(tmp_path):
    """3-channel, 1000-class weights: the stem is summed to 1 channel, the head stays fresh."""
    import timm

    imagenet = timm.create_model("test_efficientnet", num_classes=1000)  # 3 channels
    torch.save({"state_dict": imagenet.state_dict()}, tmp_path / "in1k.pth")
    model = build_model("test_efficientnet", pretrained=str(tmp_path / "in1k.pth"))
    stem = imagenet.state_dict()["conv_stem.weight"].sum(1, keepdim=True)
    assert torch.allclose(model.state_dict()["conv_stem.weight"], stem)
    assert model.classifier.out_features == 7


def test_weight_file_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"conv_stem.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ConfigError, match="refused: loading it would run code"):
        load_weights(build_model("test_efficientnet"), tmp_path / "evil.pth")


def test_weights_of_another_model_are_refused(tmp_path):
    torch.save(build_model("tinynet_e").state_dict(), tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="another --model"):
        build_model("test_efficientnet", pretrained=str(tmp_path / "other.pth"))


def test_bare_pretrained_offline_explains(monkeypatch):
    import timm

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ConfigError, match="pass --pretrained PATH"):
        build_model("test_efficientnet", pretrained="timm")


def test_pose_head_shape_and_name_check():
    from fer.models import PoseHRNet

    model = PoseHRNet("hrnet_w18_small")
    assert model(torch.randn(2, 3, 64, 96)).shape == (2, 17, 16, 24)  # stride-4 heatmaps
    with pytest.raises(ConfigError, match="pose needs a timm HRNet"):
        PoseHRNet("efficientnet_b0")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, suffix, bad):
    state = build_model("test_efficientnet").state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 4)
    state[name] = state[name].clone()
    state[name].view(-1)[3] = bad
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ConfigError, match=rf"w{suffix}: tensor '{name}' holds 1 NaN/Inf"):
        load_weights(build_model("test_efficientnet"), path)
