"""`fer dashboard`: the benchmark history as a static, offline web site."""

from __future__ import annotations

import argparse
from pathlib import Path

from fer.atomic import check_output_path
from fer.bench.stats import GateOptions
from fer.cli.args import HelpFormatter, add_baseline_options, check_last


def cmd_dashboard(args: argparse.Namespace) -> int:
    # lazy: numpy: every fer command imports this module
    from fer.bench.dashboard import build_dashboard

    check_last(args.last)
    options = GateOptions(threshold=args.threshold)
    options.check()
    check_output_path(args.out, "--out", folder=True)  # before any work
    out = Path(args.out).resolve()
    site = build_dashboard(args.history, out, last=args.last, options=options)
    runs = sum(len(c.runs) for c in site.classes)
    print(f"wrote {len(site.pages)} pages for {runs} runs of {len(site.classes)} hardware "
          f"class(es) into {out}/ ({site.regressions} regressed in the newest runs)")
    print(f"open file://{out}/index.html, or serve the folder: python -m http.server -d {out}")
    return 0


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "dashboard", help="write the benchmark history as a static web site",
        description="Write a static, offline site (HTML and inline SVG, no JavaScript) from "
                    "folders of saved runs: every benchmark group's trend per hardware class "
                    "(epoch time and images/s per run, the noise band, change points, "
                    "regressions), a page per benchmark (its runs, rounds and step breakdown), "
                    "the newest comparison and the newest report.",
        formatter_class=HelpFormatter)
    p.add_argument("history", nargs="+", metavar="HISTORY_DIR",
                   help="folders of saved runs (e.g. .benchmarks/), one or more hardware classes")
    p.add_argument("--out", default="site", metavar="DIR", help="the site's folder")

    add_baseline_options(p, threshold=GateOptions.threshold)
    p.set_defaults(func=cmd_dashboard)
