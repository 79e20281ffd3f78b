"""`fer ab`: two commits' training time, measured interleaved on this machine, judged paired."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.bench.paired import (
    IMPROVED,
    INCONCLUSIVE,
    MIN_PAIRS,
    PROCESSES,
    REGRESSED,
    UNCHANGED,
    UNKNOWN,
    VERDICTS,
)
from fer.bench.render import interval, md_name, md_text, pct
from fer.bench.storage import short_name
from fer.cli.args import HelpFormatter, int_in
from fer.suite.ab import (
    DEFAULT_BUDGET,
    MAX_PAIRS,
    MAX_PROCESSES,
    ABError,
    ABOptions,
    all_points,
    run_ab,
)
from fer.suite.scales import SCALE_CHOICES

EXIT_REGRESSION = 1


def _counts(b) -> str:
    c = b.counters or {}
    verdict = c.get("verdict")
    if verdict in (None, "not gated"):
        return "-"
    if verdict == "unchanged":
        return "same"
    return f"{100 * c['change']:+.2g}%" + ("!" if verdict == REGRESSED else "")


def _rows(result) -> list[tuple]:
    out = []
    for b in result.benchmarks:
        if b.skipped is not None:
            continue
        j = b.shown
        noise = f"{100 * j.noise:.1f}%" if j is not None and j.noise == j.noise else "-"
        mde = f"{100 * j.mde:.1f}%" if j is not None and j.mde < 10 else "-"
        by = {"counters": "counts"}.get(b.judged_by, b.judged_by or "-")
        out.append((short_name(b.name), str(len(b.pairs)), pct(j.change if j else None),
                    interval(j), noise, mde, _counts(b), by,
                    b.verdict.upper() if b.verdict == REGRESSED else b.verdict))
    return out


HEADER = ("benchmark", "pairs", "change", "interval", "noise", "MDE", "counts", "judged by",
          "verdict")


def _shift_lines(result) -> list[str]:
    out = []
    for s in result.shifts:
        verdict = s.verdict.upper() if s.verdict == REGRESSED else s.verdict
        what = {"step": "the typical step", "epoch": "the whole epoch",
                "excess": "the excess"}[s.sample]
        aside = "" if s.counted else " (not counted: the whole epoch did not move its way)"
        out.append(f"the run as a whole ({s.benchmarks} benchmarks, {what}): {pct(s.change)} "
                   f"{interval(s)}, MDE {100 * s.mde:.1f}%: {verdict}{aside}")
    return out


def _pairing_line(result) -> str | None:
    p = result.pairing
    if not p:
        return None
    return (f"pairing: one pair's epoch ratio spread {100 * p['paired_sd']:.1f}% against "
            f"{100 * p['unpaired_sd']:.1f}% for two epochs measured apart (median over "
            f"{p['benchmarks']} benchmarks: alternating kept {100 * p['variance_ratio']:.0f}% of "
            "the variance)")


def _tally(result) -> str:
    return ", ".join(f"{result.count(v)} {v}" for v in VERDICTS)


def _settings(result) -> str:
    o = result.options
    process = result.process.get("step")
    noise = f", process noise {100 * process:.1f}%" if process else ""
    return (f"threshold {100 * o.threshold:g}%, confidence {o.confidence:g} for the run as a "
            f"whole (benchmarks and samples Benjamini-Hochberg, looks Bonferroni), scale "
            f"{o.scale}, {o.processes} process pair(s) per benchmark{noise}, budget "
            f"{o.budget:g} s, spent {result.seconds:.0f} s")


def format_table(result) -> str:
    lines = [f"A (base): {result.base.label}", f"B (candidate): {result.candidate.label}"]
    rows = _rows(result)
    if rows:
        widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
        for r in [HEADER, *rows]:
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:7], widths[1:7])]
            lines.append("  ".join(cells + [r[7].ljust(widths[7]), r[8]]))
    why = [b for b in result.judged if b.why]
    if why:
        lines.append("why:")
        lines += [f"  {short_name(b.name)}: {b.why}" for b in why]
    skipped = [b for b in result.benchmarks if b.skipped is not None]
    for b in skipped:
        lines.append(f"skipped: {short_name(b.name)}: {b.skipped}")
    lines.append("")
    lines.append("change = B / A - 1 over the pairs (each pair: one epoch of A and one of B, "
                 "back to back); judged by = the sample that decided: step (the typical step x "
                 "steps), epoch (the whole epoch), excess (the whole epoch over the typical "
                 "step x steps: a stall or a tail), counts (an exact counter rose)")
    for line in (*_shift_lines(result), _pairing_line(result)):
        if line:
            lines.append(line)
    lines.append(f"{_tally(result)}  ({_settings(result)})")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


_ICON = {REGRESSED: ":x: regressed", IMPROVED: ":white_check_mark: improved",
         UNCHANGED: "unchanged", UNKNOWN: ":grey_question: unknown",
         INCONCLUSIVE: ":grey_question: inconclusive"}


def format_markdown(result) -> str:
    out = [f"### fer ab: {md_text(result.candidate.label)} vs {md_text(result.base.label)}", "",
           "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * 6 + "---|---|"]
    for r in _rows(result):
        verdict = _ICON.get(r[8].lower(), r[8])
        out.append(f"| `{md_name(r[0])}` | " + " | ".join(r[1:8]) + f" | {verdict} |")
    why = [b for b in result.judged if b.why]
    if why:
        out += ["", "**Why:**", ""]
        out += [f"- `{md_name(short_name(b.name))}`: {md_text(b.why)}" for b in why]
    out.append("")
    for line in (*_shift_lines(result), _pairing_line(result)):
        if line:
            out.append(f"**{md_text(line)}**" if line.startswith("the run") else md_text(line))
    out += ["", f"**{_tally(result)}** ({md_text(_settings(result))})"]
    out += [f"- note: {md_text(n)}" for n in result.notes]
    out += [f"- skipped: `{md_name(short_name(b.name))}`: {md_text(b.skipped)}"
            for b in result.benchmarks if b.skipped is not None]
    return "\n".join(out)


def _options(args: argparse.Namespace):
    return ABOptions(keyword=args.keyword, scale=args.perf_scale, min_pairs=args.perf_rounds,
                     budget=args.budget, threshold=args.threshold, confidence=args.confidence,
                     threads=args.threads, processes=args.processes)


def _progress(args: argparse.Namespace):
    if args.quiet:
        return lambda s: None
    return lambda s: print(s, file=sys.stderr, flush=True)


def _write(args: argparse.Namespace, text: str, payload: dict) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(text)


def cmd_ab(args: argparse.Namespace) -> int:
    if args.list:
        for name, _, _ in all_points():
            print(name)
        return 0
    if not args.base or not args.candidate:
        raise ABError("give BASE and CANDIDATE (git revisions or checkout folders), e.g. "
                      "`fer ab HEAD~1 HEAD`")
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    result = run_ab(args.base, args.candidate, _options(args), keep=keep,
                    progress=_progress(args))
    _write(args, format_markdown(result) if args.markdown else format_table(result),
           result.to_dict())
    if args.fail_on_regression and result.failed:
        return EXIT_REGRESSION
    return 0


def add_ab_options(p: argparse.ArgumentParser, gate: bool = True) -> None:
    """The options fer ab and fer bisect share (``gate``: --fail-on-regression too)."""

    p.add_argument("-k", dest="keyword", metavar="EXPRESSION",
                   help="only the benchmarks whose names match, as pytest -k "
                        "(e.g. 'optimizer and not sgd'); see fer ab --list")
    p.add_argument("--perf-scale", choices=[c for c in SCALE_CHOICES if c != "auto"],
                   default="smoke", help="the perf suite's scale each side trains at")
    p.add_argument("--perf-rounds", type=lambda t: int_in(t, 2, MAX_PAIRS), default=MIN_PAIRS,
                   help="pairs of epochs each benchmark gets before it is first judged")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="SECONDS",
                   help="time for the whole A/B test, shared among the benchmarks (each gets "
                        "at least --perf-rounds pairs)")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="a change within +-threshold is unchanged; regressed and improved need "
                        "a third of it (one benchmark is never shown the same below about "
                        "twice its process noise: 1.6%% per process pair on a 2-core CPU)")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="for the run as a whole: split over the benchmarks, samples and looks")
    p.add_argument("--threads", type=lambda t: int_in(t, 1, 1024), default=None,
                   help="torch threads of each side (default: torch's)")
    p.add_argument("--processes", type=lambda t: int_in(t, 1, MAX_PROCESSES), default=PROCESSES,
                   metavar="N",
                   help="pairs of worker processes per benchmark, taking turns: two processes "
                        "of the same code differ in speed a little, an offset that more pairs "
                        "cannot average away but more process pairs can (each costs a start "
                        "and a warm-up epoch)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="a markdown table (CI job summary)")
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    if gate:
        p.add_argument("--fail-on-regression", action="store_true",
                       help=f"exit {EXIT_REGRESSION} when a benchmark or the run as a whole "
                            "regressed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "ab", help="A/B test two commits: interleaved epochs on this machine, paired verdicts",
        description="Measure the perf suite's benchmarks for two versions of fer (BASE and "
                    "CANDIDATE: git revisions of the repository here, exported to a temporary "
                    "folder, or checkout folders used as they are) on this machine in the same "
                    "minutes: live worker processes per side (--processes pairs, taking turns), "
                    "single epochs alternating AB BA BA AB, so that the machine's drift "
                    "cancels within each pair. After each pair a benchmark is regressed or "
                    "improved (its interval excludes zero), "
                    "unchanged (its interval within +-threshold) or unknown (more pairs would "
                    "tell); it stops when it is known or its share of --budget is spent. The "
                    "typical step, the whole epoch and the excess (the whole epoch over the "
                    "typical step x steps) are judged (a stall in some steps or work after the "
                    "step loop is seen). Then both sides count a few steps "
                    "exactly (aten ops, host reads, allocations, copies): a count that rose is "
                    "a regression whatever the clock says. Pairs during which other processes "
                    "used the machine are left out (inconclusive when most were).",
        epilog="Columns: pairs = the pairs judged; change, interval = B / A - 1 over them and "
               "its interval; noise = the spread of one pair's log ratio; MDE = the smallest "
               "change these pairs could flag; counts = the exact counters (same, or the "
               "change of the first that moved, ! when gated); judged by = the sample that "
               "decided. Exit 1 with --fail-on-regression when anything regressed; 2 on a "
               "usage error.",
        formatter_class=HelpFormatter)
    p.add_argument("base", nargs="?", metavar="BASE", help="the baseline: a revision or a folder")
    p.add_argument("candidate", nargs="?", metavar="CANDIDATE",
                   help="the change: a revision or a folder (e.g. . for the working tree)")
    add_ab_options(p)
    p.add_argument("--keep", metavar="DIR",
                   help="keep the exported checkouts and the workers' logs under DIR")
    p.add_argument("--list", action="store_true", help="list the benchmarks fer ab can measure")
    p.set_defaults(func=cmd_ab)
