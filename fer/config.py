"""TrainConfig: every knob of a training run, validated once; resolved once into a Plan.

The CLI, the perf suite and the benchmarks build one of these; everything
downstream trusts it. Each field is also a command-line flag (``batch_size`` ->
``--batch-size``, the study's ``--batch_size`` kept): its help, group, choices
and default live here, in the field's metadata, and ``fer.cli.args`` generates
the flags from them. Allowed values come from the registries (optimizers,
precisions, tasks, loaders, parallel modes), never from a second list.

``auto`` values (device, model, loader, synthetic size, pin memory, learning
rate) are decided in one place, :meth:`TrainConfig.resolve`, once the device is
known: the resulting :class:`Plan` is what the engine builds, what the perf
harness records and what ``--metrics-json`` writes beside the config.

A bad value raises :class:`ConfigError` naming the flag and the values it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fer import optim
from fer.atomic import check_output_path
from fer.errors import ConfigError
from fer.precision import PRECISIONS
from fer.tasks import TASKS

AUTO = "auto"
#: the largest --image-size: the largest EfficientNet's native resolution (B7: 600) rounded up
#: to a multiple of 8. Upscaling a 48-pixel face further adds no information, and the resize
#: allocates batch x size^2 floats per step (--image-size 10000 at batch 64: 25.6 GB).
MAX_IMAGE_SIZE = 640
#: the most synthetic faces a run draws (uint8 48x48: 2.1 GiB in memory)
MAX_SYNTHETIC = 1_000_000
ALL = ("train", "profile", "data")  # the commands that take a field shared with `fer data`


# ------------------------------------------------------------ registries --
# Each returns the allowed values of one field from the registry that owns them.

def _tasks() -> tuple[str, ...]:
    return tuple(TASKS)


def _loaders() -> tuple[str, ...]:
    kinds: list[str] = []
    for task in TASKS.values():
        kinds += [k for k in task.loaders if k not in kinds]
    return (AUTO, *kinds)


def _precisions() -> tuple[str, ...]:
    return tuple(PRECISIONS)


def _optimizers() -> tuple[str, ...]:
    return tuple(optim.OPTIMIZERS)


def _schedulers() -> tuple[str, ...]:
    return optim.SCHEDULERS


def _lr_scalings() -> tuple[str, ...]:
    return optim.LR_SCALINGS


def _parallel_modes() -> tuple[str, ...]:
    from fer.parallel import PARALLEL_MODES  # lazy: fer.parallel imports torch

    return PARALLEL_MODES


def _optimizer_impls() -> tuple[str, ...]:
    return optim.OPTIMIZER_IMPLS


#: --compile: none, or a torch.compile mode (a bare --compile is "default")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def _compile_modes() -> tuple[str, ...]:
    return COMPILE_MODES


def _channels() -> tuple[int, ...]:
    return (1, 3)


def _ferplus_modes() -> tuple[str, ...]:
    from fer.data.fer2013 import FERPLUS_MODES  # lazy: the fer.data package imports torch

    return FERPLUS_MODES


def knob(default, help: str, group: str, *, choices: Callable[[], tuple] | None = None,
         metavar: str | None = None, aliases: tuple[str, ...] = (), default_help: str | None = None,
         commands: tuple[str, ...] = ("train", "profile"), nargs: str | None = None,
         const=None, negatable: bool = False):
    """A TrainConfig field with what its command-line flag needs to know."""
    return field(default=default, metadata=dict(
        help=help, group=group, choices=choices, metavar=metavar, aliases=aliases,
        default_help=default_help, commands=commands, nargs=nargs, const=const,
        negatable=negatable))


def flag(name: str) -> str:
    """The flag of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


