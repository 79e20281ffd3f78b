"""The two workloads the engine trains, behind one interface.

A task builds its data, loaders and model from a TrainConfig, and scores a
batch: ``loss(outputs, targets)`` and ``hits(outputs, targets) -> (hits,
trials)`` whose ratio is the epoch's accuracy (top-1 for expressions, PCK@0.2
for pose).
"""

from __future__ import annotations

import torch
from torch import nn

from fer.config import TrainConfig
from fer.errors import ConfigError


class ExpressionTask:
    """Facial-expression classification (FER2013, FER+, synthetic faces)."""

    name = "fer"

    def __init__(self, config: TrainConfig) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def load_data(self, config: TrainConfig, device_type: str):
        from fer.data import load_dataset

        return load_dataset(
            config.data, ferplus=config.ferplus, ferplus_mode=config.ferplus_mode,
            on_error="skip" if config.skip_bad_rows else "raise",
            synthetic_size=config.resolved_synthetic_size(device_type), seed=config.seed,
            imbalance=config.imbalance)

    def check_data(self, train, data) -> None:
        if not train.has_labels:
            raise ConfigError(f"{data.source}: the training rows have no labels")

    def make_loader(self, data, *, train: bool, batch_size: int, **loader_args):
        from fer.data import make_loader

        if not train and not (len(data) and data.has_labels):
            return None
        return make_loader(data, batch_size=batch_size, train=train, **loader_args)

    def build_model(self, name: str, data, config: TrainConfig) -> nn.Module:
        from fer.models import build_model

        return build_model(name, num_classes=data.num_classes, pretrained=config.pretrained,
                           drop_rate=config.drop_rate)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, targets)

    def hits(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        labels = targets if targets.ndim == 1 else targets.argmax(1)
        return (outputs.argmax(1) == labels).sum(), len(targets)


class PoseTask:
    """Body-pose estimation: 17 COCO keypoints as heatmaps (HRNet)."""

    name = "pose"

    def __init__(self, config: TrainConfig) -> None:
        from fer.pose import JointsMSELoss

        if config.loader == "dataloader":
            raise ConfigError("--task pose uses the device-resident loader; drop --loader "
                              "dataloader / --num-workers")
        self.criterion = JointsMSELoss()

    def load_data(self, config: TrainConfig, device_type: str):
        from fer.pose import make_synthetic_poses, read_coco_keypoints

        size = config.resolved_pose_size()
        if config.data == "synthetic":
            return make_synthetic_poses(config.resolved_synthetic_size(device_type),
                                        input_size=size, seed=config.seed)
        if not config.coco_images:
            raise ConfigError("--task pose --data ANNOTATIONS.json needs --coco-images DIR "
                              "(the folder of the images the annotations name)")
        data = read_coco_keypoints(config.data, config.coco_images, input_size=size)
        data.splits[:] = 0
        data.splits[::10] = 1  # every 10th person validates
        return data

    def check_data(self, train, data) -> None:
        return None

    def make_loader(self, data, *, train: bool, batch_size: int, device, seed: int, rank: int,
                    world_size: int, **_ignored):
        from fer.pose import PoseDeviceLoader

        if not train and len(data) == 0:
            return None
        return PoseDeviceLoader(data, batch_size=batch_size, device=device, shuffle=train,
                                seed=seed, drop_last=train and len(data) >= batch_size,
                                rank=rank, world_size=world_size)

    def build_model(self, name: str, data, config: TrainConfig) -> nn.Module:
        from fer.pose import PoseHRNet

        return PoseHRNet(name, pretrained=config.pretrained)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, targets)

    def hits(self, outputs: torch.Tensor, targets: torch.Tensor):
        from fer.pose import pck_hits

        return pck_hits(outputs, targets)


def make_task(config: TrainConfig):
    return {"fer": ExpressionTask, "pose": PoseTask}[config.task](config)
