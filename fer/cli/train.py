"""`fer train`: the study's train.py and train-mix.py in one command.

The study's flags work verbatim (``--cuda --epochs N --pretrained --batch_size
B --optimizer O --num_workers W --learning_rate LR``; ``--amp`` is
train-mix.py), and so do dash spellings (``--batch-size``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

from fer.atomic import atomic_open, lock_folder
from fer.cli.args import add_config_flags, config_from_args
from fer.config import TrainConfig
from fer.errors import ConfigError

log = logging.getLogger("fer.train")


def machine_summary(device) -> dict:
    import torch  # lazy: torch: every fer command imports this module

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "cpu_count": __import__("os").cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _fmt_mem(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


HEAD = (f"{'epoch':>7} {'images':>7} {'wall s':>7} {'wait %':>6} {'img/s':>8} "
        f"{'loss':>7} {'train':>6} {'val':>6} {'peak mem':>10}")


def table_row(r, note: str = "") -> str:
    val = f"{r.val_acc:6.3f}" if r.val_acc is not None else f"{'-':>6}"
    return (f"{r.epoch + 1:>5}{note:<2} {r.images:>7} {r.wall_s:>7.2f} "
            f"{100 * r.data_wait_share:>6.1f} {r.images_per_s:>8.0f} {r.loss:>7.4f} "
            f"{r.train_acc:>6.3f} {val} {_fmt_mem(r.peak_mem_bytes):>10}")


class RunFolder:
    """``runs/<time>-<model>/``: config.json at the start, a row of epochs.csv as each epoch
    finishes (a killed run keeps what it measured), metrics.json at the end."""

    FIELDS = ("epoch", "images", "steps", "wall_s", "data_wait_s", "compute_s", "data_wait_share",
              "images_per_s", "loss", "train_acc", "val_loss", "val_acc", "eval_s", "lr",
              "peak_mem_bytes", "peak_mem_kind", "skipped_steps")

    def __init__(self, root: str, model: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(root) / f"{stamp}-{model}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        path.mkdir(parents=True)
        self.path = path
        self.csv = path / "epochs.csv"
        self.csv.write_text(",".join(self.FIELDS) + "\n")

    def write_json(self, name: str, payload: dict) -> None:
        with atomic_open(self.path / name, "w") as f:
            json.dump(payload, f, indent=2)

    def add_epoch(self, record) -> None:
        row = record.to_dict()
        with self.csv.open("a") as f:
            f.write(",".join("" if row.get(k) is None else str(row[k]) for k in self.FIELDS)
                    + "\n")


def cmd_train(args: argparse.Namespace) -> int:
    from fer.parallel import shutdown_distributed  # lazy: torch: every fer command imports this module

    config = config_from_args(args)
    try:
        code = _train(config)
    except BaseException:
        shutdown_distributed(wait_for_peers=False)
        raise
    shutdown_distributed()
    return code


def _train(config: TrainConfig) -> int:
    from fer.engine import build_trainer  # lazy: torch: every fer command imports this module

    folder_lock = None  # held until this run ends: no second fer train into its checkpoints
    if config.checkpoint_dir and int(os.environ.get("RANK", "0")) == 0:  # rank 0 writes them
        folder_lock = lock_folder(config.checkpoint_dir)
    try:
        return _run(config, build_trainer(config))
    finally:
        if folder_lock is not None:
            folder_lock.close()


def _run(config: TrainConfig, trainer) -> int:
    """Train, print each epoch, write the run folder and --metrics-json."""
    if not trainer.dist.is_main:  # only rank 0 prints and writes
        logging.getLogger("fer").setLevel(logging.WARNING)
        trainer.fit()
        return 0
    n_train = trainer.train_loader.num_images
    world = f", {trainer.dist.world_size} DDP processes" if trainer.dist.world_size > 1 else ""
    log.info("training %s on %s%s (%s): %d images/epoch per process, global batch %d, %s, lr %g, "
             "%s, %s loader", trainer.model_name, trainer.device, world, trainer.data.source, n_train,
             trainer.global_batch, config.optimizer, trainer.lr, config.precision, trainer.plan.loader)
    if trainer.epoch:
        log.info("resuming at epoch %d of %d", trainer.epoch + 1, config.epochs)
    for warning in data_warnings(trainer):
        print(f"warning: {warning}", file=sys.stderr)
    said = 0  # step-mode fallbacks printed so far (at build, then in the first steps)

    def say_fallbacks() -> None:
        nonlocal said
        for f in trainer.fallbacks[said:]:
            print(f"warning: {f['from']} failed on this machine ({f['why']}); the run fell back "
                  f"to {f['to']}", file=sys.stderr, flush=True)
        said = len(trainer.fallbacks)

    say_fallbacks()

    acc = trainer.task.accuracy_name
    payload = {"fer_metrics": 1, "model": trainer.model_name, "device": str(trainer.device),
               "world_size": trainer.dist.world_size, "data": trainer.data.source,
               "config": config.to_dict(), "plan": trainer.plan.to_dict(),
               "machine": machine_summary(trainer.device)}
    folder = None
    if config.runs_root() is not None:
        try:
            folder = RunFolder(config.runs_root(), trainer.model_name)
            folder.write_json("config.json", payload)
        except OSError as exc:
            raise ConfigError(f"--run-dir {config.runs_root()}: cannot write ({exc.strerror}); "
                              "pass another folder, or --run-dir none") from None
    bar = None
    on_step = _progress_lines(trainer, config)  # off a terminal: a line every 15 s of an epoch
    if sys.stderr.isatty():
        def on_step(steps: int, images: int, data_wait: float) -> None:
            nonlocal bar
            if bar is None:
                from tqdm import tqdm  # lazy: tqdm only on a terminal

                bar = tqdm(total=trainer.steps_per_epoch,
                           desc=f"epoch {trainer.epoch + 1}/{config.epochs}", unit="step",
                           leave=False, file=sys.stderr)
            bar.update(1)
            if steps % 10 == 0:
                elapsed = bar.format_dict["elapsed"] or 1e-9
                bar.set_postfix_str(f"{images / elapsed:,.0f} img/s, data-wait "
                                    f"{100 * data_wait / elapsed:.0f}%")

    # each epoch printed once, as it finishes; earlier epochs of a resumed run first
    print(HEAD)
    print("-" * len(HEAD))
    resumed = list(trainer.records)
    for r in resumed:
        print(table_row(r, "r"))
    warmup_note = []

    def on_epoch(r) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        note = "*" if r.epoch == 0 else ""
        if note:
            warmup_note.append(r)
        print(table_row(r, note) + (f"  ({r.skipped_steps} fp16 steps skipped)"
                                    if r.skipped_steps else ""), flush=True)
        say_fallbacks()
        if folder is not None:
            folder.add_epoch(r)

    try:
        records = trainer.fit(on_epoch, on_step)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        _say_what_was_kept(trainer, config, folder, payload, done=len(trainer.records) - len(resumed))
        raise
    finally:
        if bar is not None:
            bar.close()
    if resumed:
        print(f"r: epochs run before --resume (from {config.checkpoint_dir})")
    if warmup_note:
        print("* epoch 1 includes the warm-up (allocator, kernel selection, first touch of the "
              "data): compare epochs from 2 on")
    if trainer.setup_s:
        parts = {"compile_s": "compile (the first step)", "capture_s": "CUDA graph warm-up + capture"}
        print("in epoch 1: " + ", ".join(f"{parts.get(k, k)} {v:.1f} s"
                                         for k, v in trainer.setup_s.items()))
    if acc != "acc":
        print(f"train, val: {acc}")
    if records and records[-1].val_acc is not None:
        print(f"\nfinal validation {'accuracy' if acc == 'acc' else acc} "
              f"{records[-1].val_acc:.3f} "
              f"({trainer.model_name}, {sum(r.wall_s for r in records):.1f} s of training)")
    payload["records"] = [r.to_dict() for r in records]
    payload["setup_s"] = dict(trainer.setup_s)
    payload["step_mode"] = trainer.step_mode
    if config.metrics_json:
        try:
            with atomic_open(config.metrics_json, "w") as f:
                json.dump(payload, f, indent=2)
        except OSError as exc:
            raise ConfigError(f"--metrics-json {config.metrics_json}: cannot write "
                              f"({exc.strerror})") from None
        print(f"wrote {config.metrics_json}")
    if folder is not None:
        folder.write_json("metrics.json", payload)
        print(f"run folder: {folder.path} (config.json, epochs.csv, metrics.json)")
    return 0


#: a validation split smaller than this moves its accuracy in steps of more than 1%
MIN_VALIDATION_IMAGES = 100


def data_warnings(trainer) -> list[str]:
    """What makes a run's numbers mean little: a batch larger than the data, a tiny split."""
    out = []
    train = trainer.train_loader.num_images
    if trainer.global_batch > train:
        out.append(f"the batch ({trainer.global_batch}) exceeds the {train} training images: "
                   "every epoch is one partial batch; lower --batch-size or use more data")
    val = trainer.val_loader.num_images if trainer.val_loader is not None else 0
    if val == 0:
        out.append("there is no validation split: accuracy is not measured; use more data "
                   "(e.g. a larger --synthetic-size) or a source with a validation split")
    elif val < MIN_VALIDATION_IMAGES:
        out.append(f"the validation split holds {val} image(s): its accuracy moves in steps of "
                   f"{100 / val:.0f}%, too coarse to compare runs; use more data (e.g. a larger "
                   "--synthetic-size)")
    return out


