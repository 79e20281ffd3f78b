"""`fer train`: the study's flags, metrics JSON, errors as exit 2."""

import json

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
    (["train", "--metrics-json", "/proc/x/m.json", *TINY, "--device", "cpu"], "cannot write"),
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
