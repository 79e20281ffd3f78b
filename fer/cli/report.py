"""`fer report`: charts and a markdown report from perf-suite benchmark JSON."""

from __future__ import annotations

import argparse

from fer.atomic import check_output_path
from fer.bench.report import render_report
from fer.cli.args import HelpFormatter


def cmd_report(args: argparse.Namespace) -> int:
    check_output_path(args.out, "--out", folder=True)  # before any work
    report = render_report(args.runs, args.out, allow_cross_machine=args.allow_cross_machine)
    print(f"wrote {args.out}/report.md and {len(report.charts)} charts")
    for key, finding in report.findings.items():
        print(f"  {key}: {finding}")
    if report.missing:
        print(f"  not in these runs: {', '.join(report.missing)}")
    for note in report.duplicates:
        print(f"  {note}")
    for key, why in report.not_drawn.items():
        print(f"  {key}: {len(why)} benchmark(s) not drawn (see report.md)")
    return 0


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "report", help="charts and a markdown report from perf-suite JSON",
        description="Render the study's charts (optimizers, workers, precision, profiler, "
                    "DataParallel/DDP scaling, batch size, loader) and report.md from one or "
                    "more benchmark JSON files of `pytest perf_tests --benchmark-json RUN.json`.",
        formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN.json",
                   help="benchmark JSON of the perf suite (--benchmark-json, or a saved run); "
                        "several are merged, the same run given twice is read once")
    p.add_argument("--out", default="report", metavar="DIR", help="output folder")
    p.add_argument("--allow-cross-machine", action="store_true",
                   help="merge runs of different hardware or software into one report "
                        "(each machine is named; timings across them are not comparable)")
    p.set_defaults(func=cmd_report)
