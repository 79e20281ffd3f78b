"""`fer compare`: benchmark JSON runs side by side, with a statistical gate."""

from __future__ import annotations

import argparse
import json

EXIT_REGRESSION = 1


def cmd_compare(args: argparse.Namespace) -> int:
    from fer.bench.charts import plot_trends
    from fer.bench.render import format_markdown, format_table
    from fer.bench.stats import compare
    from fer.bench.storage import CompareError, load_history, load_run

    if args.history:
        if args.runs:
            raise CompareError("give either two run files or --history DIR, not both")
        runs = load_history(args.history)
        if len(runs) < 2:
            raise CompareError(f"--history {args.history}: {len(runs)} readable run(s); "
                               "a comparison needs at least 2")
        candidate = runs[-1]
        baseline = runs[-1 - args.last:-1] if args.last else runs[:-1]
        history = runs
    else:
        if len(args.runs) != 2:
            raise CompareError("give two benchmark JSON files (BASELINE CANDIDATE), or "
                               "--history DIR")
        loaded = [load_run(p) for p in args.runs]
        for path, run in zip(args.runs, loaded):
            if run is None:
                raise CompareError(f"{path}: not a readable pytest-benchmark JSON run")
        baseline, candidate = loaded
        history = loaded
    result = compare(baseline, candidate, threshold=args.threshold, alpha=args.alpha,
                     allow_cross_machine=args.allow_cross_machine)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.markdown:
        print(format_markdown(result))
    else:
        print(format_table(result))
    if args.plot:
        for path in plot_trends(history, args.plot):
            if not args.json:
                print(f"wrote {path}")
    if args.fail_on_regression and result.regressions:
        return EXIT_REGRESSION
    return 0


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "compare", help="compare benchmark JSON runs; gate on regressions",
        description="Compare two pytest-benchmark JSON runs (BASELINE CANDIDATE), or the latest "
                    "run under --history DIR against the earlier ones. A benchmark regressed "
                    "when its median epoch time grew by at least --threshold and, where the "
                    "round times were saved (--benchmark-save-data), a Mann-Whitney U test "
                    "finds the difference significant at --alpha.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="*", metavar="RUN.json", help="baseline and candidate runs")
    p.add_argument("--history", metavar="DIR", help="a folder of saved runs (e.g. .benchmarks)")
    p.add_argument("--last", type=int, default=5,
                   help="with --history: earlier runs to pool as the baseline (0: all)")
    p.add_argument("--threshold", type=float, default=0.05, help="minimum effect, as a fraction")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the test")
    p.add_argument("--allow-cross-machine", action="store_true",
                   help="compare runs from different hardware or software (flagged)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="a markdown table (CI job summary)")
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.add_argument("--plot", metavar="DIR", help="write a trend chart per benchmark group")
    p.add_argument("--fail-on-regression", action="store_true",
                   help=f"exit {EXIT_REGRESSION} when anything regressed")
    p.set_defaults(func=cmd_compare)



