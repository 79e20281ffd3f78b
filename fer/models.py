"""build_model(): timm EfficientNets for 1-channel 48x48 faces; PoseHRNet for pose.

Weights from a file are read without executing code (safetensors, or
``torch.load(weights_only=True)``); a file that needs code to load is refused.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from timm.models import adapt_input_conv
from torch import nn

from fer.errors import ConfigError

log = logging.getLogger(__name__)

#: The families the suite is built for; any other timm model name also works.
MODEL_FAMILIES = "efficientnet_b0-b7, efficientnet_lite0-4, tinynet_a-e, test_efficientnet"


def build_model(name: str, *, num_classes: int = 7, in_chans: int = 1,
                pretrained: str | None = None, drop_rate: float = 0.0) -> nn.Module:
    """A timm classifier. ``pretrained``: None, ``"timm"`` (timm's own source) or a file."""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ConfigError(f"--model {name!r} is not a timm model{hint}; try {MODEL_FAMILIES}")
    kwargs = {"num_classes": num_classes, "in_chans": in_chans, "drop_rate": drop_rate}
    if pretrained == "timm":
        log.info("fetching timm's pretrained weights for %s (needs the network; "
                 "HF_HUB_OFFLINE=1 makes this fail at once)", name)
        hub_log = logging.getLogger("huggingface_hub")
        level = hub_log.level
        hub_log.setLevel(logging.ERROR)  # one clear error below instead of a retry per second
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as exc:  # offline, no weights published, hub errors
            raise ConfigError(
                f"--pretrained: could not get timm's weights for {name} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); download them where "
                "there is a network and pass --pretrained PATH (.safetensors or .pth)"
            ) from None
        finally:
            hub_log.setLevel(level)
    model = timm.create_model(name, pretrained=False, **kwargs)
    if pretrained is not None:
        load_weights(model, pretrained)
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors or .pth/.pt file, never running code from it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such weight file")
    try:
        if path.suffix == ".safetensors":

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"{path}: refused: loading it would run code it contains "
                          f"({str(exc).splitlines()[0]}); save plain tensors (a state_dict) "
                          "or use .safetensors") from None
    except ImportError:
        raise ConfigError(f"{path}: reading .safetensors needs the safetensors package "
                          "(pip install safetensors)") from None
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable weight file (torch could not load it: "
                          f"{type(exc).__name__}); pass a .safetensors or .pth state dict saved "
                          "with torch.save or safetensors") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: holds no state_dict of tensors")
    for name, tensor in state.items():  # a NaN weight would only show up as a NaN loss later
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ConfigError(f"{path}: tensor {name!r} holds {bad} NaN/Inf value(s) of "
                              f"{tensor.numel()}; the weights are damaged, use another file")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load matching tensors: the input conv is adapted to the model's channels
    (timm's rule), a classifier of another class count is left freshly initialised."""
    state = read_state_dict(path)
    own = model.state_dict()
    stem = model.pretrained_cfg.get("first_conv") if hasattr(model, "pretrained_cfg") else None
    stem_key = f"{stem}.weight" if stem else None
    if stem_key in state and stem_key in own and state[stem_key].shape[1] != own[stem_key].shape[1]:

        state[stem_key] = adapt_input_conv(own[stem_key].shape[1], state[stem_key])
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(usable) < len(own) // 2:
        raise ConfigError(f"{path}: only {len(usable)} of the model's {len(own)} tensors match; "
                          "is it a checkpoint of another --model?")
    model.load_state_dict(usable, strict=False)
    skipped = sorted(set(own) - set(usable))
    if skipped:
        log.info("%s: loaded %d tensors; kept fresh: %s", path, len(usable), ", ".join(skipped[:6]))


class PoseHRNet(nn.Module):
    """timm HRNet's stride-4 branch (raw, before the classification head's
    incre modules) and a 1x1 convolution to one heatmap per keypoint, as in the
    reference pose_hrnet. ``pretrained``: None, ``"timm"`` or a weight file."""

    def __init__(self, backbone: str = "hrnet_w18_small", num_keypoints: int = 17,
                 pretrained: str | None = None) -> None:
        super().__init__()
        if not backbone.startswith("hrnet") or not timm.is_model(backbone):
            raise ConfigError(f"--model {backbone!r}: pose needs a timm HRNet "
                              "(hrnet_w18_small, hrnet_w18_small_v2, hrnet_w18, hrnet_w32, ...)")
        kwargs = dict(features_only=True, feature_location="", out_indices=(1,), in_chans=3)
        if pretrained == "timm":  # ImageNet weights from timm's source (needs the network)
            try:
                self.backbone = timm.create_model(backbone, pretrained=True, **kwargs)
            except Exception as exc:
                raise ConfigError(f"--pretrained: could not get timm's weights for {backbone} "
                                  f"({type(exc).__name__}); pass --pretrained PATH") from None
        else:
            self.backbone = timm.create_model(backbone, **kwargs)
            if pretrained:
                load_weights(self.backbone, pretrained)
        channels = self.backbone.feature_info.channels()[0]
        self.head = nn.Conv2d(channels, num_keypoints, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])
