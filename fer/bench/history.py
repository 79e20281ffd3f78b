"""`fer history`: every run of main kept on a data branch of a git repository.

The branch (``perf-history`` by default) holds one JSON file per run and nothing else, laid
out as the perf suite saves runs under ``.benchmarks/``, so a pulled copy is read by ``fer
compare --history`` and ``fer dashboard`` as it is::

    <hardware class>/<scale>/<UTC time>-<commit>-<fingerprint[:12]>.json

The hardware class is the run's own (:func:`fer.bench.storage.machine_key`, the name
``fer.gpu.hardware_class`` gave it), as the dashboard names its folder; the scale is its
benchmarks' (``smoke``, ``full``, ...; a run without one sits directly under its class). The
name starts with the run's time, so names sort oldest first, and ends with the run's
fingerprint (the digest of its document), so two runners never write the same name, and a
run already on the branch is recognised and skipped.

Every command works in a temporary bare repository (never the user's checkout, its index or
its branches): fetch the branch's tip, build one commit on it with a private index (adding or
removing files only: no merge can conflict), push it. A push rejected because another runner
pushed first is built again on the new tip and retried, a bounded number of times with a
short jittered backoff. Runs are validated once, where they enter (:func:`read_runs`), before
any git command; nothing is pruned unless :func:`prune` is asked to.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fer.atomic import atomic_open
from fer.bench.dashboard import unique_slug
from fer.bench.storage import Run, load_run, machine_key
from fer.errors import FERError, printable

#: pushes tried before giving up while other runners keep pushing first
PUSH_ATTEMPTS = 10
#: the wait before retry i is uniform in [0, min(BACKOFF_CAP_S, BACKOFF_S * 2**i)] (full jitter)
BACKOFF_S, BACKOFF_CAP_S = 0.05, 2.0
#: a run's file name on the branch
RUN_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<commit>[0-9a-z]+)-(?P<fp>[0-9a-f]{12})\.json$")
STAMP = "%Y%m%dT%H%M%SZ"
#: git's words for a push that lost a race (another runner's push landed first)
_RACE = re.compile(r"fetch first|non-fast-forward|cannot lock ref|failed to update ref|"
                   r"failed to lock|unable to (create|lock)|incorrect old value|stale info", re.I)
#: variables that would point git at the user's repository (set inside a hook, say)
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
              "GIT_PREFIX", "GIT_SHALLOW_FILE")
_TIP = "refs/fer/tip"


class HistoryError(FERError):
    """A history command that cannot go on: a run that cannot join, a remote or branch that
    cannot be used, pushes that kept losing to other runners."""


def shown(url: str) -> str:
    """``url`` without a password or token (``https://x-access-token:...@host``)."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", url)


# ------------------------------------------------------------------ runs and their names --

def read_runs(paths: Iterable[str | Path]) -> tuple[list[Run], list[str]]:
    """The runs to add, each validated once (:func:`~fer.bench.storage.load_run`), and notes;
    a file that cannot join a history raises, naming the file and the fix."""
    runs: list[Run] = []
    notes: list[str] = []
    seen: dict[str, Path] = {}
    for path in paths:
        run = load_run(path)  # BenchmarkFileError: not JSON, not a run; names file and field
        if run.interrupted:
            raise HistoryError(f"{run.path}: an interrupted run (stopped before the suite's end, "
                               f"{len(run.benchmarks)} benchmark(s)); a history holds complete "
                               "runs only: run the suite to its end, or leave the file out")
        if not run.datetime:
            raise HistoryError(f"{run.path}: has no datetime, and a history orders its runs by "
                               "it; pass the file pytest-benchmark wrote (--benchmark-json or "
                               "--benchmark-autosave)")
        if run.fingerprint in seen:
            notes.append(f"{run.path}: the same run as {seen[run.fingerprint]}; added once")
            continue
        seen[run.fingerprint] = run.path
        runs.append(run)
    return runs, notes


def class_folder(name: str) -> str:
    """The branch's (and the dashboard's) folder of a hardware class."""
    return unique_slug(name)


def run_path(run: Run) -> str:
    """Where ``run`` lives on the branch (see the module's docstring)."""
    parts = [class_folder(str(machine_key(run.machine_info)["hardware"] or "unknown"))]
    scales = {s["name"] for b in run.benchmarks.values()
              if isinstance(s := b.extra_info.get("scale"), dict) and isinstance(s.get("name"), str)}
    if len(scales) == 1 and (scale := scales.pop()):
        parts.append(unique_slug(scale))
    when = dt.datetime.fromisoformat(run.datetime)  # checked by storage
    when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    commit = str((run.commit_info or {}).get("id") or "")
    commit = commit[:12] if re.fullmatch(r"[0-9a-f]{7,64}", commit) else "nocommit"
    stamp = when.astimezone(dt.timezone.utc).strftime(STAMP)
    return "/".join([*parts, f"{stamp}-{commit}-{run.fingerprint[:12]}.json"])


def _runs_on(files: Iterable[str]) -> dict[str, str]:
    """fingerprint[:12] -> path, of the runs in a tree listing."""
    out = {}
    for path in files:
        match = RUN_NAME.match(PurePosixPath(path).name)
        if match:
            out[match["fp"]] = path
    return out


# ---------------------------------------------------------------------- the git side --

class _Repo:
    """A temporary bare repository that fetches the branch's tip, builds commits on it with
    a private index and pushes them; git is run as a subprocess, never in the user's repo.
    Without ``blobs`` it is a blobless partial clone: the tip's trees (the names of its runs)
    are fetched, not the runs themselves, so a push costs the same for a history of any
    length (a server without partial clone sends the blobs anyway)."""

    def __init__(self, remote: str, branch: str, folder: Path, *, blobs: bool) -> None:
        if shutil.which("git") is None:
            raise HistoryError("git is not installed (fer history runs git); install git, or "
                               "put it on PATH")
        self.remote, self.branch, self.dir = remote, branch, folder
        self.env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
        self.env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        for key, value in (("GIT_AUTHOR_NAME", "fer history"),
                           ("GIT_AUTHOR_EMAIL", "fer-history@localhost")):
            self.env.setdefault(key, value)
            self.env.setdefault(key.replace("AUTHOR", "COMMITTER"), self.env[key])
        self.git("init", "-q", "--bare")
        self.git("config", "remote.origin.url", remote)
        self.git("config", "core.hooksPath", str(folder / "no-hooks"))  # no global hook runs here
        if not blobs:
            for key, value in (("core.repositoryFormatVersion", "1"),
                               ("extensions.partialClone", "origin"),
                               ("remote.origin.promisor", "true"),
                               ("remote.origin.partialCloneFilter", "blob:none")):
                self.git("config", key, value)
        self.filter = [] if blobs else ["--filter=blob:none"]
        if self.git("check-ref-format", f"refs/heads/{branch}", check=False).returncode:
            raise HistoryError(f"--branch {branch}: not a valid git branch name; pass one such "
                               "as perf-history")

    def git(self, *args: str, data: bytes | None = None, check: bool = True,
            index: Path | None = None) -> subprocess.CompletedProcess:
        env = self.env if index is None else {**self.env, "GIT_INDEX_FILE": str(index)}
        done = subprocess.run(["git", f"--git-dir={self.dir}", *args], input=data, env=env,
                              capture_output=True)
        if check and done.returncode:
            raise HistoryError(f"git {args[0]} failed on {self.branch} of {shown(self.remote)}: "
                               f"{_git_says(done)}")
        return done

    def out(self, *args: str, **kw) -> str:
        return self.git(*args, **kw).stdout.decode("utf-8", "surrogateescape").strip()

    def fetch(self) -> str | None:
        """The branch's tip on the remote, fetched (None: the remote has no such branch)."""
        done = self.git("fetch", "-q", "--no-tags", "--depth=1", *self.filter, "origin",
                        f"+refs/heads/{self.branch}:{_TIP}", check=False)
        if done.returncode == 0:
            return self.out("rev-parse", _TIP)
        if "couldn't find remote ref" in done.stderr.decode("utf-8", "replace"):
            self.git("update-ref", "-d", _TIP)
            return None
        raise HistoryError(f"--remote {shown(self.remote)}: cannot fetch from it "
                           f"({_git_says(done)}); check the URL and your access to it")

    def files(self, tip: str | None) -> dict[str, str]:
        """path -> blob id of every file on ``tip``."""
        if tip is None:
            return {}
        listing = self.git("ls-tree", "-r", "-z", "--full-tree", tip).stdout
        out = {}
        for entry in listing.decode("utf-8", "surrogateescape").split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                mode, kind, blob = meta.split()
                if kind == "blob" and mode in ("100644", "100755"):
                    out[path] = blob
        return out

    def store(self, paths: list[Path]) -> list[str]:
        """The blob ids of these files, written into the repository."""
        return self.out("hash-object", "-w", "--", *(str(p.resolve()) for p in paths)).split()

    def read(self, blobs: Iterable[str]) -> Iterator[bytes]:
        """The content of each blob, one at a time (one ``git cat-file --batch``: a history
        of any length is never held in memory at once)."""
        with subprocess.Popen(["git", f"--git-dir={self.dir}", "cat-file", "--batch"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env) as cat:
            for blob in blobs:
                cat.stdin.write(f"{blob}\n".encode())
                cat.stdin.flush()  # git answers each object as it is asked (no --buffer)
                header = cat.stdout.readline().split()
                if len(header) != 3:
                    raise HistoryError(f"{self.branch} of {shown(self.remote)}: the fetched tip "
                                       f"lacks the file {blob}; pull again")
                yield cat.stdout.read(int(header[2]))
                cat.stdout.read(1)  # the newline after each object
            cat.stdin.close()

    def commit(self, tip: str | None, add: dict[str, str], remove: list[str], message: str) -> str:
        """A commit on ``tip`` (or a first, parentless one) with ``add`` (path -> blob) written
        and ``remove`` deleted."""
        index = self.dir / "fer-index"
        index.unlink(missing_ok=True)
        self.git("read-tree", *([tip] if tip else ["--empty"]), index=index)
        lines = [f"100644 blob {blob}\t{path}" for path, blob in sorted(add.items())]
        lines += [f"0 {'0' * 40}\t{path}" for path in remove]
        self.git("update-index", "-z", "--index-info",
                 data="".join(f"{line}\0" for line in lines).encode("utf-8", "surrogateescape"),
                 index=index)
        tree = self.out("write-tree", "--missing-ok", index=index)  # blobs of a blobless clone
        return self.out("commit-tree", tree, *(["-p", tip] if tip else []), "-m", message)

    def push(self, commit: str) -> bool:
        """Push ``commit`` as the branch; False when another runner pushed first."""
        done = self.git("push", "-q", "origin", f"{commit}:refs/heads/{self.branch}", check=False)
        if done.returncode == 0:
            return True
        if _RACE.search(done.stderr.decode("utf-8", "replace")):
            return False
        raise HistoryError(f"the push to {self.branch} of {shown(self.remote)} was refused "
                           f"({_git_says(done)}); check your write access to the repository")


def _git_says(done: subprocess.CompletedProcess) -> str:
    """git's own reason, one line: its first fatal/error line, else its last line."""
    lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    said = next((ln for ln in lines if ln.startswith(("fatal:", "!", "error:"))),
                lines[-1] if lines else f"exit {done.returncode}")
    return printable(shown(said))


#: an edit of the branch: path -> blob to add, paths to remove, the commit message
Edit = tuple[dict[str, str], list[str], str]


@dataclass
class Update:
    commit: str | None  # None: nothing to change (or a dry run)
    attempts: int


def _update(repo: _Repo, edit: Callable[[dict[str, str]], Edit | None], *,
            dry_run: bool = False) -> Update:
    """Apply ``edit`` (of the files on the newest tip) as one commit and push it; when another
    runner pushed first, apply it again on the new tip, at most PUSH_ATTEMPTS times."""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        tip = repo.fetch()
        change = edit(repo.files(tip))
        if change is None or dry_run:
            return Update(None, attempt)
        commit = repo.commit(tip, *change)
        if repo.push(commit):
            return Update(commit, attempt)
        if attempt < PUSH_ATTEMPTS:
            time.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_S * 2 ** attempt)))
    raise HistoryError(f"{repo.branch} of {shown(repo.remote)}: the push was rejected "
                       f"{PUSH_ATTEMPTS} times, other runners kept pushing first; run the "
                       "command again (nothing was pushed)")