PROGRESS_EVERY_S = 15.0


def _progress_lines(trainer, config: TrainConfig):
    """An on_step callback that prints, off a terminal (a log, CI), one line to stderr every
    PROGRESS_EVERY_S seconds of an epoch: a long epoch is never silent."""
    state = {"epoch": -1, "start": 0.0, "last": 0.0}

    def on_step(steps: int, images: int, data_wait: float) -> None:
        now = time.monotonic()
        if state["epoch"] != trainer.epoch:
            state.update(epoch=trainer.epoch, start=now, last=now)
            return
        if now - state["last"] < PROGRESS_EVERY_S:
            return
        state["last"] = now
        elapsed = max(now - state["start"], 1e-9)
        print(f"  epoch {trainer.epoch + 1}/{config.epochs}: step {steps}/{trainer.steps_per_epoch}, "
              f"{images / elapsed:,.0f} img/s, data wait {100 * data_wait / elapsed:.0f}%, "
              f"{elapsed:.0f} s", file=sys.stderr, flush=True)

    return on_step


def _say_what_was_kept(trainer, config: TrainConfig, folder, payload: dict, *, done: int) -> None:
    """On Ctrl-C: keep the finished epochs (metrics.json marked interrupted) and say what was
    kept and how to go on."""
    epoch = trainer.epoch + 1
    lines = [f"interrupted in epoch {epoch} of {config.epochs}: {done} epoch(s) of this run "
             "had finished"]
    if folder is not None:
        payload = {**payload, "interrupted": True,
                   "records": [r.to_dict() for r in trainer.records]}
        folder.write_json("metrics.json", payload)
        lines.append(f"kept: {folder.path}/epochs.csv and metrics.json (marked interrupted)")
    if config.checkpoint_dir and done:
        lines.append(f"resume: the same command with --resume (checkpoint of epoch "
                     f"{trainer.epoch} in {config.checkpoint_dir})")
    elif config.checkpoint_dir:
        lines.append(f"no epoch finished, so {config.checkpoint_dir} holds no checkpoint of this "
                     "run: run the command again")
    else:
        lines.append("no checkpoint was kept: pass --checkpoint-dir DIR to make a run resumable")
    for line in lines:
        print(line, file=sys.stderr)


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "train", help="train and time a FER model (the study's train.py / train-mix.py)",
        description="Train a timm EfficientNet on FER2013 (or the built-in synthetic faces) "
                    "and time every epoch, split into data-wait and compute.",
        epilog="Every flag's default is in its help; the study's underscore spellings "
               "(--batch_size) work too.")
    if full:  # generated from TrainConfig; only the command being run needs them
        add_config_flags(p, "train")
    p.set_defaults(func=cmd_train)
