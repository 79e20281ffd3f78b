"""`fer data`: inspect data sources, write synthetic data."""

from __future__ import annotations

import argparse
import json

from fer.atomic import atomic_open, check_output_path
from fer.cli.args import HelpFormatter, Parser, add_config_flags, config_from_args, int_in
from fer.config import MAX_SYNTHETIC
from fer.errors import FERDataError


def _load_from_args(args, source: str):
    """The data source with the same flags, defaults and checks as `fer train`'s."""
    from fer.data import load_dataset  # lazy: torch/matplotlib: every fer command imports this module
    from fer.engine import resolve_device

    config = config_from_args(args).replace(data=source)
    plan = config.resolve(device=str(resolve_device(config.device)))
    return load_dataset(
        source, ferplus=config.ferplus, ferplus_mode=config.ferplus_mode,
        on_error="skip" if config.skip_bad_rows else "raise",
        synthetic_size=plan.synthetic_size, seed=config.seed, imbalance=config.imbalance,
        cache=not args.no_cache)


def _cmd_data_inspect(args) -> int:
    data = _load_from_args(args, args.source)
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
    from fer.data import make_synthetic_faces  # lazy: torch/matplotlib: every fer command imports this module
    from fer.data.export import write_fer2013_csv

    check_output_path(args.out, "--out")  # before drawing: nothing is lost at the end
    data = make_synthetic_faces(args.n, seed=args.seed, imbalance=args.imbalance)
    write_fer2013_csv(data, args.out)
    print(f"wrote {len(data)} synthetic faces to {args.out} "
          f"({', '.join(f'{k} {v}' for k, v in data.split_sizes().items())})")
    return 0


def _cmd_data_preview(args) -> int:
    """A grid of faces per class: what the model is shown."""
    import matplotlib  # lazy: torch/matplotlib: every fer command imports this module

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: torch/matplotlib: every fer command imports this module
    import numpy as np

    check_output_path(args.out, "--out")
    if args.per_class < 1:
        raise FERDataError(f"--per-class {args.per_class}: must be >= 1")
    data = _load_from_args(args, args.source)
    if not data.has_labels:
        raise FERDataError(f"{data.source}: has no labels, so no faces per class to show")
    classes = list(data.class_names)
    fig, axes = plt.subplots(len(classes), args.per_class, squeeze=False,
                             figsize=(args.per_class * 1.05, len(classes) * 1.15))
    for row, name in enumerate(classes):
        picks = np.flatnonzero(data.labels == row)[:args.per_class]
        for col in range(args.per_class):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(picks):
                ax.imshow(data.images[picks[col]], cmap="gray", vmin=0, vmax=255)
        axes[row][0].set_title(f"{name} ({int((data.labels == row).sum()):,})", fontsize=8,
                               loc="left")
    fig.suptitle(f"{data.source}: the first {args.per_class} faces of each class", fontsize=9)
    fig.tight_layout()
    with atomic_open(args.out) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    print(f"wrote {args.out}: {args.per_class} faces of each of {len(classes)} classes "
          f"from {data.source}")
    return 0


def seed_value(text: str) -> int:
    try:
        return int_in(text, 0, 2**32 - 1)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer in [0, 2**32)") from None


def per_class_count(text: str) -> int:
    return int_in(text, 1, 50)  # a grid of 7 x 700 faces took minutes and says nothing


def synthetic_count(text: str) -> int:
    return int_in(text, 1, MAX_SYNTHETIC)


def register(sub, full: bool = True) -> None:
    data = sub.add_parser("data", help="inspect data sources, write synthetic data",
                          formatter_class=HelpFormatter)
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)

    inspect = data_sub.add_parser(
        "inspect", help="print splits, sizes and class histogram of a data source",
        description="Read a data source (fer2013.csv or its Kaggle variants, an image "
                    "folder, FER+ votes with --ferplus, or 'synthetic') and summarise it.",
        formatter_class=HelpFormatter)
    inspect.add_argument("source", help="fer2013.csv, an image folder, or 'synthetic'")
    if full:  # the generated flags read registries; only the command being run needs them
        add_config_flags(inspect, "data")
    inspect.add_argument("--no-cache", action="store_true",
                         help="parse the file again, ignore the cache")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(func=_cmd_data_inspect)

    preview = data_sub.add_parser(
        "preview", help="save a grid of faces per class as a PNG",
        description="Draw the first faces of each class of a data source (the built-in "
                    "synthetic faces by default) into one PNG: a look at what is trained on.",
        formatter_class=HelpFormatter)
    preview.add_argument("source", nargs="?", default="synthetic",
                         help="fer2013.csv, an image folder, or 'synthetic'")
    preview.add_argument("--out", default="faces.png", help="the PNG to write")
    preview.add_argument("--per-class", type=per_class_count, default=10,
                         help="faces per class (at most 50)")
    if full:
        add_config_flags(preview, "data")
    preview.add_argument("--no-cache", action="store_true",
                         help="parse the file again, ignore the cache")
    preview.set_defaults(func=_cmd_data_preview)

    synth = data_sub.add_parser(
        "synth", help="write synthetic faces as a fer2013.csv-format file",
        description="Draw the built-in synthetic faces and write them in fer2013.csv "
                    "format (emotion,pixels,Usage), readable by any FER2013 reader.",
        formatter_class=HelpFormatter)
    synth.add_argument("--out", required=True, help="output CSV path")
    synth.add_argument("--n", type=synthetic_count, default=35887,
                       help="number of images (FER2013's 35,887 by default; at most 1,000,000)")
    synth.add_argument("--seed", type=seed_value, default=0, help="seed of the faces drawn")
    synth.add_argument("--imbalance", action="store_true", help="FER2013's class imbalance")
    synth.set_defaults(func=_cmd_data_synth)
