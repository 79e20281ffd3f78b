"""`fer compare`: benchmark runs against their baseline, with a gate that weighs the noise."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.atomic import check_output_path
from fer.bench.stats import DEFAULT_GATES, DEFAULT_NOISE, GATES, MIN_HISTORY, GateOptions, compare
from fer.bench.storage import CompareError, load_history, load_run
from fer.cli.args import HelpFormatter, add_baseline_options, check_last

EXIT_REGRESSION = 1


def _gates(text: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in text.split(",") if g.strip())


def _load_baselines(paths: list[str]) -> list:
    runs = []
    for path in paths:
        if Path(path).is_dir():
            found = load_history(path)
            if not found:
                raise CompareError(f"{path}: holds no readable benchmark run")
            runs += found
        else:
            runs.append(load_run(path))
    return sorted(runs, key=lambda r: r.order_key)


def cmd_compare(args: argparse.Namespace) -> int:
    # lazy: numpy (change points): every fer command imports this module
    from fer.bench.changepoints import MIN_SIZE, history_change_points
    from fer.bench.render import format_change_points, format_markdown, format_table

    check_last(args.last)
    options = GateOptions(threshold=args.threshold, memory_threshold=args.memory_threshold,
                          data_wait_threshold=args.data_wait_threshold,
                          gate_on=_gates(args.gate_on))
    options.check()
    if args.plot:  # checked before any work: the charts are never lost at the end
        check_output_path(args.plot, "--plot", folder=True)
    plot_dir = Path(args.plot) if args.plot else None
    if args.history:
        if args.runs:
            raise CompareError("give either runs (BASELINE... CANDIDATE) or --history DIR, not both")
        history = load_history(args.history)
        if len(history) < 2:
            raise CompareError(f"--history {args.history}: {len(history)} readable run(s); "
                               "a comparison needs at least 2")
        candidate, earlier = history[-1], history[:-1]
    else:
        if len(args.runs) < 2:
            raise CompareError("give a baseline and a candidate (BASELINE... CANDIDATE: run files "
                               "or folders of runs, the candidate last), or --history DIR")
        if Path(args.runs[-1]).is_dir():
            raise CompareError(f"{args.runs[-1]}: the candidate must be one run file (the last "
                               "argument); folders are for the baseline")
        earlier = _load_baselines(args.runs[:-1])
        candidate = load_run(args.runs[-1])
        history = [*earlier, candidate]
    baseline = earlier[-args.last:] if args.last else earlier
    result = compare(baseline, candidate, options, allow_cross_machine=args.allow_cross_machine)
    points = (history_change_points(history, alpha=1 - options.confidence,
                                    calibration=options.calibration)
              if len(history) >= 2 * MIN_SIZE else None)
    if args.json:
        payload = result.to_dict()
        payload["change_points"] = [p.to_dict() for p in points or []]
        print(json.dumps(payload, indent=2))
    else:
        print(format_markdown(result) if args.markdown else format_table(result))
        if points is not None:
            print()
            print(format_change_points(points, markdown=args.markdown))
    if plot_dir is not None:
        # lazy: numpy: every fer command imports this module
        from fer.bench.trends import plot_trends

        for path in plot_trends(history, plot_dir, points, result):
            if not args.json:  # beside markdown, the notice goes to stderr (a job summary stays clean)
                print(f"wrote {path}", file=sys.stderr if args.markdown else sys.stdout)
    if args.fail_on_regression and result.regressions:
        return EXIT_REGRESSION
    return 0


def register(sub, full: bool = True) -> None:
    cal_common, cal_specific = DEFAULT_NOISE["calibrated"]
    raw_common, raw_specific = DEFAULT_NOISE["raw"]

    p = sub.add_parser(
        "compare", help="compare benchmark runs with their baseline; gate on regressions",
        description="Judge a candidate run (the last argument) against baseline runs (files, or "
                    "folders of saved runs, e.g. .benchmarks/<hardware class>/), or the newest "
                    "run under --history DIR against the runs before it. Each benchmark's change "
                    "is weighed against the noise that applies: the spread of its rounds and its "
                    "run-to-run noise, in two parts (common to a run's benchmarks, and specific "
                    f"to one), learned from {MIN_HISTORY} or more baseline runs (else floors: "
                    f"{100 * cal_common:g}% + {100 * cal_specific:g}% calibrated, "
                    f"{100 * raw_common:g}% + {100 * raw_specific:g}% raw). Benchmarks that "
                    "moved together are judged by the run's shift (their mean change, which "
                    "averages the specific noise away); a benchmark that moved differently is "
                    "judged apart. Verdicts: regressed, improved, unchanged (shown within the "
                    "threshold) or inconclusive (too noisy to tell), with each benchmark's "
                    "minimum detectable effect. With 4 or more runs, change points over the "
                    "history are listed.",
        epilog="Columns: base s, new s = the time samples the verdict judged (geometric mean "
               "over the epochs: each epoch's typical step x its steps where every run recorded "
               "step times, else its wall time; relative to the reference workload where every "
               "run recorded it, shown in seconds at the baseline runs' machine speed; where "
               "only the whole epoch, or only the excess (the whole epoch over its typical step, "
               "a ratio), found a change, that sample's, as the method line says); change = "
               "new s / base s - 1, the benchmark's own change; interval = the confidence "
               "interval of the change judged; noise = the run-to-run noise weighed; MDE = the "
               "smallest change the verdict could have seen (80% power); img/s, wait, mem = the "
               "images/s, data-wait share (points) and peak CUDA memory changes (! where gated "
               "and regressed); judged by = whose change the verdict is about: 'run +x%' (the "
               "benchmark moved with the others and the run's shift was judged) or 'own'; "
               "verdict = regressed, improved, unchanged or inconclusive. Lines below the table: "
               "what the times are, the run's shift, the tally, the method and every reason "
               "behind the verdicts (note: ...). --json holds the same rows, with the raw "
               "median epoch times (epoch_base_s, epoch_new_s).",
        formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="baseline run files or folders, then the candidate run file")
    p.add_argument("--history", metavar="DIR", help="a folder of saved runs: the newest is judged")
    add_baseline_options(p, threshold=GateOptions.threshold)
    p.add_argument("--memory-threshold", type=float, default=0.02,
                   help="peak CUDA memory change that regresses (memory is deterministic)")
    p.add_argument("--data-wait-threshold", type=float, default=0.05,
                   help="rise of the data-wait share, in points of the epoch, that regresses")
    p.add_argument("--gate-on", default=",".join(DEFAULT_GATES),
                   help=f"metrics that can fail the gate: {', '.join(GATES)}")
    p.add_argument("--allow-cross-machine", action="store_true",
                   help="compare runs from different hardware or software (flagged)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="a markdown table (CI job summary)")
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.add_argument("--plot", metavar="DIR", help="write a trend chart per benchmark group")
    p.add_argument("--fail-on-regression", action="store_true",
                   help=f"exit {EXIT_REGRESSION} when anything regressed")
    p.set_defaults(func=cmd_compare)
