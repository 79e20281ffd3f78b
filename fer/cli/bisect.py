"""`fer bisect`: the first commit of a range where the selected benchmarks regressed."""

from __future__ import annotations

import argparse

from fer.bench.render import md_text
from fer.cli.ab import _options, _progress, _write, add_ab_options
from fer.cli.ab import format_markdown as ab_markdown
from fer.cli.ab import format_table as ab_table
from fer.cli.args import HelpFormatter
from fer.suite.ab import bisect

EXIT_NO_CULPRIT = 1


def format_bisect(result, markdown: bool = False) -> str:
    lines = [f"bisect {result.good[:10]}..{result.bad[:10]}: {len(result.commits)} commit(s), "
             f"{len(result.steps)} A/B test(s), {result.seconds:.0f} s"]
    for i, s in enumerate(result.steps, 1):
        shift = s.result.shift
        run = f", the run {100 * shift.change:+.1f}% ({shift.verdict})" if shift else ""
        lines.append(f"{'- ' if markdown else '  '}step {i}: {s.tested[:10]} vs {s.good[:10]}: "
                     f"{s.outcome} ({len(s.result.regressed)} regressed{run}; "
                     f"{s.result.seconds:.0f} s)")
    if result.culprit:
        lines.append(f"first bad commit: {result.culprit}")
        last = next(s for s in reversed(result.steps) if s.tested == result.culprit)
        lines.append("")
        lines.append(ab_markdown(last.result) if markdown else ab_table(last.result))
    else:
        lines.append(f"no culprit isolated: {result.why_not}")
    return "\n".join(md_text(x) if markdown and not x.startswith(("#", "|", "-", "*")) else x
                     for x in lines)


def cmd_bisect(args: argparse.Namespace) -> int:

    result = bisect(args.good, args.bad, _options(args), progress=_progress(args))
    _write(args, format_bisect(result, markdown=args.markdown), result.to_dict())
    return EXIT_NO_CULPRIT if result.culprit is None else 0


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "bisect", help="find the first commit of GOOD..BAD where the benchmarks regressed",
        description="Binary search over the first-parent commits after GOOD up to BAD: each step "
                    "is a `fer ab` of the newest known-good commit against the middle of the "
                    "range (regressed: the culprit is at or before it; otherwise after it; "
                    "unknown: asked once more with twice the budget). The "
                    "culprit is then shown against its parent, with its A/B table and why. "
                    "Select the benchmarks that regressed with -k: a step costs one --budget.",
        epilog="Exit 0 with the culprit named, 1 when no culprit could be isolated (a step "
               "stayed unknown within its budget, or the culprit alone does not regress), 2 on "
               "a usage error.",
        formatter_class=HelpFormatter)
    p.add_argument("good", metavar="GOOD", help="a commit where the benchmarks were fine")
    p.add_argument("bad", metavar="BAD", help="a later commit where they regressed")
    add_ab_options(p, gate=False)
    p.set_defaults(func=cmd_bisect)
