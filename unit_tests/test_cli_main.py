"""The command line as a package: flags generated from TrainConfig, each command
offering its own flags, and compare/report starting without torch."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from fer.cli import build_parser
from fer.config import TrainConfig, flag

FIXTURES = Path(__file__).parent / "fixtures"


def _flags(command: str) -> dict[str, object]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {opt: action for action in sub._actions for opt in action.option_strings}


def test_train_flags_are_the_config_fields():
    flags = _flags("train")
    for f in dataclasses.fields(TrainConfig):
        action = flags[flag(f.name)]
        assert action.dest == f.name and action.help and "(default: " in action.help
        assert action.help.count("(default:") == 1, action.help  # one default each
        if "_" in f.name:
            assert flags["--" + f.name] is action  # the study's spelling
        choices = f.metadata.get("choices")
        if choices is not None:
            assert tuple(action.choices) == tuple(choices())
    assert {"--amp", "--cuda", "--lr"} <= set(flags)


def test_each_command_offers_only_its_own_flags():
    profile = _flags("profile")
    assert "--resume" not in profile and "--checkpoint-dir" not in profile
    assert "--epochs" not in profile and "--steps" in profile and "--batch-size" in profile
    data = _flags("data")  # the data subcommands live one level down
    assert "--batch-size" not in data


def test_defaults_are_the_dataclass_defaults():
    from fer.cli.args import config_from_args

    args = build_parser(["train"]).parse_args(["train"])
    assert config_from_args(args) == TrainConfig()


@pytest.mark.parametrize("argv", [
    ["compare", str(FIXTURES / "history" / "base.json"), str(FIXTURES / "history" / "slow.json")],
    ["report", str(FIXTURES / "report" / "smoke-run.json"), "--out", "{tmp}"],
    ["--help"],
])
def test_compare_and_report_start_without_torch(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path / "report")) for a in argv]
    code = ("import sys\nfrom fer.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