@contextmanager
def _temporary(remote: str, branch: str, *, blobs: bool = False) -> Iterator[_Repo]:
    with tempfile.TemporaryDirectory(prefix="fer-history-") as folder:
        yield _Repo(remote, branch, Path(folder) / "repo.git", blobs=blobs)


# ------------------------------------------------------------------------ the commands --

@dataclass
class Pushed:
    added: list[tuple[Path, str]] = field(default_factory=list)  # (run file, path on the branch)
    present: list[tuple[Path, str]] = field(default_factory=list)  # already there: skipped
    notes: list[str] = field(default_factory=list)
    commit: str | None = None
    attempts: int = 0


def push(paths: Iterable[str | Path], remote: str, branch: str) -> Pushed:
    """Add the runs at ``paths`` to ``branch`` of ``remote`` (created, orphan, if missing),
    one commit; a run already there (same fingerprint) is skipped. Every file is validated
    before git runs: a bad one raises and nothing is pushed."""
    runs, notes = read_runs(paths)
    result = Pushed(notes=notes)
    with _temporary(remote, branch) as repo:
        blobs = dict(zip([r.fingerprint for r in runs], repo.store([r.path for r in runs])))

        def edit(files: dict[str, str]) -> Edit | None:
            there = _runs_on(files)
            new = [r for r in runs if r.fingerprint[:12] not in there]
            result.present = [(r.path, there[r.fingerprint[:12]]) for r in runs
                              if r.fingerprint[:12] in there]
            result.added = [(r.path, run_path(r)) for r in new]
            if not new:
                return None
            names = [path for _, path in result.added]
            return ({run_path(r): blobs[r.fingerprint] for r in new}, [],
                    f"fer history: add {len(new)} run(s)\n\n" + "\n".join(names) + "\n")

        update = _update(repo, edit)
    result.commit, result.attempts = update.commit, update.attempts
    return result


