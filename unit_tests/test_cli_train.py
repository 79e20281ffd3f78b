"""`fer train`: the study's flags, metrics JSON, errors as exit 2."""

import json
import os

import pytest

from fer.cli import build_parser, main
from fer.cli.args import config_from_args

TINY = ["--synthetic-size", "120", "--model", "test_efficientnet", "--epochs", "1"]


def test_study_command_line_parses_verbatim():
    args = build_parser().parse_args(
        ["train", "--cuda", "--epochs", "30", "--pretrained", "--epochs", "5", "--batch_size", "128",
         "--optimizer", "adam", "--num_workers", "8", "--learning_rate", "0.001"])
    assert (args.epochs, args.batch_size, args.num_workers, args.learning_rate) == (5, 128, 8, 0.001)
    assert args.pretrained == "timm" and args.cuda


def test_amp_is_train_mix_and_dash_spellings():
    args = build_parser().parse_args(["train", "--amp", "--batch-size", "16", "--num-workers", "2"])
    config = config_from_args(args)
    assert config.precision == "amp_fp16" and config.batch_size == 16
    assert config.loader == "dataloader" and config.device == "auto"


def test_train_writes_metrics_json(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["train", *TINY, "--device", "cpu", "--metrics-json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["model"] == "test_efficientnet" and len(payload["records"]) == 1
    record = payload["records"][0]
    assert record["images"] == 64 and record["wall_s"] > 0 and "data_wait_share" in record
    text = capsys.readouterr().out
    assert "epoch  images" in text and "final validation accuracy" in text


def test_train_prints_each_epoch_once_and_writes_a_run_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--synthetic-size", "120", "--model", "test_efficientnet", "--epochs", "2",
            "--device", "cpu", "--run-dir", str(runs)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line[:5].strip() in ("1", "2")]
    assert len(rows) == 2 and rows[0].split()[0] == "1*"  # once each; the warm-up marked
    assert "* epoch 1 includes the warm-up" in text
    folder = next(runs.iterdir())
    assert f"run folder: {folder}" in text.splitlines()[-1]
    config = json.loads((folder / "config.json").read_text())
    assert config["plan"]["model"] == "test_efficientnet" and config["config"]["epochs"] == 2
    csv_lines = (folder / "epochs.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,images") and len(csv_lines) == 3
    assert len(json.loads((folder / "metrics.json").read_text())["records"]) == 2
    assert main([*argv[:-2], "--run-dir", "none"]) == 0  # and none at all when asked
    assert len(list(runs.iterdir())) == 1


def test_train_checkpoint_and_resume(tmp_path, capsys):
    ckpt = str(tmp_path / "ckpt")
    assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", ckpt]) == 0
    tiny2 = [a if a != "1" else "2" for a in TINY]
    assert main(["train", *tiny2, "--device", "cpu", "--checkpoint-dir", ckpt, "--resume"]) == 0
    table = capsys.readouterr().out.split("epoch  images")[-1]
    assert table.count("\n    ") >= 2  # both epochs listed after the resume


@pytest.mark.parametrize("argv,match", [
    (["train", "--precision", "fp8"], "invalid choice"),
    (["train", "--batch_size", "0"], "--batch-size must be"),
    (["train", "--amp", "--precision", "amp_bf16"], "--amp means --precision amp_fp16"),
    (["train", "--data", "/no/such.csv"], "no such file or folder"),
    (["train", "--model", "resnet_b99"], "not a timm model"),
    (["train", "--pretrained", "/tmp"], "--pretrained /tmp: a folder; pass a .safetensors"),
    (["train", "--seed", str(2**64)], "--seed must be in [0, 2**32)"),
    (["train", "--synthetic-size", str(10**13)], "is above 1,000,000 images"),
    (["train", "--metrics-json", "/proc/x/m.json", *TINY, "--device", "cpu"], "cannot write there"),
])
def test_user_errors_are_one_line_exit_2(argv, match, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", *TINY, "--device", "cpu", "--batch-size", "8"]) == 0
    bar = terminal.getvalue()
    assert "epoch 1/1" in bar and "img/s, data-wait" in bar


# ---------------------------------------------------------- hostile input --

def _exit(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: every check below must fire before it."""
    from fer.engine import Trainer

    def fit(self, *a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(Trainer, "fit", fit)


@pytest.mark.parametrize("extra,match", [
    (["--image-size", "10000"], "--image-size 10000 is above 640"),
    (["--drop-rate", "1.5"], "--drop-rate must be in [0, 1)"),
    (["--model", "hrnet_w18_small"], "is a pose backbone; pass --task pose"),
    (["--task", "pose", "--ferplus", "x.csv"], "--ferplus applies to --task fer"),
    (["--coco-images", "."], "--coco-images applies to --task pose"),
    (["--learning-rate", "inf"], "--learning-rate must be > 0 and finite"),
    (["--learning-rate", "nan"], "--learning-rate must be > 0 and finite"),
    (["--metrics-json", "FILE/m.json"], "is a file, not a folder"),
    (["--checkpoint-dir", "FILE/ck"], "is a file, not a folder"),
])
def test_bad_flags_fail_before_training(tmp_path, capsys, no_training, extra, match):
    (tmp_path / "FILE").write_text("x")
    extra = [e.replace("FILE", str(tmp_path / "FILE")) for e in extra]
    assert _exit(["train", *TINY, "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_fresh_run_over_a_checkpoint_needs_resume_or_overwrite(tmp_path, capsys):
    ckpt = str(tmp_path / "ckpt")
    assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", ckpt]) == 0
    before = (tmp_path / "ckpt" / "last.pt").read_bytes()
    assert _exit(["train", *TINY, "--device", "cpu", "--checkpoint-dir", ckpt]) == 2
    err = capsys.readouterr().err
    assert "holds a checkpoint after epoch 1" in err and "--overwrite" in err
    assert (tmp_path / "ckpt" / "last.pt").read_bytes() == before  # untouched
    tiny2 = [a if a != "1" else "2" for a in TINY]
    assert _exit(["train", *tiny2, "--device", "cpu", "--checkpoint-dir", ckpt, "--resume",
                  "--optimizer", "sgd"]) == 2
    assert "--optimizer sgd (checkpoint: adam)" in capsys.readouterr().err
    assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", ckpt,
                 "--overwrite"]) == 0


def test_resume_with_a_new_learning_rate_uses_and_reports_it(tmp_path, caplog):
    import logging

    ckpt = str(tmp_path / "ckpt")
    out = tmp_path / "m.json"
    assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", ckpt]) == 0
    tiny2 = [a if a != "1" else "2" for a in TINY]
    with caplog.at_level(logging.INFO):
        assert main(["train", *tiny2, "--device", "cpu", "--checkpoint-dir", ckpt, "--resume",
                     "--learning-rate", "0.0042", "--metrics-json", str(out)]) == 0
    assert "lr 0.0042" in caplog.text
    payload = json.loads(out.read_text())
    assert payload["plan"]["lr"] == 0.0042
    assert payload["records"][-1]["lr"] == pytest.approx(0.0042)  # in force, not only claimed


def test_ctrl_c_says_what_was_kept_and_how_to_resume(tmp_path, capsys, monkeypatch):
    from fer.engine import Trainer

    train_epoch = Trainer.train_epoch

    def interrupted_in_epoch_2(self, on_step=None):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self, on_step)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_2)
    runs, ckpt = tmp_path / "runs", tmp_path / "ckpt"
    argv = ["train", *TINY[:-1], "3", "--device", "cpu", "--run-dir", str(runs),
            "--checkpoint-dir", str(ckpt)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted in epoch 2 of 3: 1 epoch(s) of this run had finished" in err
    assert "--resume" in err and str(ckpt) in err and "epochs.csv" in err
    metrics = json.loads((next(runs.iterdir()) / "metrics.json").read_text())
    assert metrics["interrupted"] is True and len(metrics["records"]) == 1
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    assert main([*argv, "--resume"]) == 0  # and the advice works


def test_progress_lines_off_a_terminal(capsys, monkeypatch):
    import fer.cli.train as train_cli

    monkeypatch.setattr(train_cli, "PROGRESS_EVERY_S", 0.0)
    assert main(["train", *TINY, "--device", "cpu", "--run-dir", "none", "--batch-size", "16"]) == 0
    err = capsys.readouterr().err  # 96 images, 6 steps: a line for each step after the first
    assert "epoch 1/1: step 2/6" in err and "step 6/6" in err and "img/s, data wait" in err


def test_two_runs_into_one_checkpoint_folder_are_refused(tmp_path, capsys):
    """The second fer train into a --checkpoint-dir that a running one holds would replace
    its checkpoint: it is refused, naming the holder, while the first holds the folder."""
    from fer.atomic import lock_folder
    from fer.errors import ConfigError

    ckpt = tmp_path / "ckpt"
    first = lock_folder(ckpt)  # what a running fer train holds
    try:
        assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", str(ckpt)]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and "another fer train" in err
        with pytest.raises(ConfigError, match="wait for it to end"):
            lock_folder(ckpt)
    finally:
        first.close()
    assert main(["train", *TINY, "--device", "cpu", "--checkpoint-dir", str(ckpt)]) == 0


def test_a_run_too_small_to_mean_anything_says_so(capsys):
    assert main(["train", "--synthetic-size", "50", "--batch-size", "64", "--epochs", "1",
                 "--device", "cpu", "--run-dir", "none"]) == 0
    err = capsys.readouterr().err
    assert "the batch (64) exceeds the 40 training images" in err
    assert "the validation split holds 5 image(s)" in err
