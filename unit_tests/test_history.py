"""`fer history`: runs kept on a data branch, end to end against a local bare repository."""

import importlib.util
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from fer.bench import history
from fer.bench.storage import load_history, load_run
from fer.cli import main
from unit_tests.helpers import HISTORY, make_run

ROOT = Path(__file__).resolve().parents[1]
CLASS = "cpu-AMD_EPYC-2c"  # the hardware class of the fixtures' machine_info
NAME = re.compile(r"^cpu-AMD_EPYC-2c/\d{8}T\d{6}Z-[0-9a-z]+-[0-9a-f]{12}\.json$")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def on_branch(repo: Path, branch: str = "perf-history") -> list[str]:
    done = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", branch],
                          capture_output=True, text=True)
    return done.stdout.split() if done.returncode == 0 else []


@pytest.fixture
def remote(tmp_path):
    """A bare repository that allows partial clone (as GitHub does)."""
    path = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    git(path, "config", "uploadpack.allowFilter", "true")
    return path


def runs(folder: Path, n: int, *, start: int = 0, prefix: str = "run") -> list[Path]:
    """n small runs of two benchmarks, a day apart, each of another commit."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        w = 1 + 0.01 * (i % 3)
        out.append(make_run(folder / f"{prefix}{i}.json", {"a[1]": [1.0 * w] * 3, "b[1]": [0.5 * w] * 3},
                            when=f"2026-03-{i + 1:02d}T10:00:00", commit=f"{i:02d}ab" * 10))
    return out


def fer(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_push_pull_then_compare_and_dashboard_read_the_pulled_folder(tmp_path, remote, capsys):
    files = runs(tmp_path / "runs", 5)
    rc, out, err = fer(capsys, "history", "push", *files[:3], "--remote", remote)
    assert rc == 0 and "pushed 3 run(s) to branch perf-history" in out and not err
    # a run already there (same fingerprint, even re-indented) is skipped with a note
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(json.loads(files[0].read_text()), indent=4))
    rc, out, err = fer(capsys, "history", "push", copy, *files[3:], "--remote", remote)
    assert rc == 0 and "pushed 2 run(s)" in out
    assert f"note: {copy}: already on perf-history as {CLASS}/" in err
    names = on_branch(remote)
    assert len(names) == 5 and all(NAME.match(n) for n in names)
    assert sorted(names) == names and names[0].startswith(f"{CLASS}/20260301T100000Z-00ab00ab00ab-")
    # an orphan branch of two commits, each adding files
    assert git(remote, "rev-list", "--count", "perf-history").strip() == "2"
    assert git(remote, "rev-list", "--max-parents=0", "perf-history").count("\n") == 1

    pulled = tmp_path / "pulled"
    rc, out, _ = fer(capsys, "history", "pull", pulled, "--remote", remote)
    assert rc == 0 and "pulled 5 run(s)" in out and f"fer compare --history {pulled / CLASS}" in out
    assert sorted(str(p.relative_to(pulled)) for p in pulled.rglob("*.json")) == names
    assert [r.fingerprint for r in load_history(pulled)] == \
        [load_run(f).fingerprint for f in files]  # every run, oldest first, byte for byte
    rc, out, _ = fer(capsys, "history", "pull", pulled, "--remote", remote)
    assert rc == 0 and "pulled 0 run(s)" in out and "(5 already there)" in out

    new = make_run(tmp_path / "new.json", {"a[1]": [1.5] * 3, "b[1]": [0.5] * 3},
                   when="2026-04-01T10:00:00")
    assert fer(capsys, "compare", "--history", pulled / CLASS)[0] == 0
    rc, out, _ = fer(capsys, "compare", pulled, new)
    assert rc == 0 and "regressed" in out
    rc, out, _ = fer(capsys, "dashboard", pulled, "--out", tmp_path / "site")
    assert rc == 0 and "for 5 runs of 1 hardware class" in out
    assert (tmp_path / "site" / CLASS / "comparison.html").is_file()


def test_the_users_checkout_is_never_touched(tmp_path, remote, capsys, monkeypatch):
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "init", "-q", "-b", "main", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=x", "-c", "user.email=x@y",
                    "commit", "-q", "--allow-empty", "-m", "code"], check=True)
    before = {p: p.read_bytes() for p in (checkout / ".git").rglob("*") if p.is_file()}
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("GIT_DIR", str(checkout / ".git"))  # as inside a git hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(checkout / ".git" / "index"))
    files = runs(tmp_path / "runs", 2)
    assert fer(capsys, "history", "push", *files, "--remote", remote)[0] == 0
    assert fer(capsys, "history", "pull", "pulled", "--remote", remote)[0] == 0
    after = {p: p.read_bytes() for p in (checkout / ".git").rglob("*") if p.is_file()}
    assert after == before and len(on_branch(remote)) == 2


def _interrupted(path: Path) -> Path:
    payload = json.loads(make_run(path, {"a[1]": [1.0] * 3}).read_text())
    payload["fer_session"] = {"interrupted": True}
    path.write_text(json.dumps(payload))
    return path


def _undated(path: Path) -> Path:
    payload = json.loads(make_run(path, {"a[1]": [1.0] * 3}).read_text())
    del payload["datetime"]
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.parametrize("make,says", [
    (lambda p: p.write_text("{not json") and p, "not a readable JSON file"),
    (lambda p: p.write_text((HISTORY / "foreign.json").read_text()) and p,
     "not a pytest-benchmark run"),
    (_interrupted, "an interrupted run"),
    (_undated, "has no datetime"),
    (lambda p: p, "no such file"),
])
def test_a_bad_run_stops_the_push_with_one_line_and_nothing_is_pushed(tmp_path, remote, capsys,
                                                                        make, says):
    good = runs(tmp_path / "runs", 1)[0]
    bad = make(tmp_path / "bad.json")
    rc, out, err = fer(capsys, "history", "push", good, bad, "--remote", remote)
    assert rc == 2 and not out
    assert err.count("\n") == 1 and err.startswith(f"fer history: error: {bad}") and says in err
    assert re.search(r"re-run|pass|leave the file out|remove the file", err)  # the fix
    assert on_branch(remote) == []


def test_a_remote_or_branch_that_cannot_be_used_is_one_line(tmp_path, capsys):
    good = runs(tmp_path / "runs", 1)[0]
    rc, _, err = fer(capsys, "history", "push", good, "--remote", tmp_path / "nothing.git")
    assert rc == 2 and err.count("\n") == 1 and "cannot fetch from it" in err
    assert "check the URL" in err
    rc, _, err = fer(capsys, "history", "pull", tmp_path / "out", "--remote",
                     "https://x-access-token:SECRET@127.0.0.1:9/repo.git")
    assert rc == 2 and err.count("\n") == 1 and "SECRET" not in err and "***@127.0.0.1" in err
    rc, _, err = fer(capsys, "history", "push", good, "--remote", tmp_path, "--branch", "a..b")
    assert rc == 2 and "--branch a..b: not a valid git branch name" in err


def test_a_refused_push_is_one_line_and_not_retried(tmp_path, remote, capsys):
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'read only: pull requests never write' >&2\nexit 1\n")
    hook.chmod(0o755)
    rc, _, err = fer(capsys, "history", "push", *runs(tmp_path / "runs", 1), "--remote", remote)
    assert rc == 2 and err.count("\n") == 1 and "pre-receive hook declined" in err
    assert "check your write access" in err and on_branch(remote) == []


def test_pull_says_what_is_missing_without_failing(tmp_path, remote, capsys):
    rc, out, _ = fer(capsys, "history", "pull", tmp_path / "out", "--remote", remote)
    assert rc == 0 and "does not exist yet: nothing to pull" in out
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").iterdir())
    fer(capsys, "history", "push", *runs(tmp_path / "runs", 1), "--remote", remote)
    rc, out, _ = fer(capsys, "history", "pull", tmp_path / "out", "--remote", remote,
                     "--hardware-class", "NVIDIA_H100-x8")
    assert rc == 0 and "no run of hardware class NVIDIA_H100-x8" in out and f"holds: {CLASS}" in out
    rc, out, _ = fer(capsys, "history", "pull", tmp_path / "out", "--remote", remote,
                     "--hardware-class", CLASS)
    assert rc == 0 and "pulled 1 run(s)" in out


def test_a_run_lives_under_its_hardware_class_and_scale_in_utc(tmp_path):
    payload = json.loads((HISTORY / "base.json").read_text())  # a real run: scale smoke
    payload.update(datetime="2026-05-01T12:00:00+02:00", commit_info={"id": "ab12" * 10})
    payload["machine_info"]["fer"]["hardware_class"] = "../../NVIDIA H100/x1"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(payload))
    run = load_run(path)
    where = history.run_path(run)
    assert where.endswith(f"/smoke/20260501T100000Z-ab12ab12ab12-{run.fingerprint[:12]}.json")
    assert ".." not in where.split("/") and where.count("/") == 2  # a crafted class stays one folder


def test_a_rejected_push_is_applied_again_on_the_new_tip(tmp_path, remote, monkeypatch):
    mine, theirs = runs(tmp_path / "runs", 2)
    real_push, raced = history._Repo.push, {}

    def push_after_another_runner(repo, commit):
        if not raced:  # another runner's push lands between our fetch and our push
            raced["theirs"] = None
            raced["theirs"] = history.push([theirs], str(remote), "perf-history")
        return real_push(repo, commit)

    monkeypatch.setattr(history._Repo, "push", push_after_another_runner)
    result = history.push([mine], str(remote), "perf-history")
    assert result.attempts == 2 and len(result.added) == 1
    assert len(on_branch(remote)) == 2
    assert git(remote, "rev-parse", f"{result.commit}^").strip() == raced["theirs"].commit  # linear


def test_pushes_that_keep_losing_fail_with_one_line(tmp_path, remote, capsys, monkeypatch):
    monkeypatch.setattr(history._Repo, "push", lambda repo, commit: False)
    monkeypatch.setattr(history, "BACKOFF_S", 0.0)
    rc, _, err = fer(capsys, "history", "push", *runs(tmp_path / "runs", 1), "--remote", remote)
    assert rc == 2 and err.count("\n") == 1
    assert f"rejected {history.PUSH_ATTEMPTS} times" in err and "run the command again" in err
    assert on_branch(remote) == []


def test_two_runners_pushing_at_once_lose_no_run(tmp_path, remote):
    folders = [runs(tmp_path / f"r{k}", 6, start=6 * k, prefix=f"r{k}-") for k in (0, 1)]
    results, errors = [], []

    def runner(paths):
        try:
            for path in paths:  # one push per run: the most races
                results.append(history.push([path], str(remote), "perf-history"))
        except Exception as exc:  # pragma: no cover - a failure is the test's finding
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(paths,)) for paths in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    assert len(on_branch(remote)) == 12
    assert git(remote, "rev-list", "--count", "perf-history").strip() == "12"  # a commit per run
    assert git(remote, "rev-list", "--min-parents=2", "perf-history") == ""  # no merges
    subprocess.run(["git", "--git-dir", str(remote), "fsck", "--strict"], check=True,
                   capture_output=True)
    pulled = history.pull(tmp_path / "pulled", str(remote), "perf-history")
    assert len(pulled.written) == 12 and len(load_history(tmp_path / "pulled")) == 12


def test_a_server_without_partial_clone_works_too(tmp_path, remote):
    git(remote, "config", "uploadpack.allowFilter", "false")
    first, second = runs(tmp_path / "runs", 2)
    history.push([first], str(remote), "perf-history")
    result = history.push([second, first], str(remote), "perf-history")
    assert len(result.added) == 1 and len(result.present) == 1 and len(on_branch(remote)) == 2


def test_prune_only_what_the_policy_says(tmp_path, remote, capsys):
    files = runs(tmp_path / "runs", 5)  # 2026-03-01 .. 03-05
    other = json.loads(files[0].read_text())
    other["machine_info"]["fer"]["hardware_class"] = "NVIDIA_H100-x1"
    (tmp_path / "gpu.json").write_text(json.dumps(other))
    history.push([*files, tmp_path / "gpu.json"], str(remote), "perf-history")
    rc, _, err = fer(capsys, "history", "prune", "--remote", remote)
    assert rc == 2 and "say what to keep" in err
    rc, out, _ = fer(capsys, "history", "prune", "--remote", remote, "--keep", "2", "--dry-run")
    assert rc == 0 and "would remove 3 run(s)" in out and len(on_branch(remote)) == 6
    # per hardware class: the GPU class's only run stays
    rc, out, _ = fer(capsys, "history", "prune", "--remote", remote, "--keep", "2")
    assert rc == 0 and "removed 3 run(s)" in out and "3 kept" in out
    left = on_branch(remote)
    assert len(left) == 3 and any(p.startswith("NVIDIA_H100-x1/") for p in left)
    assert [p for p in left if p.startswith(CLASS)][0].split("/")[1].startswith("20260304")
    import datetime as dt

    now = dt.datetime(2026, 3, 6, 0, 0, tzinfo=dt.timezone.utc)
    kept = history.prune(str(remote), "perf-history", keep_days=1, keep=1, now=now,
                         hardware_class=CLASS)  # either policy keeps the 03-05 run
    assert kept.removed == [p for p in left if "20260304" in p] and kept.kept == 1
    assert len(on_branch(remote)) == 2
    assert fer(capsys, "history", "prune", "--remote", remote, "--keep", "5")[1].startswith(
        "nothing to prune")


@pytest.mark.slow
def test_the_scale_benchmark_loses_nothing(capsys):
    spec = importlib.util.spec_from_file_location("history_scale",
                                                  ROOT / "benchmarks" / "history_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--runs", "4"]) == 0
    out = capsys.readouterr().out
    assert "on the branch: 4 runs, 0 lost; git fsck clean; pulled and read back: 4" in out
