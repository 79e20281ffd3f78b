"""`fer`: the command line. The only place that parses argv or prints.

One module per command (``fer.cli.train``, ``profile``, ``compare``, ``ab``, ``bisect``,
``report``, ``dashboard``, ``data``, ``history``), each with ``register(subparsers, full)``.
User mistakes (bad flags, bad files) print one line on stderr and exit 2.

The training flags are generated from TrainConfig's fields, whose choices come
from registries that need torch to build; ``main`` gives full flags only to the
command being run, so ``fer compare``, ``fer report`` and ``fer dashboard`` never import torch.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from importlib import import_module

from fer.cli.args import EXIT_USAGE, Parser
from fer.errors import FERError, printable

COMMANDS = ("train", "profile", "compare", "ab", "bisect", "report", "dashboard", "data", "history")


def build_parser(commands: Iterable[str] | None = None) -> Parser:
    """The ``fer`` parser; with ``commands``, only those get their full flags."""
    parser = Parser(prog="fer", description="Train, profile and benchmark FER models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    wanted = set(COMMANDS if commands is None else commands)
    for name in COMMANDS:
        import_module(f"fer.cli.{name}").register(sub, full=name in wanted)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    if command == "profile":
        # torch's C++ allocator warns that blocks allocated before profiling started are freed
        # during it (benign, one line per run); read by torch when it is imported, below
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FERError as exc:
        print(f"fer {args.command}: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"fer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