@dataclass
class TrainConfig:
    """One training run. Field names are the CLI's flags (``batch_size`` -> ``--batch-size``)."""

    # task
    task: str = knob("fer", "fer: facial expressions (EfficientNet); pose: 17-keypoint body pose "
                     "(HRNet heatmaps, accuracy = PCK@0.2)", "task", choices=_tasks)
    pose_size: str = knob("256x192", "pose input HEIGHTxWIDTH, multiples of 32", "task",
                          metavar="HxW")
    coco_images: str | None = knob(None, "pose with --data person_keypoints_*.json: the images' "
                                   "folder", "task", metavar="DIR", default_help="none")
    # data
    data: str = knob("synthetic", "fer2013.csv, an image folder, or 'synthetic'; for --task pose "
                     "a COCO person_keypoints_*.json or 'synthetic' (stick figures)", "data",
                     metavar="SOURCE")
    synthetic_size: int | None = knob(None, "images in the synthetic set", "data", metavar="N",
                                      default_help="35,887 on a GPU, 12,000 on a CPU; pose 4,096 / 256",
        commands=ALL)
    imbalance: bool = knob(False, "synthetic data with FER2013's class imbalance", "data",
        commands=ALL)
    ferplus: str | None = knob(None, "FER+ votes (fer2013new.csv) joined onto the FER2013 data", "data",
                               metavar="FER2013NEW_CSV", default_help="none",
        commands=ALL)
    ferplus_mode: str = knob("majority", "FER+ labels: majority vote, or vote distributions as "
                             "soft targets", "data", choices=_ferplus_modes,
        commands=ALL)
    skip_bad_rows: bool = knob(False, "drop malformed rows (listed) instead of stopping at the "
                               "first one", "data",
        commands=ALL)
    image_size: int = knob(48, "resize inputs to this size (FER2013's is 48)", "data", metavar="PX")
    channels: int = knob(1, "input channels: 1 (the grayscale face) or 3 (the face repeated "
                         "into ImageNet's three-channel stem, what a pretrained EfficientNet "
                         "expects)", "data", choices=_channels)
    loader: str = knob(AUTO, "dataloader (worker processes) or device (data resident on the "
                       "device)", "data", choices=_loaders,
                       default_help="auto: dataloader when --num-workers > 0, else device")
    num_workers: int = knob(0, "DataLoader worker processes", "data", metavar="N")
    pin_memory: bool | None = knob(None, "pinned host memory for the DataLoader path", "data",
                                   negatable=True, default_help="on when training on CUDA")
    persistent_workers: bool = knob(False, "keep DataLoader workers between epochs", "data")
    prefetch_factor: int | None = knob(None, "batches each worker loads ahead", "data", metavar="N",
                                       default_help="PyTorch's, 2")
    # model
    model: str = knob(AUTO, "a timm model (efficientnet_b0..b7, efficientnet_lite0..4, tinynet_a..e, "
                      "test_efficientnet; hrnet_w18_small..hrnet_w32 for --task pose)", "model",
                      metavar="NAME", default_help="auto: efficientnet_b0 on a GPU, test_efficientnet "
                      "on a CPU, hrnet_w18_small for pose")
    pretrained: str | None = knob(None, "start from weights: a .safetensors/.pth file, or the bare "
                                  "flag for timm's own source (needs the network)", "model",
                                  metavar="PATH", nargs="?", const="timm", default_help="none")
    channels_last: bool = knob(False, "channels_last memory format", "model")
    compile: str = knob("none", "torch.compile the model in this mode (a bare --compile: "
                        "default); the compile time is recorded apart from the epochs",
                        "model", choices=_compile_modes, nargs="?", const="default")
    compile_budget: float = knob(0.0, "seconds the first compiled step may take, compilation "
                                 "included, before the run falls back to the uncompiled model "
                                 "(recorded); 0: no limit", "model", metavar="SECONDS")
    drop_rate: float = knob(0.0, "dropout before the classifier", "model", metavar="P")
    # optimisation
    epochs: int = knob(8, "training epochs", "optimisation", metavar="N", commands=("train",))
    batch_size: int = knob(64, "images per step per device", "optimisation", metavar="N")
    optimizer: str = knob("adam", "the optimizer", "optimisation", choices=_optimizers)
    learning_rate: float | None = knob(None, "the base learning rate", "optimisation", metavar="LR",
                                       aliases=("--lr",), default_help="the optimizer's own")
    momentum: float = knob(0.9, "momentum of sgd_momentum, sgd_nesterov and rmsprop",
                           "optimisation", metavar="M")
    weight_decay: float = knob(0.0, "L2 weight decay (not on biases and norm scales)",
                               "optimisation", metavar="WD")
    scheduler: str = knob("none", "per-step schedule after the warm-up", "optimisation",
                          choices=_schedulers)
    warmup_epochs: int = knob(0, "linear learning-rate warm-up epochs", "optimisation", metavar="N")
    lr_scaling: str = knob("none", "linear: lr x global batch / --base-batch-size (Goyal et al. "
                           "2017)", "optimisation", choices=_lr_scalings)
    base_batch_size: int = knob(64, "the batch --lr-scaling scales from", "optimisation", metavar="N")
    label_smoothing: float = knob(0.0, "cross-entropy label smoothing", "optimisation", metavar="E")
    precision: str = knob("fp32", "autocast precision (amp_fp16 adds a GradScaler)", "optimisation",
                          choices=_precisions)
    optimizer_impl: str = knob("auto", "how the update runs: torch's choice, forloop, foreach "
                               "(multi-tensor) or fused (one kernel: adam, adamw, sgd*, adagrad)",
                               "optimisation", choices=_optimizer_impls)
    cuda_graph: bool = knob(False, "capture the whole training step (forward, loss, backward, "
                            "optimizer) in a CUDA graph after a warm-up and replay it: one "
                            "launch a step instead of hundreds (CUDA only; fp16 captures up to "
                            "the backward, its GradScaler steps outside)", "execution")
    # execution
    device: str = knob(AUTO, "auto, cpu, cuda or cuda:N", "execution",
                       default_help="auto: cuda when visible, else cpu",
        commands=ALL)
    parallel: str = knob("none", "dp: DataParallel over --devices GPUs; ddp: DistributedDataParallel, "
                         "one process per device, launched by torchrun", "execution",
                         choices=_parallel_modes)
    devices: int | None = knob(None, "GPUs for --parallel dp", "execution", metavar="N",
                               default_help="every visible GPU")
    seed: int = knob(0, "seed of every random source", "execution", metavar="N",
        commands=ALL)
    max_steps_per_epoch: int | None = knob(None, "cut each epoch short (quick checks)", "execution",
                                           metavar="N", default_help="the whole epoch")
    eval_every: int = knob(1, "validate every N epochs", "execution", metavar="N",
                           commands=("train",))
    # files
    checkpoint_dir: str | None = knob(None, "save a checkpoint every epoch into this folder",
                                      "output", metavar="DIR", commands=("train",),
                                      default_help="none")
    resume: bool = knob(False, "continue from --checkpoint-dir (refused when the run's "
                        "configuration differs from the checkpoint's, except --epochs, "
                        "--learning-rate and how data is fed)", "output", commands=("train",))
    overwrite: bool = knob(False, "start a new run in a --checkpoint-dir that holds a "
                           "checkpoint, replacing it", "output", commands=("train",))
    metrics_json: str | None = knob(None, "write the config, the plan and every epoch record",
                                    "output", metavar="PATH", commands=("train",),
                                    default_help="none")
    run_dir: str | None = knob(None, "where each run gets a folder of its own (config.json, "
                               "epochs.csv written as epochs finish, metrics.json); 'none': "
                               "write none", "output", metavar="DIR", commands=("train",),
                               default_help="runs/, or $FER_RUNS_DIR")

    def __post_init__(self) -> None:
        if isinstance(self.compile, bool):  # configs and checkpoints written before the modes
            self.compile = "default" if self.compile else "none"
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices is not None:
                self._choice(f.name, choices())
        if self.loader == AUTO and isinstance(self.num_workers, int):
            self.loader = "dataloader" if self.num_workers > 0 else "device"
        for name in ("epochs", "batch_size", "base_batch_size", "image_size", "eval_every"):
            self._at_least(name, 1)
        for name in ("num_workers", "warmup_epochs", "weight_decay", "momentum", "drop_rate"):
            self._at_least(name, 0)
        if not self.drop_rate < 1:
            raise ConfigError(f"{flag('drop_rate')} must be in [0, 1) (a probability of "
                              f"dropping), got {self.drop_rate}")
        if self.image_size > MAX_IMAGE_SIZE:
            raise ConfigError(f"{flag('image_size')} {self.image_size} is above {MAX_IMAGE_SIZE}, "
                              "the largest EfficientNet's input (B7: 600); a 48-pixel face gains "
                              "nothing from more, and each step would resize a batch to "
                              f"{self.image_size}x{self.image_size} floats")
        for name in ("synthetic_size", "prefetch_factor", "max_steps_per_epoch", "devices"):
            if getattr(self, name) is not None:
                self._at_least(name, 1)
        if self.synthetic_size is not None and self.synthetic_size > MAX_SYNTHETIC:
            raise ConfigError(f"{flag('synthetic_size')} {self.synthetic_size:,} is above "
                              f"{MAX_SYNTHETIC:,} images ({MAX_SYNTHETIC * 48 * 48 / 2**30:.0f} "
                              "GiB of 48x48 faces); FER2013 has 35,887, pass fewer")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"{flag('seed')} must be in [0, 2**32), got {self.seed}")
        if self.learning_rate is not None and not (
                isinstance(self.learning_rate, (int, float))
                and 0 < self.learning_rate < float("inf")):
            raise ConfigError(f"{flag('learning_rate')} must be > 0 and finite, "
                              f"got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{flag('label_smoothing')} must be in [0, 1), got {self.label_smoothing}")
        if self.image_size % 8:
            raise ConfigError(f"{flag('image_size')} must be a multiple of 8, got {self.image_size}")
        if self.prefetch_factor is not None and self.num_workers == 0:
            raise ConfigError(f"{flag('prefetch_factor')} needs {flag('num_workers')} >= 1")
        if self.persistent_workers and self.num_workers == 0:
            raise ConfigError(f"{flag('persistent_workers')} needs {flag('num_workers')} >= 1")
        if self.loader == "device" and self.num_workers:
            raise ConfigError(f"{flag('num_workers')} applies to --loader dataloader; the device "
                              "loader has no workers (pass --loader dataloader)")
        if self.warmup_epochs >= self.epochs and self.warmup_epochs:
            raise ConfigError(f"{flag('warmup_epochs')} ({self.warmup_epochs}) must be less than "
                              f"--epochs ({self.epochs})")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint is)")
        if self.overwrite and not self.checkpoint_dir:
            raise ConfigError("--overwrite needs --checkpoint-dir (the checkpoint it replaces)")
        if self.overwrite and self.resume:
            raise ConfigError("--overwrite starts a new run and --resume continues one; pass one")
        if self.devices is not None and self.parallel == "none" and self.devices > 1:
            raise ConfigError("--devices > 1 needs --parallel dp (or torchrun with --parallel ddp)")
        if self.devices is not None and self.parallel == "ddp":
            raise ConfigError("--devices applies to --parallel dp; under ddp, torchrun's "
                              "--nproc_per_node sets the number of devices")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"--device {self.device!r}: use auto, cpu, cuda or cuda:N")
        self._check_step_modes()
        self._check_task_fields()
        self._check_outputs()
        if self.pretrained not in (None, "timm") and not Path(self.pretrained).is_file():
            kind = "a folder" if Path(self.pretrained).is_dir() else "no such file"
            raise ConfigError(f"--pretrained {self.pretrained}: {kind}; pass a .safetensors "
                              "or .pth weight file, or --pretrained alone for timm's own weights")
        TASKS[self.task].check_config(self)  # the task's own fields (e.g. --pose-size)

    def _check_step_modes(self) -> None:
        """--cuda-graph replays one captured step: what cannot live in a graph is refused."""
        if not (self.compile_budget >= 0 and math.isfinite(self.compile_budget)):
            raise ConfigError(f"--compile-budget {self.compile_budget}: give seconds >= 0 (0: no "
                              "limit)")
        if not self.cuda_graph:
            return
        if self.device == "cpu":
            raise ConfigError("--cuda-graph needs a CUDA device (a CUDA graph replays GPU "
                              "kernels); drop it on --device cpu")
        if self.parallel != "none":
            raise ConfigError(f"--cuda-graph cannot capture --parallel {self.parallel} (its "
                              "scatter/gather and collectives run on the host each step); use "
                              "one device, or drop --cuda-graph")
        if self.compile in ("reduce-overhead", "max-autotune"):
            raise ConfigError(f"--compile {self.compile} already replays CUDA graphs of its "
                              "own; pass --compile default with --cuda-graph, or drop "
                              "--cuda-graph")
        if self.scheduler != "none" or self.warmup_epochs:
            raise ConfigError("--cuda-graph replays a fixed learning rate; a schedule "
                              "(--scheduler, --warmup-epochs) changes it every step: use "
                              "--scheduler none --warmup-epochs 0, or drop --cuda-graph")
        able = optim.graphable()
        if self.optimizer not in able:
            raise ConfigError(f"--cuda-graph: --optimizer {self.optimizer} keeps host-side "
                              f"state torch cannot capture; use one of {', '.join(able)}")

    def _check_task_fields(self) -> None:
        """Flags that belong to one task are refused with the other, never silently ignored."""
        model = str(self.model)
        if self.task == "pose":
            for name in ("ferplus", "imbalance", "skip_bad_rows"):
                if getattr(self, name):
                    raise ConfigError(f"{flag(name)} applies to --task fer (facial expressions); "
                                      "--task pose reads COCO keypoints or synthetic figures")
            if model != AUTO and not model.startswith("hrnet"):
                raise ConfigError(f"--model {model} is not an HRNet; --task pose needs one "
                                  "(hrnet_w18_small, hrnet_w18_small_v2, hrnet_w18, hrnet_w32)")
        else:
            if self.coco_images:
                raise ConfigError("--coco-images applies to --task pose (the images of a COCO "
                                  "keypoints file); add --task pose or drop --coco-images")
            if model.startswith("hrnet"):
                raise ConfigError(f"--model {model} is a pose backbone; pass --task pose, or an "
                                  "expression model (efficientnet_b0, test_efficientnet, ...)")
            if self.pose_size != "256x192":
                raise ConfigError("--pose-size applies to --task pose; expression inputs are "
                                  "sized by --image-size")
        if self.ferplus_mode != "majority" and not self.ferplus:
            raise ConfigError(f"--ferplus-mode {self.ferplus_mode} needs --ferplus "
                              "FER2013NEW_CSV (the FER+ votes)")

    def _check_outputs(self) -> None:
        """Output paths are checked before any work starts: a run's results are never lost
        to a path that cannot be written at the end."""
        if self.metrics_json is not None:
            check_output_path(self.metrics_json, flag("metrics_json"))
        if self.checkpoint_dir is not None:
            check_output_path(self.checkpoint_dir, flag("checkpoint_dir"), folder=True)
        if self.runs_root() is not None:
            check_output_path(self.runs_root(), flag("run_dir"), folder=True)

    def runs_root(self) -> str | None:
        """The folder the run's own folder goes into; None when --run-dir none."""
        if self.run_dir is not None:
            return None if self.run_dir.lower() == "none" else self.run_dir
        return os.environ.get("FER_RUNS_DIR") or "runs"

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"{flag(name)} {value!r} is not one of: "
                              f"{', '.join(str(a) for a in allowed)}")

    def _at_least(self, name: str, low: float) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not low <= value < float("inf"):
            raise ConfigError(f"{flag(name)} must be a number >= {low}, got {value!r}")

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def resolve(self, *, device: str, cuda_devices: int = 0, world_size: int = 1,
                rank: int = 0) -> Plan:
        """Every ``auto`` decided, once the device is known: the run's :class:`Plan`.

        ``device`` is the resolved device (``cpu``, ``cuda``, ``cuda:1``),
        ``cuda_devices`` how many GPUs are visible, ``world_size``/``rank`` the
        DDP process group (1/0 without one). Pure: no torch, no side effects.
        """
        task = TASKS[self.task]
        device_type = device.split(":")[0]
        if self.parallel == "dp":
            devices = self.devices or max(cuda_devices, 1)
        elif self.parallel == "ddp":
            devices = world_size
        else:
            devices = 1
        global_batch = self.batch_size * devices
        base_lr = self.learning_rate or optim.OPTIMIZERS[self.optimizer].default_lr
        return Plan(
            task=self.task, device=device, device_type=device_type,
            model=self.model if self.model != AUTO else task.auto_model.get(
                device_type, task.auto_model["cpu"]),
            synthetic_size=self.synthetic_size or task.auto_synthetic_size.get(
                device_type, task.auto_synthetic_size["cpu"]),
            loader=self.loader,
            pin_memory=(device_type == "cuda") if self.pin_memory is None else self.pin_memory,
            image_size=self.image_size, devices=devices, world_size=world_size, rank=rank,
            global_batch=global_batch, loader_batch=global_batch // world_size,
            base_lr=base_lr,
            lr=optim.scaled_lr(base_lr, global_batch, self.base_batch_size, self.lr_scaling),
            precision=self.precision, optimizer=self.optimizer, channels=self.channels,
            compile=self.compile, optimizer_impl=self.optimizer_impl, cuda_graph=self.cuda_graph,
        )


@dataclass(frozen=True)
class Plan:
    """A TrainConfig with every ``auto`` decided for one device and process group."""

    task: str
    device: str  # "cpu", "cuda", "cuda:1"
    device_type: str  # "cpu" or "cuda"
    model: str
    synthetic_size: int  # images drawn when the data is synthetic
    loader: str  # "dataloader" or "device"
    pin_memory: bool
    image_size: int
    devices: int  # devices one step runs on in this process (DataParallel), or the DDP world
    world_size: int  # DDP processes (1 without DDP)
    rank: int
    global_batch: int  # images per optimizer step over every device
    loader_batch: int  # images one process loads per step
    base_lr: float  # --learning-rate or the optimizer's default
    lr: float  # after --lr-scaling
    precision: str
    optimizer: str
    channels: int = 1
    compile: str = "none"
    optimizer_impl: str = "auto"
    cuda_graph: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
