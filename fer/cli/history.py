"""`fer history push | pull | prune`: the runs of main kept on a data branch of a git repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer.atomic import check_output_path
from fer.cli.args import HelpFormatter, positive_int

DEFAULT_BRANCH = "perf-history"


def cmd_push(args: argparse.Namespace) -> int:
    # lazy: numpy (the dashboard's class folders): every fer command imports this module
    from fer.bench.history import push, shown

    result = push(args.runs, args.remote, args.branch)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for run, path in result.present:
        print(f"note: {run}: already on {args.branch} as {path}; skipped", file=sys.stderr)
    where = f"branch {args.branch} of {shown(args.remote)}"
    if result.commit is None:
        print(f"nothing to push: every run given is already on {where}")
        return 0
    tries = f", after {result.attempts - 1} rejected push(es)" if result.attempts > 1 else ""
    print(f"pushed {len(result.added)} run(s) to {where} (commit {result.commit[:12]}{tries}):")
    for run, path in result.added:
        print(f"  {path}  <- {run}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    # lazy: numpy (the dashboard's class folders): every fer command imports this module
    from fer.bench.history import pull, shown

    check_output_path(args.folder, "DIR", folder=True)  # before any work
    result = pull(args.folder, args.remote, args.branch, args.hardware_class)
    where = f"branch {args.branch} of {shown(args.remote)}"
    if not result.exists:
        print(f"{where} does not exist yet: nothing to pull (the first `fer history push` "
              "creates it)")
        return 0
    if not result.histories:
        if args.hardware_class is None:
            print(f"{where} holds no run: nothing to pull")
        else:
            held = ", ".join(result.classes) or "no run"
            print(f"no run of hardware class {args.hardware_class} on {where} (it holds: {held})")
        return 0
    print(f"pulled {len(result.written)} run(s) from {where} into {args.folder}/ "
          f"({result.unchanged} already there)")
    for history in result.histories:
        print(f"  fer compare --history {Path(args.folder) / history}")
    print(f"  fer dashboard {args.folder} --out site")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    # lazy: numpy (the dashboard's class folders): every fer command imports this module
    from fer.bench.history import prune, shown

    result = prune(args.remote, args.branch, keep=args.keep, keep_days=args.keep_days,
                   hardware_class=args.hardware_class, dry_run=args.dry_run)
    where = f"branch {args.branch} of {shown(args.remote)}"
    if not result.removed:
        print(f"nothing to prune: the policy keeps all {result.kept} run(s) on {where}")
        return 0
    done = "would remove" if args.dry_run else "removed"
    commit = f" (commit {result.commit[:12]})" if result.commit else ""
    print(f"{done} {len(result.removed)} run(s) from {where}{commit}; {result.kept} kept:")
    for path in result.removed:
        print(f"  {path}")
    return 0


def _remote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote", required=True, metavar="GIT_URL",
                   help="the git repository that holds the branch (a URL or a path; a token in "
                        "it is never printed)")
    p.add_argument("--branch", default=DEFAULT_BRANCH, help="the data branch of the history")


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "history", help="keep benchmark runs on a data branch of a git repository",
        description="A history that lasts: every run of main kept as one JSON file on a data "
                    f"branch ({DEFAULT_BRANCH}) of a git repository, under its hardware class and "
                    "scale, as the perf suite lays out .benchmarks/. push adds runs, pull writes "
                    "the history into a folder that fer compare --history and fer dashboard "
                    "read, prune removes runs by an explicit policy (nothing is removed "
                    "otherwise). Each works in a temporary repository, never in your checkout.",
        formatter_class=HelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                               parser_class=type(p))

    push = actions.add_parser(
        "push", help="add runs to the branch",
        description="Add benchmark runs to the branch (created if the remote lacks it), one "
                    "commit, each file as <hardware class>/<scale>/<UTC time>-<commit>-"
                    "<fingerprint>.json: two runners never write the same name. Every file is "
                    "validated first: a bad or interrupted run stops the command and nothing "
                    "is pushed. A run already on the branch is skipped. When another runner "
                    "pushed first, the runs are added again on the new tip and pushed again "
                    "(a few times, with a short random wait).",
        formatter_class=HelpFormatter)
    push.add_argument("runs", nargs="+", metavar="RUN.json",
                      help="benchmark runs (pytest --benchmark-json or --benchmark-autosave)")
    _remote(push)
    push.set_defaults(func=cmd_push)

    pull = actions.add_parser(
        "pull", help="write the branch's runs into a folder",
        description="Write the runs on the branch into DIR as <hardware class>/<scale>/*.json "
                    "(what fer compare --history DIR/<class>/<scale> and fer dashboard DIR "
                    "read). Runs already in DIR are not written again; files the branch lacks "
                    "are left alone. A missing branch is not an error: there is nothing to pull "
                    "yet.",
        formatter_class=HelpFormatter)
    pull.add_argument("folder", metavar="DIR", help="the folder to write the runs into")
    _remote(pull)
    pull.add_argument("--hardware-class", metavar="CLASS",
                      help="only the runs of this hardware class (e.g. NVIDIA_H100_80GB_HBM3-x1)")
    pull.set_defaults(func=cmd_pull)

    prune = actions.add_parser(
        "prune", help="remove old runs from the branch by an explicit policy",
        description="Remove the runs of each hardware class and scale that no policy given "
                    "keeps: --keep N keeps the newest N, --keep-days N those made in the last N "
                    "days; with both, a run either keeps stays. One commit; the files stay in "
                    "the branch's git history.",
        formatter_class=HelpFormatter)
    _remote(prune)
    prune.add_argument("--keep", type=positive_int, metavar="N",
                       help="keep the newest N runs of each hardware class and scale")
    prune.add_argument("--keep-days", type=positive_int, metavar="N",
                       help="keep the runs made in the last N days")
    prune.add_argument("--hardware-class", metavar="CLASS", help="prune only this hardware class")
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    prune.set_defaults(func=cmd_prune)
