"""The workloads the engine trains: a :class:`Task` protocol and the ``TASKS`` registry.

A task builds its data, loaders and model from a TrainConfig, and scores a
batch: ``loss(outputs, targets)`` and ``hits(outputs, targets) -> (hits,
trials)`` whose ratio is the epoch's accuracy (top-1 for expressions, PCK@0.2
for pose). The engine, the config and the CLI only ever talk to this protocol.

Adding a third workload: write its data (a reader or generator, and a loader
taking :class:`~fer.data.loaders.LoaderOptions`) under ``fer/data/``, its model
beside the others in ``fer/models.py`` if timm has none, then one class here
implementing :class:`Task` — the attributes ``name``, ``accuracy_name``,
``auto_model``, ``auto_synthetic_size``, ``loaders``, the classmethod
``check_config`` and the instance methods ``load_data``, ``check_data``,
``make_loader``, ``build_model``, ``loss`` and ``hits`` — constructed as
``cls(config)``, and one line in ``TASKS``. The CLI's ``--task`` choices, the
config's validation and ``auto`` resolution all read the registry.

This module imports no torch at import time (the CLI reads the task names and
their ``auto`` tables cheaply): torch, data and models are imported inside the
methods that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from fer.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from fer.config import Plan, TrainConfig
    from fer.data.loaders import EpochLoader, LoaderOptions


@runtime_checkable
class Task(Protocol):
    """One workload. Class attributes describe it; an instance (``cls(config)``) trains it."""

    name: ClassVar[str]  # the --task value
    accuracy_name: ClassVar[str]  # what hits/trials measure: "acc", "PCK@0.2"
    auto_model: ClassVar[dict[str, str]]  # device type ("cuda", "cpu") -> --model auto
    auto_synthetic_size: ClassVar[dict[str, int]]  # device type -> synthetic images by default
    loaders: ClassVar[tuple[str, ...]]  # the loader kinds it supports ("dataloader", "device")

    @classmethod
    def check_config(cls, config: TrainConfig) -> None:
        """Raise ConfigError, naming the flag, for a task-specific mistake in ``config``."""
        ...

    def load_data(self, config: TrainConfig, plan: Plan) -> Any:
        """The whole dataset (with ``split(name)``, ``source`` and ``len``); the
        resolved ``plan`` gives the synthetic size (``plan.synthetic_size``)."""
        ...

    def check_data(self, train: Any, data: Any) -> None:
        """Raise ConfigError if the training split cannot train this task."""
        ...

    def make_loader(self, data: Any, *, train: bool, batch_size: int,
                    options: LoaderOptions) -> EpochLoader | None:
        """A loader over one split; None for an evaluation split with nothing to score.
        An option the task's loader cannot honour is a ConfigError, never dropped."""
        ...

    def build_model(self, name: str, data: Any, config: TrainConfig) -> nn.Module: ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def hits(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[Any, Any]:
        """(hits, trials) of one batch; tensors or ints, summed over the epoch."""
        ...


class ExpressionTask:
    """Facial-expression classification (FER2013, FER+, synthetic faces)."""

    name = "fer"
    accuracy_name = "acc"
    #: the study's model on a GPU; a tiny EfficientNet on a CPU so a default run takes minutes
    auto_model = {"cuda": "efficientnet_b0", "cpu": "test_efficientnet"}
    #: FER2013's size on a GPU, less on a CPU
    auto_synthetic_size = {"cuda": 35887, "cpu": 12000}
    loaders = ("dataloader", "device")

    def __init__(self, config: TrainConfig) -> None:
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from torch import nn

        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    @classmethod
    def check_config(cls, config: TrainConfig) -> None:
        return None

    def load_data(self, config: TrainConfig, plan: Plan):
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data import load_dataset

        return load_dataset(
            config.data, ferplus=config.ferplus, ferplus_mode=config.ferplus_mode,
            on_error="skip" if config.skip_bad_rows else "raise",
            synthetic_size=plan.synthetic_size, seed=config.seed, imbalance=config.imbalance)

    def check_data(self, train, data) -> None:
        if not train.has_labels:
            raise ConfigError(f"{data.source}: the training rows have no labels")

    def make_loader(self, data, *, train: bool, batch_size: int, options: LoaderOptions):
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data.loaders import make_loader

        if not train and not (len(data) and data.has_labels):
            return None
        return make_loader(data, train=train, batch_size=batch_size, options=options)

    def build_model(self, name: str, data, config: TrainConfig) -> nn.Module:
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.models import build_model

        return build_model(name, num_classes=data.num_classes, pretrained=config.pretrained,
                           drop_rate=config.drop_rate, in_chans=config.channels)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, targets)

    def hits(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        labels = targets if targets.ndim == 1 else targets.argmax(1)
        return (outputs.argmax(1) == labels).sum(), len(targets)


class PoseTask:
    """Body-pose estimation: 17 COCO keypoints as heatmaps (HRNet)."""

    name = "pose"
    accuracy_name = "PCK@0.2"
    auto_model = {"cuda": "hrnet_w18_small", "cpu": "hrnet_w18_small"}
    #: HRNet at 256x192 is far heavier per image than a 48x48 face
    auto_synthetic_size = {"cuda": 4096, "cpu": 256}
    loaders = ("device",)

    def __init__(self, config: TrainConfig) -> None:
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.losses import JointsMSELoss

        self.criterion = JointsMSELoss()

    @classmethod
    def check_config(cls, config: TrainConfig) -> None:
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data.pose import parse_pose_size

        parse_pose_size(config.pose_size)
        if config.num_workers:
            raise ConfigError(f"--num-workers {config.num_workers}: --task pose has no worker "
                              "processes (its data lives on the device); drop --num-workers")
        if config.loader not in (*cls.loaders, "auto"):
            raise ConfigError(f"--loader {config.loader}: --task pose has only the "
                              "device-resident loader; pass --loader device (or leave it auto)")
        if config.image_size != 48:  # 48: the flag's default, the faces' native size
            raise ConfigError(f"--image-size {config.image_size} applies to --task fer; pose "
                              "images are sized by --pose-size HEIGHTxWIDTH")
        if config.channels != 1:
            raise ConfigError(f"--channels {config.channels} applies to --task fer; pose "
                              "images are always RGB")

    def load_data(self, config: TrainConfig, plan: Plan):
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data.pose import make_synthetic_poses, parse_pose_size, read_coco_keypoints

        size = parse_pose_size(config.pose_size)
        if config.data == "synthetic":
            return make_synthetic_poses(plan.synthetic_size, input_size=size, seed=config.seed)
        if not config.coco_images:
            raise ConfigError("--task pose --data ANNOTATIONS.json needs --coco-images DIR "
                              "(the folder of the images the annotations name)")
        data = read_coco_keypoints(config.data, config.coco_images, input_size=size)
        data.splits[:] = 0
        data.splits[::10] = 1  # every 10th person validates
        return data

    def check_data(self, train, data) -> None:
        return None

    def make_loader(self, data, *, train: bool, batch_size: int, options: LoaderOptions):
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data.pose import make_pose_loader

        if not train and len(data) == 0:
            return None
        return make_pose_loader(data, train=train, batch_size=batch_size, options=options)

    def build_model(self, name: str, data, config: TrainConfig) -> nn.Module:
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.data.pose import NUM_KEYPOINTS

        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.models import PoseHRNet

        return PoseHRNet(name, num_keypoints=NUM_KEYPOINTS, pretrained=config.pretrained)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, targets)

    def hits(self, outputs: torch.Tensor, targets: torch.Tensor):
        # lazy: torch, data and models only when a task builds: the CLI reads the registry
        from fer.losses import pck_hits

        return pck_hits(outputs, targets)


#: --task value -> the class implementing :class:`Task`; the one place a task is named.
TASKS: dict[str, type[Task]] = {
    ExpressionTask.name: ExpressionTask,
    PoseTask.name: PoseTask,
}


def make_task(config: TrainConfig) -> Task:
    """The task of ``config.task``, built for this run."""
    try:
        cls = TASKS[config.task]
    except KeyError:
        raise ConfigError(f"--task {config.task!r} is not one of: {', '.join(TASKS)}") from None
    return cls(config)
