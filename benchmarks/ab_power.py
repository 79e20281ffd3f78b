"""How well does `fer ab` see a change of one commit? Real plants, as commits, judged on this machine.

Clones this repository into a scratch folder and commits each *plant* on top of HEAD as its
own branch: a real change of fer's code, the kind a pull request makes.

==========  ==================================================================================
plant       the commit
==========  ==================================================================================
aa          a comment (A/A: every verdict should be unchanged, no counter may move)
slow3/5/10  every training step busy-waits 3% / 5% / 10% of its own measured time
op          one more aten op per step (``inputs.sum()``); time change ~0
item        one more ``.item()`` per step (a host read: a sync on a GPU); time change ~0
stall8      every 8th step busy-waits 1.6x its own time (+20% epoch time, in a few steps)
tail20      ``Trainer.train_epoch`` busy-waits 20% of the epoch after its step loop
==========  ==================================================================================

Each trial is one ``fer ab HEAD <plant>`` (its JSON kept under ``--out``). ``--compare`` also
runs the perf suite (the same ``-k``) in checkouts of HEAD (``--history`` runs) and of each
plant, and judges each plant with today's ``fer compare`` against one baseline run and against
the history, on the same machine in the same hour. ``--bisect`` plants a 5% slowdown as commit 5
of a chain of 8 and runs ``fer bisect``. ``--busy`` runs the suite, and a ``fer ab`` A/A, each
beside a second suite running at the same time, and judges the suite run against the quiet
HEAD runs of ``--compare``. The summary prints, per plant, what each method
flagged, with the trials' spread; ``--summary-only`` reprints it from ``--out``. A second
table judges every stored trial's benchmarks again from their recorded pairs with today's
statistics (``fer ab``'s final judgement, the counters as recorded): trials of an earlier
design read the same way as new ones.

    python benchmarks/ab_power.py --out .ab-power --plants aa,slow3 --trials 5 -k optimizer
    python benchmarks/ab_power.py --out .ab-power --plants stall8,tail20 --compare -k optimizer
    python benchmarks/ab_power.py --out .ab-power --bisect -k optimizer --budget 60
    python benchmarks/ab_power.py --out .ab-power --busy -k optimizer --budget 60
    python benchmarks/ab_power.py --out .ab-power --summary-only

Time nothing else on the machine while it runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer.bench.paired import Benchmark, Paired, run_shifts  # noqa: E402
from fer.bench.stats import REGRESSED, compare  # noqa: E402
from fer.bench.storage import load_run  # noqa: E402

_WRAP = '''

# --- planted by benchmarks/ab_power.py ---
import time as _planted_time

_planted_step = Trainer._train_step


def _planted(self, inputs, targets, sums):
    start = _planted_time.perf_counter()
    _planted_step(self, inputs, targets, sums)
    elapsed = _planted_time.perf_counter() - start
{body}


Trainer._train_step = _planted
'''


def _busy(fraction: str) -> str:
    return (f"    deadline = _planted_time.perf_counter() + {fraction} * elapsed\n"
            "    while _planted_time.perf_counter() < deadline:\n        pass")


_TAIL = '''        wall = timing.now(device) - start
'''
_TAIL_PLANTED = '''        _planted_deadline = time.perf_counter() + 0.20 * (timing.now(device) - start)
        while time.perf_counter() < _planted_deadline:  # planted: work after the step loop
            pass
        wall = timing.now(device) - start
'''

PLANTS = {
    "aa": ("a comment", lambda text: text + "\n# planted: a comment, nothing else\n"),
    "slow3": ("every step +3%", lambda t: t + _WRAP.format(body=_busy("0.03"))),
    "slow5": ("every step +5%", lambda t: t + _WRAP.format(body=_busy("0.05"))),
    "slow10": ("every step +10%", lambda t: t + _WRAP.format(body=_busy("0.10"))),
    "op": ("+1 op per step", lambda t: t + _WRAP.format(body="    inputs.sum()")),
    "item": ("+1 .item() per step", lambda t: t + _WRAP.format(body="    inputs.sum().item()")),
    "stall8": ("every 8th step stalls 1.6x", lambda t: t + _WRAP.format(
        body="    if sums.steps % 8 == 0:\n        deadline = _planted_time.perf_counter() + "
             "1.6 * elapsed\n        while _planted_time.perf_counter() < deadline:\n"
             "            pass")),
    "tail20": ("+20% after the step loop", lambda t: t.replace(_TAIL, _TAIL_PLANTED, 1)),
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=ab@power",
                           "-c", "user.name=ab power", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def scratch_clone(out: Path) -> Path:
    """A clone of this repository at its HEAD (an existing clone is moved to it)."""
    repo = out / "repo"
    if not repo.exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    git(repo, "fetch", "-q", str(ROOT), "HEAD")
    git(repo, "checkout", "-q", "--detach", "FETCH_HEAD")
    return repo


def plant(repo: Path, name: str, base: str = "HEAD") -> str:
    """The branch ``plant-<name>``: ``base`` plus the plant, committed."""
    branch = f"plant-{name}"
    git(repo, "checkout", "-q", "--detach", base)
    engine = repo / "fer" / "engine.py"
    text = engine.read_text()
    planted = PLANTS[name][1](text)
    if planted == text:
        raise SystemExit(f"plant {name}: its anchor is not in fer/engine.py any more")
    engine.write_text(planted)
    git(repo, "commit", "-qam", f"plant: {PLANTS[name][0]}")
    git(repo, "branch", "-qf", branch)
    git(repo, "checkout", "-q", "--detach", base)
    return branch


def run_ab(repo: Path, base: str, candidate: str, out: Path, args) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fer", "ab", base, candidate, "--budget", str(args.budget),
           "--json", "-q"]
    if args.k:
        cmd += ["-k", args.k]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"fer ab failed ({done.returncode}): {done.stderr[-1500:]}")
    result = json.loads(done.stdout)
    result["wall_s"] = time.perf_counter() - start
    out.write_text(json.dumps(result))
    return result


def suite_process(repo: Path, rev: str, out: Path, args) -> subprocess.Popen:
    """The perf suite (``-k``) of a checkout of ``rev`` started in the background."""
    checkout = out.parent / f"checkout-{out.stem}"
    if checkout.exists():
        shutil.rmtree(checkout)
    checkout.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    cmd = [sys.executable, "-m", "pytest", "perf_tests", "--perf-scale", "smoke", "-q",
           "-p", "no:cacheprovider", f"--benchmark-json={out.resolve()}",
           "--benchmark-storage", str((out.parent / "storage").resolve())]
    if args.k:
        cmd += ["-k", args.k]
    return subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def busy(repo: Path, head: str, out: Path, args) -> None:
    """A suite run and a fer ab A/A, each beside a second suite running at the same time."""
    folder = out / "busy"
    folder.mkdir(parents=True, exist_ok=True)
    neighbour = suite_process(repo, head, folder / "neighbour-0.json", args)
    measured = suite_process(repo, head, folder / "busy-suite.json", args)
    measured.wait()
    neighbour.wait()
    neighbour = suite_process(repo, head, folder / "neighbour-1.json", args)
    time.sleep(20)  # the neighbour is past its start-up
    run_ab(repo, head, plant(repo, "aa", head), folder / "busy-ab.json", args)
    neighbour.wait()


def summarize_busy(out: Path) -> list[str]:
    folder = out / "busy"
    history = [load_run(p) for p in sorted((out / "compare").glob("base-*.json"))]
    lines = []
    if (folder / "busy-suite.json").exists() and history:
        new = load_run(folder / "busy-suite.json")
        marked = sum(b.disturbed is not None for b in new.benchmarks.values())
        for label, base in (("1 baseline run", history[-1]), (f"history of {len(history)}",
                                                              history)):
            c = compare(base, new)
            verdicts = [r.verdict for r in c.rows]
            lines.append(f"busy suite run vs a quiet {label}: "
                         + ", ".join(f"{verdicts.count(v)} {v}" for v in sorted(set(verdicts)))
                         + f"; disturbed when saved: {marked} of {len(new.benchmarks)}")
    if (folder / "busy-ab.json").exists():
        r = json.loads((folder / "busy-ab.json").read_text())
        rows = [x for x in r["rows"] if not x.get("skipped")]
        verdicts = [x["verdict"] for x in rows]
        lines.append("fer ab A/A beside a second suite: "
                     + ", ".join(f"{verdicts.count(v)} {v}" for v in sorted(set(verdicts)))
                     + f"; pairs left out: {sum(x['disturbed_pairs'] for x in rows)}, kept: "
                     f"{sum(len(x['pairs']) for x in rows)}; the run as a whole: "
                     + ", ".join(f"{s['sample']} {s['verdict']}" for s in shifts_of(r).values()))
    return ([""] + lines) if lines else []


def run_suite(repo: Path, rev: str, out: Path, args) -> Path:
    """The perf suite (``-k``) of a checkout of ``rev``, its own fer on the path."""
    done = suite_process(repo, rev, out, args).wait()
    if done != 0:
        raise SystemExit(f"the perf suite of {rev} failed (exit {done}): {out}")
    shutil.rmtree(out.parent / f"checkout-{out.stem}")
    return out


# ---------------------------------------------------------------- summary --

def _share(rows: list[dict], verdict: str) -> float:
    judged = [r for r in rows if not r.get("skipped")]
    return sum(r["verdict"] == verdict for r in judged) / max(len(judged), 1)


def shifts_of(result: dict) -> dict[str, dict]:
    """The run as a whole per sample, judged again from the stored rows by today's code (runs
    stored before the whole-epoch shift existed get it too)."""
    benches = []
    for row in result["rows"]:
        if row.get("skipped"):
            continue
        b = Benchmark(row["name"])
        b.verdict = row["verdict"]
        b.step = Paired(**row["step"]) if row.get("step") else None
        b.epoch = Paired(**row["epoch"]) if row.get("epoch") else None
        b.excess = Paired(**row["excess"]) if row.get("excess") else None
        benches.append(b)
    options = result["options"]
    found = run_shifts(benches, threshold=options["threshold"],
                       alpha=(1 - options["confidence"]) / 2)
    return {s.sample: s.to_dict() for s in found}


def summarize_ab(out: Path) -> list[str]:
    lines = ["| plant | trials | run as a whole flagged (typical step / whole epoch / excess) | "
             "benchmarks regressed (median, range) | counter alarms | unknown | time per trial "
             "(median) | run MDE, typical step (median) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in PLANTS:
        files = sorted((out / "ab").glob(f"{name}-*.json"))
        if not files:
            continue
        results = [json.loads(f.read_text()) for f in files]
        judged = [shifts_of(r) for r in results]
        runs = [j["step"] for j in judged if "step" in j]
        epochs = [j["epoch"] for j in judged if "epoch" in j]
        excess = [j["excess"] for j in judged if "excess" in j]
        flagged = (f"{sum(x['verdict'] == REGRESSED for x in runs)} / "
                   f"{sum(x['verdict'] == REGRESSED for x in epochs)} / "
                   + (f"{sum(x['verdict'] == REGRESSED and x.get('counted', True) for x in excess)}"
                      if excess else "-")
                   + f" of {len(runs)}")
        shares = [_share(r["rows"], REGRESSED) for r in results]
        counters = [sum((row.get("counters") or {}).get("verdict") == REGRESSED
                        for row in r["rows"]) for r in results]
        unknown = [_share(r["rows"], "unknown") for r in results]
        mdes = [x["mde"] for x in runs]
        whole = flagged if runs else "- (one benchmark)"
        mde = f"{100 * statistics.median(mdes):.1f}%" if mdes else "-"
        lines.append(
            f"| {name} ({PLANTS[name][0]}) | {len(results)} | {whole} | "
            f"{100 * statistics.median(shares):.0f}% ({100 * min(shares):.0f}-"
            f"{100 * max(shares):.0f}%) | {sum(c > 0 for c in counters)}/{len(results)} trials "
            f"({sum(counters)} benchmarks) | {100 * statistics.median(unknown):.0f}% | "
            f"{statistics.median(r['wall_s'] for r in results):.0f} s | {mde} |")
    names = {row.get("counters", {}).get("detail") for f in (out / "ab").glob("*.json")
             for row in json.loads(f.read_text())["rows"] if (row.get("counters") or {}).get("detail")}
    if names:
        lines += ["", "Counters named (distinct lines): "] + [f"- {n}" for n in sorted(names)]
    return lines


def rejudge(result: dict) -> tuple[list[str], dict]:
    """The benchmarks' verdicts of one stored ``fer ab`` trial, judged again from its recorded
    pairs by today's statistics (as ``fer ab`` judges at its end: the run's pooled variance and
    process noise, the step-up; a counter that regressed, or a busy benchmark, as recorded),
    and the run as a whole per sample (its RunShift, by sample)."""
    from fer.bench.paired import judge_all
    from fer.suite.ab import _priors, _process, settle

    options = result["options"]
    rows = [row for row in result["rows"] if not row.get("skipped")]
    benches = [Benchmark(row["fullname"], pairs=row.get("pairs") or [],
                         disturbed_pairs=row.get("disturbed_pairs", 0)) for row in rows]
    alpha = (1 - options["confidence"]) / 2
    judge_all([b for b in benches if len(b.pairs) >= 2], threshold=options["threshold"],
              alpha=alpha, benchmarks=len(benches), priors=_priors(benches),
              process=_process(benches))
    for b, row in zip(benches, rows):
        settle(b, (row.get("counters") or {}).get("verdict"))
    # (an inconclusive benchmark stays out of the run as a whole)
    found = run_shifts(benches, threshold=options["threshold"], alpha=alpha)
    return [b.verdict for b in benches], {s.sample: s for s in found}


def summarize_rejudged(out: Path) -> list[str]:
    lines = ["", "Judged again from the recorded pairs by today's statistics:", "",
             "| plant | trials | run as a whole regressed (typical step / whole epoch / excess) "
             "| benchmarks regressed (median, range) | improved | unchanged | unknown | trials "
             "with a false flag (A/A) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in PLANTS:
        files = sorted((out / "ab").glob(f"{name}-*.json"))
        if not files:
            continue
        both = [rejudge(json.loads(f.read_text())) for f in files]
        judged = [v for v, _ in both]
        runs = " / ".join(str(sum(s.get(sample) is not None and s[sample].verdict == REGRESSED
                                  and s[sample].counted for _, s in both))
                          for sample in ("step", "epoch", "excess"))
        regressed = [v.count(REGRESSED) / max(len(v), 1) for v in judged]
        moved = (REGRESSED, "improved")
        flagged = sum(any(x in moved for x in v)
                      or any(r.verdict in moved and r.counted for r in s.values())
                      for v, s in both)
        false = f"{flagged}/{len(both)}" if name == "aa" else "-"
        lines.append(
            f"| {name} | {len(judged)} | {runs} of {len(both)} | "
            f"{100 * statistics.median(regressed):.0f}% "
            f"({100 * min(regressed):.0f}-{100 * max(regressed):.0f}%) | "
            f"{sum(v.count('improved') for v in judged)} | "
            f"{sum(v.count('unchanged') for v in judged)} | "
            f"{sum(v.count('unknown') for v in judged)} | {false} |")
    return lines if len(lines) > 5 else []


def process_noise(out: Path) -> list[str]:
    """The A/A trials' benchmarks: the spread of their changes beyond what their pairs explain
    (the speed difference of two processes of the same code)."""
    excess = []
    for f in sorted((out / "ab").glob("aa-*.json")):
        for row in json.loads(f.read_text())["rows"]:
            step = row.get("step")
            if step and step["pairs"] >= 3:
                m = math.log1p(step["change"])
                se2 = step["noise"] ** 2 / step["pairs"]
                excess.append((m * m, se2))
    if len(excess) < 5:
        return []
    var = statistics.fmean(m for m, _ in excess) - statistics.fmean(s for _, s in excess)
    return [f"A/A: {len(excess)} benchmark changes; their mean square beyond their pairs' own "
            f"variance: process noise sd ~ {100 * max(var, 0) ** 0.5:.2f}% (fer.bench.paired."
            "PROCESS_NOISE assumes 1.6%)"]


def summarize_compare(out: Path) -> list[str]:
    folder = out / "compare"
    history = [load_run(p) for p in sorted(folder.glob("base-*.json"))]
    if not history:
        return []
    lines = ["", "| plant | fer compare, 1 baseline run: regressed | fer compare, history of "
             f"{len(history)}: regressed |", "|---|---:|---:|"]
    for name in PLANTS:
        found = sorted(folder.glob(f"{name}.json"))
        if not found:
            continue
        new = load_run(found[0])
        one = compare(history[-1], new)
        many = compare(history, new)
        lines.append(f"| {name} | {_share([r.to_dict() for r in one.rows], REGRESSED):.0%} of "
                     f"{len(one.rows)} | {_share([r.to_dict() for r in many.rows], REGRESSED):.0%}"
                     f" of {len(many.rows)} |")
    return lines


def summarize_bisect(out: Path) -> list[str]:
    f = out / "bisect.json"
    if not f.exists():
        return []
    r = json.loads(f.read_text())
    expected = r.get("expected")
    return ["", f"bisect: {len(r['commits'])} commits, culprit {str(r['culprit'])[:10]} "
            f"(planted: {str(expected)[:10]}, {'found' if r['culprit'] == expected else 'MISSED'})"
            f" in {len(r['steps'])} A/B tests, {r['seconds']:.0f} s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=".ab-power", help="folder for the clone and the results")
    p.add_argument("--plants", default="", help=f"comma-separated: {', '.join(PLANTS)}")
    p.add_argument("--trials", type=int, default=1, help="fer ab runs per plant")
    p.add_argument("-k", default=None, help="the benchmarks (fer ab -k / pytest -k)")
    p.add_argument("--budget", type=float, default=120.0, help="fer ab --budget per trial")
    p.add_argument("--processes", type=int, default=None,
                   help="fer ab --processes (default: fer ab's)")
    p.add_argument("--compare", action="store_true",
                   help="also run the suite for fer compare (HEAD --history times, each plant)")
    p.add_argument("--history", type=int, default=3, help="HEAD suite runs for --compare")
    p.add_argument("--bisect", action="store_true", help="fer bisect of a planted 5%% culprit")
    p.add_argument("--busy", action="store_true",
                   help="a suite run and a fer ab A/A, each beside a second suite")
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plants = [x for x in args.plants.split(",") if x]
    unknown = [x for x in plants if x not in PLANTS]
    if unknown:
        p.error(f"--plants: unknown {', '.join(unknown)}")
    if not args.summary_only:
        repo = scratch_clone(out)
        head = git(repo, "rev-parse", "HEAD")
        branches = {name: plant(repo, name, head) for name in plants}
        if args.compare:
            for i in range(args.history):
                if not (out / "compare" / f"base-{i}.json").exists():
                    run_suite(repo, head, out / "compare" / f"base-{i}.json", args)
        for _trial in range(args.trials):
            for name in plants:  # plants interleaved: the machine's hour is shared alike
                n = len(list((out / "ab").glob(f"{name}-*.json")))
                result = run_ab(repo, head, branches[name], out / "ab" / f"{name}-{n}.json", args)
                run = result.get("run") or {}
                print(f"{name} trial {n}: run {run.get('verdict')} "
                      f"{100 * run.get('change', 0):+.1f}%, {len(result['regressed'])} regressed, "
                      f"{result['wall_s']:.0f} s", flush=True)
        if args.compare:
            for name in plants:
                run_suite(repo, branches[name], out / "compare" / f"{name}.json", args)
        if args.busy:
            busy(repo, head, out, args)
        if args.bisect:
            chain_base = head
            expected = None
            for i in range(8):
                (repo / "notes.txt").write_text(f"commit {i}\n")
                git(repo, "add", "notes.txt")
                git(repo, "commit", "-qm", f"chain {i}")
                if i == 4:
                    engine = repo / "fer" / "engine.py"
                    engine.write_text(PLANTS["slow5"][1](engine.read_text()))
                    git(repo, "commit", "-qam", "chain: the culprit (+5% per step)")
                    expected = git(repo, "rev-parse", "HEAD")
            bad = git(repo, "rev-parse", "HEAD")
            cmd = [sys.executable, "-m", "fer", "bisect", chain_base, bad, "--budget",
                   str(args.budget), "--json", "-q"] + (["-k", args.k] if args.k else [])
            done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
            result = json.loads(done.stdout)
            result["expected"] = expected
            (out / "bisect.json").write_text(json.dumps(result))
            git(repo, "checkout", "-q", "--detach", head)
    for line in [*summarize_ab(out), *summarize_rejudged(out), *process_noise(out),
                 *summarize_compare(out),
                 *summarize_busy(out), *summarize_bisect(out)]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
