"""The ``fer`` command line (see :mod:`fer.cli.main`)."""

from fer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