@dataclass
class Pulled:
    exists: bool  # False: the remote has no such branch yet (nothing to pull)
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0  # runs already in the folder, byte for byte
    classes: list[str] = field(default_factory=list)  # every hardware class on the branch
    histories: list[str] = field(default_factory=list)  # the folders pulled (class[/scale])


def _safe(path: str) -> bool:
    return path.endswith(".json") and all(p not in ("", ".", "..") for p in path.split("/"))


def pull(folder: str | Path, remote: str, branch: str, hardware_class: str | None = None) -> Pulled:
    """Write the runs on ``branch`` of ``remote`` (of one hardware class, if given) into
    ``folder``, as the branch lays them out; files of the folder that the branch lacks are
    left alone, a run already there is not written again."""
    folder = Path(folder)
    with _temporary(remote, branch, blobs=True) as repo:
        tip = repo.fetch()
        files = {p: blob for p, blob in repo.files(tip).items() if _safe(p)}
        result = Pulled(exists=tip is not None, classes=sorted({p.split("/")[0] for p in files}))
        if hardware_class is not None:
            files = {p: b for p, b in files.items() if p.split("/")[0] == class_folder(hardware_class)}
        folder.mkdir(parents=True, exist_ok=True)
        paths = sorted(files)
        for path, data in zip(paths, repo.read(files[p] for p in paths), strict=True):
            target = folder.joinpath(*path.split("/"))
            if target.is_file() and target.read_bytes() == data:
                result.unchanged += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(target, "wb") as f:
                f.write(data)
            result.written.append(target)
    result.histories = sorted({str(PurePosixPath(p).parent) for p in files})
    return result


