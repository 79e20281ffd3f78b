"""`fer train`: the study's train.py and train-mix.py in one command.

The study's flags work verbatim (``--cuda --epochs N --pretrained --batch_size
B --optimizer O --num_workers W --learning_rate LR``; ``--amp`` is
train-mix.py), and so do dash spellings (``--batch-size``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys

import torch

from fer.config import AUTO_MODEL, AUTO_POSE, LOADERS, PRECISIONS, SCHEDULERS, TrainConfig
from fer.optim import OPTIMIZERS

log = logging.getLogger("fer.train")


def _both(name: str) -> list[str]:
    """``--batch-size`` and the study's ``--batch_size``."""
    dashed = "--" + name.replace("_", "-")
    return [dashed, "--" + name] if "_" in name else [dashed]


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig knob as a flag; shared by `fer train` and `fer profile`."""
    d = TrainConfig.__dataclass_fields__

    g = p.add_argument_group("task")
    g.add_argument("--task", choices=("fer", "pose"), default="fer",
                   help="fer: facial expressions (EfficientNet); pose: 17-keypoint body pose "
                        "(HRNet heatmaps, accuracy = PCK@0.2)")
    g.add_argument(*_both("pose_size"), default="256x192", metavar="HxW",
                   help="pose input size, multiples of 32")
    g.add_argument(*_both("coco_images"), metavar="DIR",
                   help="pose with --data person_keypoints_*.json: the images' folder")

    g = p.add_argument_group("data")
    g.add_argument("--data", default="synthetic",
                   help="fer2013.csv, an image folder, or 'synthetic' (default); for --task pose "
                        "a COCO person_keypoints_*.json or 'synthetic' (stick figures)")
    g.add_argument(*_both("synthetic_size"), type=int, default=None, metavar="N",
                   help="synthetic images (default: 35,887 on a GPU, 12,000 on a CPU)")
    g.add_argument("--imbalance", action="store_true", help="synthetic data with FER2013's imbalance")
    g.add_argument("--ferplus", help="FER+ votes (fer2013new.csv) joined onto --data")
    g.add_argument(*_both("ferplus_mode"), choices=("majority", "soft"), default="majority")
    g.add_argument(*_both("skip_bad_rows"), action="store_true", help="drop malformed rows")
    g.add_argument(*_both("image_size"), type=int, default=48,
                   help="resize inputs to this size (default 48, FER2013's)")
    g.add_argument("--loader", choices=("auto", *LOADERS), default="auto",
                   help="dataloader (worker processes) or device (data resident on the device); "
                        "auto: dataloader when --num-workers > 0, else device")
    g.add_argument(*_both("num_workers"), type=int, default=0, help="DataLoader worker processes")
    g.add_argument(*_both("pin_memory"), action=argparse.BooleanOptionalAction, default=None,
                   help="pinned host memory (default: on when training on CUDA)")
    g.add_argument(*_both("persistent_workers"), action="store_true")
    g.add_argument(*_both("prefetch_factor"), type=int, default=None)

    g = p.add_argument_group("model")
    g.add_argument("--model", default="auto",
                   help=f"a timm model (efficientnet_b0..b7, efficientnet_lite0..4, tinynet_a..e, "
                        f"test_efficientnet; hrnet_w18_small..hrnet_w32 for --task pose); auto: "
                        f"{AUTO_MODEL['cuda']} on a GPU, {AUTO_MODEL['cpu']} on a CPU, "
                        f"{AUTO_POSE['model']} for pose")
    g.add_argument("--pretrained", nargs="?", const="timm", default=None, metavar="PATH",
                   help="start from weights: a .safetensors/.pth file, or alone for timm's source")
    g.add_argument(*_both("channels_last"), action="store_true", help="channels_last memory format")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument(*_both("drop_rate"), type=float, default=0.0, help="dropout before the classifier")

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d["epochs"].default)
    g.add_argument(*_both("batch_size"), type=int, default=d["batch_size"].default,
                   help="images per step per device (default %(default)s)")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=d["optimizer"].default)
    g.add_argument(*_both("learning_rate"), "--lr", type=float, default=None,
                   help="default: the optimizer's (" + ", ".join(
                       f"{k} {v.default_lr:g}" for k, v in OPTIMIZERS.items()) + ")")
    g.add_argument("--momentum", type=float, default=d["momentum"].default)
    g.add_argument(*_both("weight_decay"), type=float, default=0.0,
                   help="L2 weight decay (not applied to biases and norm scales)")
    g.add_argument("--scheduler", choices=SCHEDULERS, default="none")
    g.add_argument(*_both("warmup_epochs"), type=int, default=0)
    g.add_argument(*_both("lr_scaling"), choices=("none", "linear"), default="none",
                   help="linear: lr x global batch / --base-batch-size (Goyal et al. 2017)")
    g.add_argument(*_both("base_batch_size"), type=int, default=d["base_batch_size"].default)
    g.add_argument(*_both("label_smoothing"), type=float, default=0.0)
    g.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="fp32 (default), amp_fp16 or amp_bf16")
    g.add_argument("--amp", action="store_true", help="the study's train-mix.py: --precision amp_fp16")

    g = p.add_argument_group("execution")
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    g.add_argument("--cuda", action="store_true", help="the study's flag: --device cuda")
    g.add_argument("--parallel", choices=("none", "dp", "ddp"), default="none",
                   help="dp: torch.nn.DataParallel over --devices GPUs; ddp: "
                        "DistributedDataParallel, one process per device, launched by torchrun")
    g.add_argument("--devices", type=int, default=None, help="GPUs for --parallel dp")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(*_both("max_steps_per_epoch"), type=int, default=None,
                   help="cut each epoch short (quick checks)")
    g.add_argument(*_both("eval_every"), type=int, default=1, help="validate every N epochs")

    g = p.add_argument_group("output")
    g.add_argument(*_both("metrics_json"), metavar="PATH", help="write config and epoch records")
    g.add_argument(*_both("checkpoint_dir"), metavar="DIR", help="save a checkpoint every epoch")
    g.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from fer.errors import ConfigError

    if args.amp and args.precision not in (None, "amp_fp16"):
        raise ConfigError(f"--amp means --precision amp_fp16; it contradicts --precision {args.precision}")
    if args.cuda and args.device not in (None, "cuda") and not str(args.device).startswith("cuda"):
        raise ConfigError(f"--cuda contradicts --device {args.device}")
    precision = "amp_fp16" if args.amp else (args.precision or "fp32")
    device = args.device or ("cuda" if args.cuda else "auto")
    fields = set(TrainConfig.field_names())
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(precision=precision, device=device)
    return TrainConfig(**values)


def machine_summary(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "cpu_count": __import__("os").cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _fmt_mem(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def print_table(records, stream=None) -> None:
    stream = stream or sys.stdout
    head = (f"{'epoch':>5} {'images':>7} {'wall s':>7} {'wait %':>6} {'img/s':>8} "
            f"{'loss':>7} {'train':>6} {'val':>6} {'peak mem':>10}")
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for r in records:
        val = f"{r.val_acc:6.3f}" if r.val_acc is not None else f"{'-':>6}"
        print(f"{r.epoch + 1:>5} {r.images:>7} {r.wall_s:>7.2f} {100 * r.data_wait_share:>6.1f} "
              f"{r.images_per_s:>8.0f} {r.loss:>7.4f} {r.train_acc:>6.3f} {val} "
              f"{_fmt_mem(r.peak_mem_bytes):>10}", file=stream)


def cmd_train(args: argparse.Namespace) -> int:
    from fer.parallel import shutdown_distributed

    config = config_from_args(args)
    try:
        code = _train(config)
    except BaseException:
        shutdown_distributed(wait_for_peers=False)
        raise
    shutdown_distributed()
    return code


def _train(config: TrainConfig) -> int:
    from fer.atomic import atomic_open
    from fer.engine import Trainer

    trainer = Trainer(config)
    if not trainer.dist.is_main:  # only rank 0 prints and writes
        logging.getLogger("fer").setLevel(logging.WARNING)
        trainer.fit()
        return 0
    n_train = trainer.train_loader.num_images
    world = f", {trainer.dist.world_size} DDP processes" if trainer.dist.world_size > 1 else ""
    log.info("training %s on %s%s (%s): %d images/epoch per process, global batch %d, %s, lr %g, "
             "%s, %s loader", trainer.model_name, trainer.device, world, trainer.data.source, n_train,
             trainer.global_batch, config.optimizer, trainer.lr, config.precision, config.loader)
    if trainer.epoch:
        log.info("resuming at epoch %d of %d", trainer.epoch + 1, config.epochs)

    acc = "PCK@0.2" if config.task == "pose" else "acc"
    bar = None
    if sys.stderr.isatty():
        def on_step(steps: int, images: int, data_wait: float) -> None:
            bar.update(1)
            if steps % 10 == 0:
                elapsed = bar.format_dict["elapsed"] or 1e-9
                bar.set_postfix_str(f"{images / elapsed:,.0f} img/s, data-wait "
                                    f"{100 * data_wait / elapsed:.0f}%")

        trainer.on_step = on_step

    def on_epoch(r) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        val = f", val {acc} {r.val_acc:.3f}" if r.val_acc is not None else ""
        skipped = f", {r.skipped_steps} skipped steps" if r.skipped_steps else ""
        log.info("epoch %d/%d: %.2f s, %.0f img/s, data-wait %.1f%%, loss %.4f, train %s %.3f%s%s",
                 r.epoch + 1, config.epochs, r.wall_s, r.images_per_s, 100 * r.data_wait_share,
                 r.loss, acc, r.train_acc, val, skipped)
        if trainer.on_step is not None and trainer.epoch < config.epochs:
            open_bar(trainer.epoch)

    def open_bar(epoch: int) -> None:
        nonlocal bar
        from tqdm import tqdm

        bar = tqdm(total=trainer.steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="step", leave=False, file=sys.stderr)

    if trainer.on_step is not None and trainer.epoch < config.epochs:
        open_bar(trainer.epoch)
    try:
        records = trainer.fit(on_epoch)
    finally:
        if bar is not None:
            bar.close()
    print()
    print_table(records)
    if records and records[-1].val_acc is not None:
        print(f"\nfinal validation {'PCK@0.2' if config.task == 'pose' else 'accuracy'} "
              f"{records[-1].val_acc:.3f} "
              f"({trainer.model_name}, {sum(r.wall_s for r in records):.1f} s of training)")
    if config.metrics_json:
        payload = {
            "fer_metrics": 1,
            "model": trainer.model_name,
            "device": str(trainer.device),
            "world_size": trainer.dist.world_size,
            "data": trainer.data.source,
            "config": config.to_dict(),
            "machine": machine_summary(trainer.device),
            "records": [r.to_dict() for r in records],
        }
        try:
            with atomic_open(config.metrics_json, "w") as f:
                json.dump(payload, f, indent=2)
        except OSError as exc:
            from fer.errors import ConfigError

            raise ConfigError(f"--metrics-json {config.metrics_json}: cannot write "
                              f"({exc.strerror})") from None
        log.info("wrote %s", config.metrics_json)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train and time a FER model (the study's train.py / train-mix.py)",
        description="Train a timm EfficientNet on FER2013 (or the built-in synthetic faces) "
                    "and time every epoch, split into data-wait and compute.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_flags(p)
    p.set_defaults(func=cmd_train)
