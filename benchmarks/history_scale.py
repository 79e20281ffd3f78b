"""Does the perf history hold up? Runners pushing at once, and the dashboard of a long history.

Makes N runs from a real run of the suite (``docs/compare-example/run1.json``, 16 smoke
benchmarks: each copy an hour later, a commit of its own, its times moved by a few percent),
pushes them to a fresh bare repository from R runners at once — each runner a loop of
``fer history push RUN.json`` processes, one run per push, so that the pushes race — then
checks that no run was lost and the history is sound (``git fsck``; the pulled folder reads
back every run), and times ``fer dashboard`` of the pulled history.

    python benchmarks/history_scale.py                        # 100 runs, 2 runners
    python benchmarks/history_scale.py --runs 20 --out history_scale.json

Targets (issue 25): 100 runs from 2 runners, 0 lost; the dashboard of 100 runs in <= 10 s
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer.bench.storage import load_history  # noqa: E402

TEMPLATE = ROOT / "docs" / "compare-example" / "run1.json"
_SCALED = ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev", "ld15iqr", "hd15iqr",
           "total")
_RECORD_TIMES = ("wall_s", "data_wait_s", "compute_s", "host_step_s", "eval_s")


def fake_run(template: dict, i: int, rng: random.Random) -> dict:
    """Run ``i``: the template an hour later per i, another commit, times moved a little."""
    run = json.loads(json.dumps(template))
    when = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)
    run["datetime"] = when.isoformat()
    run["commit_info"] = {**run.get("commit_info", {}), "id": f"{rng.getrandbits(160):040x}"}
    shift = math.exp(rng.gauss(0, 0.02))  # the run's own speed
    for bench in run["benchmarks"]:
        f = shift * math.exp(rng.gauss(0, 0.01))
        stats = bench["stats"]
        for key in _SCALED:
            if isinstance(stats.get(key), (int, float)):
                stats[key] *= f
        stats["data"] = [x * f for x in stats.get("data") or []]
        stats["ops"] = 1 / stats["mean"]
        extra = bench.get("extra_info") or {}
        for record in extra.get("records") or []:
            for key in _RECORD_TIMES:
                if isinstance(record.get(key), (int, float)):
                    record[key] *= f
            record["images_per_s"] /= f
            for key, value in (record.get("step_s") or {}).items():
                if key != "n":
                    record["step_s"][key] = value * f
        summary = extra.get("summary") or {}
        for key in ("median_wall_s", "median_data_wait_s", "median_compute_s"):
            if isinstance(summary.get(key), (int, float)):
                summary[key] *= f
        if isinstance(summary.get("median_images_per_s"), (int, float)):
            summary["median_images_per_s"] /= f
    return run


def fer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer", *args], cwd=ROOT, capture_output=True,
                          text=True)


def runner(paths: list[Path], remote: str, pushes: list[dict]) -> None:
    """One runner: each run pushed by its own `fer history push`, one after another."""
    for path in paths:
        start = time.perf_counter()
        done = fer("history", "push", str(path), "--remote", remote)
        rejected = re.search(r"after (\d+) rejected", done.stdout)
        pushes.append({"run": path.name, "rc": done.returncode, "s": time.perf_counter() - start,
                       "rejected": int(rejected[1]) if rejected else 0,
                       "error": done.stderr.strip()[-300:] if done.returncode else ""})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100, help="runs to push, in all")
    p.add_argument("--runners", type=int, default=2, help="runners pushing at once")
    p.add_argument("--template", type=Path, default=TEMPLATE, help="the run the fakes copy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    template = json.loads(args.template.read_text())
    with tempfile.TemporaryDirectory(prefix="history-scale-") as tmp:
        work = Path(tmp)
        remote = str(work / "remote.git")
        subprocess.run(["git", "init", "-q", "--bare", remote], check=True)
        # partial clone allowed, as on GitHub: a push fetches the names of the runs, not the runs
        subprocess.run(["git", "--git-dir", remote, "config", "uploadpack.allowFilter", "true"],
                       check=True)
        paths = []
        for i in range(args.runs):
            paths.append(work / "runs" / f"run{i:03d}.json")
            paths[-1].parent.mkdir(exist_ok=True)
            paths[-1].write_text(json.dumps(fake_run(template, i, rng)))
        pushes: list[dict] = []
        threads = [threading.Thread(target=runner, args=(paths[k::args.runners], remote, pushes))
                   for k in range(args.runners)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        push_s = time.perf_counter() - start
        on_branch = subprocess.run(["git", "--git-dir", remote, "ls-tree", "-r", "--name-only",
                                    "perf-history"], capture_output=True, text=True).stdout.split()
        fsck = subprocess.run(["git", "--git-dir", remote, "fsck", "--strict"], capture_output=True,
                              text=True)
        pulled = fer("history", "pull", str(work / "history"), "--remote", remote)
        read_back = len(load_history(work / "history")) if pulled.returncode == 0 else 0
        start = time.perf_counter()
        dash = fer("dashboard", str(work / "history"), "--out", str(work / "site"))
        dashboard_s = time.perf_counter() - start
    failed = [x for x in pushes if x["rc"]]
    result = {
        "runs": args.runs, "runners": args.runners, "template": str(args.template),
        "benchmarks_per_run": len(template["benchmarks"]),
        "pushed": len(pushes) - len(failed), "failed_pushes": failed,
        "on_branch": len(on_branch), "lost": args.runs - len(on_branch), "read_back": read_back,
        "fsck_ok": fsck.returncode == 0, "push_wall_s": push_s,
        "push_s_median": statistics.median(x["s"] for x in pushes),
        "rejected_pushes": sum(x["rejected"] for x in pushes),
        "most_rejections_of_one_push": max(x["rejected"] for x in pushes),
        "dashboard_s": dashboard_s, "dashboard_ms_per_run": 1000 * dashboard_s / args.runs,
        "dashboard_ok": dash.returncode == 0,
    }
    print(f"{args.runs} runs ({result['benchmarks_per_run']} benchmarks each) pushed by "
          f"{args.runners} runners at once in {push_s:.1f} s (a push: {result['push_s_median']:.2f} "
          f"s median); {result['rejected_pushes']} pushes lost a race and were retried (at most "
          f"{result['most_rejections_of_one_push']} times for one)")
    print(f"on the branch: {len(on_branch)} runs, {result['lost']} lost; git fsck "
          f"{'clean' if result['fsck_ok'] else 'FAILED: ' + fsck.stderr.strip()[-200:]}; "
          f"pulled and read back: {read_back}")
    print(f"fer dashboard of the {args.runs}-run history: {dashboard_s:.1f} s "
          f"({result['dashboard_ms_per_run']:.0f} ms per run)"
          + ("" if dash.returncode == 0 else f"; FAILED: {dash.stderr.strip()[-300:]}"))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    ok = not failed and result["lost"] == 0 and read_back == args.runs and result["fsck_ok"] \
        and dash.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