@dataclass
class Pruned:
    removed: list[str] = field(default_factory=list)  # paths on the branch
    kept: int = 0
    commit: str | None = None
    attempts: int = 0


def prune(remote: str, branch: str, *, keep: int | None = None, keep_days: int | None = None,
          hardware_class: str | None = None, dry_run: bool = False,
          now: dt.datetime | None = None) -> Pruned:
    """Remove runs from ``branch``: in each history (a hardware class and scale, or one class
    with ``hardware_class``), every run that no policy given keeps — ``keep``: the newest N,
    ``keep_days``: those made in the last N days. ``dry_run``: say what would go."""
    if keep is None and keep_days is None:
        raise HistoryError("say what to keep: --keep N (the newest N runs of each hardware "
                           "class) and/or --keep-days N (the runs of the last N days)")
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = (now - dt.timedelta(days=keep_days)).strftime(STAMP) if keep_days is not None else None
    wanted = class_folder(hardware_class) if hardware_class is not None else None
    result = Pruned()

    def edit(files: dict[str, str]) -> Edit | None:
        histories: dict[str, list[str]] = {}
        for path in files:
            p = PurePosixPath(path)
            if RUN_NAME.match(p.name) and wanted in (None, p.parts[0]):
                histories.setdefault(str(p.parent), []).append(path)
        result.removed = []
        for paths in histories.values():
            paths.sort(key=lambda p: PurePosixPath(p).name)  # the time first: oldest first
            for age, path in enumerate(reversed(paths)):  # age 0: the newest
                kept = (keep is not None and age < keep) or \
                       (cutoff is not None and PurePosixPath(path).name[:len(cutoff)] >= cutoff)
                if not kept:
                    result.removed.append(path)
        result.removed.sort()
        result.kept = sum(map(len, histories.values())) - len(result.removed)
        if not result.removed:
            return None
        policy = ", ".join(f"{flag} {n}" for flag, n in (("--keep", keep), ("--keep-days", keep_days))
                           if n is not None)
        return ({}, result.removed, f"fer history: prune {len(result.removed)} run(s) ({policy})\n\n"
                + "\n".join(result.removed) + "\n")

    with _temporary(remote, branch) as repo:
        update = _update(repo, edit, dry_run=dry_run)
    result.commit, result.attempts = update.commit, update.attempts
    return result
