"""TrainConfig: every knob of a training run, validated once.

The CLI, the perf tests and the benchmarks build one of these; everything
downstream trusts it. A bad value raises :class:`ConfigError` naming the field
(which is also the CLI flag, with dashes) and the values it accepts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fer.errors import ConfigError

PRECISIONS = ("fp32", "amp_fp16", "amp_bf16")
LOADERS = ("dataloader", "device")
SCHEDULERS = ("none", "step", "cosine")
LR_SCALINGS = ("none", "linear")
PARALLEL_MODES = ("none", "dp", "ddp")
AUTO = "auto"
#: What ``model="auto"`` means: the study's model on a GPU; a tiny EfficientNet
#: on a CPU so that a default run finishes in minutes.
AUTO_MODEL = {"cuda": "efficientnet_b0", "cpu": "test_efficientnet"}
#: What ``synthetic_size=None`` means: FER2013's size on a GPU, less on a CPU.
AUTO_SYNTHETIC_SIZE = {"cuda": 35887, "cpu": 12000}
#: The same for the pose task (HRNet at 256x192 is far heavier per image).
AUTO_POSE = {"model": "hrnet_w18_small", "cuda": 4096, "cpu": 256}
TASKS = ("fer", "pose")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class TrainConfig:
    """One training run. Field names are the CLI's flags (``batch_size`` -> ``--batch-size``)."""

    # task
    task: str = "fer"  # "fer": expressions; "pose": HRNet body pose
    pose_size: str = "256x192"  # pose input, HEIGHTxWIDTH, multiples of 32
    coco_images: str | None = None  # pose: the image folder of a COCO annotation file
    # data
    data: str = "synthetic"
    synthetic_size: int | None = None
    imbalance: bool = False
    ferplus: str | None = None
    ferplus_mode: str = "majority"
    skip_bad_rows: bool = False
    image_size: int = 48
    loader: str = AUTO  # auto: "dataloader" when num_workers > 0, else "device"
    num_workers: int = 0
    pin_memory: bool | None = None  # None: on when training on CUDA from the DataLoader path
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    # model
    model: str = AUTO
    pretrained: str | None = None  # None, "timm" (timm's own source), or a weight file
    channels_last: bool = False
    compile: bool = False
    drop_rate: float = 0.0
    # optimisation
    epochs: int = 8
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's default
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "none"
    warmup_epochs: int = 0
    lr_scaling: str = "none"
    base_batch_size: int = 64
    label_smoothing: float = 0.0
    precision: str = "fp32"
    # execution
    device: str = AUTO
    parallel: str = "none"
    devices: int | None = None
    seed: int = 0
    max_steps_per_epoch: int | None = None
    eval_every: int = 1
    # files
    checkpoint_dir: str | None = None
    resume: bool = False
    metrics_json: str | None = None

    def __post_init__(self) -> None:
        if self.loader == AUTO and isinstance(self.num_workers, int):
            self.loader = "dataloader" if self.num_workers > 0 else "device"
        self._choice("task", TASKS)
        if self.task == "pose":
            self.resolved_pose_size()
        self._choice("precision", PRECISIONS)
        self._choice("loader", LOADERS)
        self._choice("scheduler", SCHEDULERS)
        self._choice("lr_scaling", LR_SCALINGS)
        self._choice("parallel", PARALLEL_MODES)
        self._choice("ferplus_mode", ("majority", "soft"))
        from fer.optim import OPTIMIZERS

        self._choice("optimizer", tuple(OPTIMIZERS))
        for name in ("epochs", "batch_size", "base_batch_size", "image_size", "eval_every"):
            self._at_least(name, 1)
        for name in ("num_workers", "warmup_epochs", "weight_decay", "momentum", "drop_rate"):
            self._at_least(name, 0)
        for name in ("synthetic_size", "prefetch_factor", "max_steps_per_epoch", "devices"):
            if getattr(self, name) is not None:
                self._at_least(name, 1)
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"{_flag('learning_rate')} must be > 0, got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{_flag('label_smoothing')} must be in [0, 1), got {self.label_smoothing}")
        if self.image_size % 8:
            raise ConfigError(f"{_flag('image_size')} must be a multiple of 8, got {self.image_size}")
        if self.prefetch_factor is not None and self.num_workers == 0:
            raise ConfigError(f"{_flag('prefetch_factor')} needs {_flag('num_workers')} >= 1")
        if self.persistent_workers and self.num_workers == 0:
            raise ConfigError(f"{_flag('persistent_workers')} needs {_flag('num_workers')} >= 1")
        if self.loader == "device" and self.num_workers:
            raise ConfigError(f"{_flag('num_workers')} applies to --loader dataloader; the device "
                              "loader has no workers (pass --loader dataloader)")
        if self.warmup_epochs >= self.epochs and self.warmup_epochs:
            raise ConfigError(f"{_flag('warmup_epochs')} ({self.warmup_epochs}) must be less than "
                              f"--epochs ({self.epochs})")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint is)")
        if self.devices is not None and self.parallel == "none" and self.devices > 1:
            raise ConfigError("--devices > 1 needs --parallel dp (or torchrun with --parallel ddp)")
        if self.devices is not None and self.parallel == "ddp":
            raise ConfigError("--devices applies to --parallel dp; under ddp, torchrun's "
                              "--nproc_per_node sets the number of devices")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"--device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.pretrained not in (None, "timm") and not Path(self.pretrained).is_file():
            raise ConfigError(f"--pretrained {self.pretrained}: no such file; pass a .safetensors "
                              "or .pth weight file, or --pretrained alone for timm's own weights")

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"{_flag(name)} {value!r} is not one of: {', '.join(allowed)}")

    def _at_least(self, name: str, low: float) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigError(f"{_flag(name)} must be a number >= {low}, got {value!r}")

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def resolved_model(self, device_type: str) -> str:
        if self.model != AUTO:
            return self.model
        if self.task == "pose":
            return AUTO_POSE["model"]
        return AUTO_MODEL.get(device_type, AUTO_MODEL["cpu"])

    def resolved_synthetic_size(self, device_type: str) -> int:
        if self.synthetic_size is not None:
            return self.synthetic_size
        table = AUTO_POSE if self.task == "pose" else AUTO_SYNTHETIC_SIZE
        return table.get(device_type, table["cpu"])

    def resolved_pose_size(self) -> tuple[int, int]:
        try:
            h, w = (int(v) for v in self.pose_size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--pose-size {self.pose_size!r}: use HEIGHTxWIDTH, e.g. 256x192") from None
        from fer.pose import check_input_size

        return check_input_size((h, w))
