"""argparse pieces shared by the commands: the one-line-error parser, and the
training flags generated from TrainConfig's fields.

Every TrainConfig field becomes a flag (``batch_size`` -> ``--batch-size``, the
study's ``--batch_size`` kept as an alias) with the help, group, choices and
default its field declares (see :func:`fer.config.knob`). Flags default to
"not given" (``argparse.SUPPRESS``), so the dataclass's default is the only
default, and a command offers only the fields meant for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from fer.config import TrainConfig, flag
from fer.errors import ConfigError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit 2 (its default is also 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default in its help, unless it has none to show (None, off, or stated in
    the help already)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or "default" in text:
            return text
        return super()._get_help_string(action)


def int_in(text: str, low: int, high: int | None = None) -> int:
    """``text`` as an integer in [low, high] (argparse's type check, one line on failure)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"{text!r} must be <= {high:,}")
    return value


def positive_int(text: str) -> int:
    return int_in(text, 1)


def non_negative_int(text: str) -> int:
    return int_in(text, 0)


#: the baseline: the newest N earlier runs (fer compare, fer dashboard)
DEFAULT_LAST = 10


def add_baseline_options(parser: argparse.ArgumentParser, *, threshold: float) -> None:
    """--last and --threshold, shared by `fer compare` and `fer dashboard`."""
    parser.add_argument("--last", type=int, default=DEFAULT_LAST, metavar="N",
                        help="the baseline: the newest N runs before the candidate (0: all)")
    parser.add_argument("--threshold", type=float, default=threshold,
                        help="the smallest time or throughput change that matters, as a fraction")


def check_last(last: int) -> None:
    if last < 0:
        raise ConfigError(f"--last {last}: must be >= 0 (0: every earlier run)")


def _value_type(annotation: str):
    """int, float or str from a field's annotation (``int | None`` -> int)."""
    base = annotation.replace(" | None", "").strip()
    return {"int": int, "float": float, "str": str, "bool": bool}.get(base, str)


def _default_text(f: dataclasses.Field) -> str:
    meta = f.metadata
    if meta.get("default_help"):
        return meta["default_help"]
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return str(f.default)


GROUP_TITLES = {"task": "task", "data": "data", "model": "model", "optimisation": "optimisation",
                "execution": "execution", "output": "output"}


def add_config_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Every TrainConfig field meant for ``command`` as a flag, in its group."""
    hints = typing.get_type_hints(TrainConfig, include_extras=False)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if command not in meta.get("commands", ()):
            continue
        group = groups.get(meta["group"])
        if group is None:
            group = groups[meta["group"]] = parser.add_argument_group(GROUP_TITLES[meta["group"]])
        names = [flag(f.name)] + (["--" + f.name] if "_" in f.name else []) + list(meta["aliases"])
        help_text = f"{meta['help']} (default: {_default_text(f)})"
        kwargs: dict = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        kind = _value_type(str(f.type))
        if meta.get("negatable"):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is bool or hints.get(f.name) is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = kind
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if meta.get("choices") is not None:
                kwargs["choices"] = meta["choices"]()
            if meta.get("nargs"):
                kwargs.update(nargs=meta["nargs"], const=meta["const"])
        group.add_argument(*names, **kwargs)
    if command not in ("train", "profile"):
        return
    study = parser.add_argument_group("the study's flags")
    study.add_argument("--amp", action="store_true",
                       help="the study's train-mix.py: --precision amp_fp16")
    study.add_argument("--cuda", action="store_true", help="the study's flag: --device cuda")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the flags given (the rest keep the dataclass defaults)."""
    given = {name: getattr(args, name) for name in TrainConfig.field_names() if hasattr(args, name)}
    if getattr(args, "amp", False):
        if given.get("precision", "amp_fp16") != "amp_fp16":
            raise ConfigError(f"--amp means --precision amp_fp16; it contradicts --precision "
                              f"{given['precision']}")
        given["precision"] = "amp_fp16"
    if getattr(args, "cuda", False):
        device = given.get("device", "cuda")
        if not str(device).startswith("cuda"):
            raise ConfigError(f"--cuda contradicts --device {device}")
        given["device"] = device
    return TrainConfig(**given)  # validated there: every flag, before any work starts
