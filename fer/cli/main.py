"""`fer`: the command line. The only place that parses argv or prints.

User mistakes (bad flags, bad files) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fer.errors import FERDataError, FERError

log = logging.getLogger("fer")

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit 2 (its default is also 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------- data --

def _add_data_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ferplus", metavar="FER2013NEW_CSV",
                   help="FER+ votes (fer2013new.csv) to join onto a fer2013.csv")
    p.add_argument("--ferplus-mode", choices=("majority", "soft"), default="majority",
                   help="FER+ labels: majority vote, or vote distributions as soft targets")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="drop malformed rows (reported) instead of stopping at the first one")
    p.add_argument("--no-cache", action="store_true", help="parse the file again, ignore the cache")
    p.add_argument("--synthetic-size", type=_positive_int, default=None, metavar="N",
                   help="images in the synthetic set (default: FER2013's 35,887)")
    p.add_argument("--imbalance", action="store_true",
                   help="synthetic data with FER2013's class imbalance")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _load_from_args(args, source: str, seed: int = 0):
    from fer.data import FER2013_SIZE, load_dataset

    return load_dataset(
        source,
        ferplus=args.ferplus,
        ferplus_mode=args.ferplus_mode,
        on_error="skip" if args.skip_bad_rows else "raise",
        synthetic_size=args.synthetic_size or FER2013_SIZE,
        seed=seed,
        imbalance=args.imbalance,
        cache=not args.no_cache,
    )


def _cmd_data_inspect(args) -> int:
    data = _load_from_args(args, args.source, seed=args.seed)
    summary = data.summary()
    if args.json:
        summary["skipped"] = [{"line": s.line, "reason": s.reason} for s in data.skipped]
        print(json.dumps(summary, indent=2))
        return 0
    print(f"source   {summary['source']}")
    print(f"images   {summary['images']} of {'x'.join(map(str, summary['image_shape']))}"
          f"{' (soft targets)' if summary['soft_targets'] else ''}")
    print("splits   " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    if summary["labeled"]:
        names = summary["classes"]
        width = max(len(n) for n in names)
        splits = list(summary["class_counts"])
        print(f"\n{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in splits))
        for name in names:
            counts = "  ".join(f"{summary['class_counts'][s][name]:>7}" for s in splits)
            print(f"{name:<{width}}  {counts}")
    else:
        print("labels   none (this file has no emotion column)")
    if data.skipped:
        print(f"\nskipped  {len(data.skipped)} rows")
        for row in data.skipped[:10]:
            print(f"  line {row.line}: {row.reason}")
        if len(data.skipped) > 10:
            print(f"  ... and {len(data.skipped) - 10} more (--json lists all)")
    return 0


def _cmd_data_synth(args) -> int:
    from fer.data import make_synthetic_faces
    from fer.data.export import write_fer2013_csv

    parent = Path(args.out).resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), parent)
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise FERDataError(f"--out {args.out}: cannot write under {existing}; choose another path")
    data = make_synthetic_faces(args.n, seed=args.seed, imbalance=args.imbalance)
    write_fer2013_csv(data, args.out)
    print(f"wrote {len(data)} synthetic faces to {args.out} "
          f"({', '.join(f'{k} {v}' for k, v in data.split_sizes().items())})")
    return 0


def _build_data_parser(sub) -> None:
    data = sub.add_parser("data", help="inspect data sources, write synthetic data")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)

    inspect = data_sub.add_parser(
        "inspect", help="print splits, sizes and class histogram of a data source",
        description="Read a data source (fer2013.csv or its Kaggle variants, an image "
                    "folder, FER+ votes with --ferplus, or 'synthetic') and summarise it.")
    inspect.add_argument("source", help="fer2013.csv, an image folder, or 'synthetic'")
    _add_data_source_flags(inspect)
    inspect.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(func=_cmd_data_inspect)

    synth = data_sub.add_parser(
        "synth", help="write synthetic faces as a fer2013.csv-format file",
        description="Draw the built-in synthetic faces and write them in fer2013.csv "
                    "format (emotion,pixels,Usage), readable by any FER2013 reader.")
    synth.add_argument("--out", required=True, help="output CSV path")
    synth.add_argument("--n", type=_positive_int, default=35887, help="number of images")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--imbalance", action="store_true", help="FER2013's class imbalance")
    synth.set_defaults(func=_cmd_data_synth)


# ---------------------------------------------------------------- main --

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fer", description="Train, profile and benchmark FER models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from fer import cli_compare, cli_profile, cli_report, cli_train

    cli_train.register(sub)
    cli_profile.register(sub)
    cli_compare.register(sub)
    cli_report.register(sub)
    _build_data_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FERError as exc:
        print(f"fer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"fer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
