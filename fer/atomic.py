"""Atomic file writes: a temp file in the target's folder, then ``os.replace``.

An interrupted run never leaves a torn checkpoint, cache, baseline or report:
readers see the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fer.errors import ConfigError

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on success it replaces ``path``."""
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open writes: mode must be 'wb' or 'w'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give it normal permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_path(path: str | os.PathLike, flag: str, *, folder: bool = False) -> None:
    """Raise ConfigError, naming ``flag``, unless ``path`` can be written — before any work.

    ``folder``: ``path`` is a folder to write into (``--checkpoint-dir``), else a file
    (``--metrics-json``). The nearest existing ancestor must be a writable folder (the
    missing ones are created at write time); an existing ``path`` must be of the right kind.
    """
    if str(path) == "":  # Path("") would be "." — the current folder, silently
        raise ConfigError(f"{flag}: the path is empty; pass a {'folder' if folder else 'file'} path")
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ConfigError(f"{flag} {path}: is a file, not a folder; pass a folder path")
        if not folder and path.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; pass a file path (e.g. "
                              f"{path / 'out.json'})")
    else:
        parent = path.absolute().parent
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            raise ConfigError(f"{flag} {path}: {existing} is a file, not a folder, so nothing can "
                              "be written under it; choose another path")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {path}: cannot write under {existing} (permission "
                              "denied); choose another path")
    target = path if folder else path.parent
    try:  # what the command would create anyway, now: /proc and read-only mounts fail here
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".fer-check-"):
            pass  # a file can be written there (root passes os.access everywhere)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror}); choose another "
                          "path") from None


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temp files :func:`atomic_open` left beside ``path`` when a run was killed
    mid-write (``.<name>.*.tmp``); returns what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


LOCK_NAME = ".fer-train.lock"


def lock_folder(folder: str | Path):
    """Hold ``folder`` for this process: a second `fer train` into the same --checkpoint-dir
    (which would replace this run's checkpoint with its own) is refused while this one runs.
    An advisory lock on a file in the folder, released when the process ends, however it
    ends; the returned file must be kept open for as long as the run."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / LOCK_NAME, "a+")  # noqa: SIM115 - held for the run's lifetime
    except OSError as exc:
        raise ConfigError(f"--checkpoint-dir {folder}: cannot use it ({exc.strerror}); pass "
                          "another folder") from None
    try:
        if fcntl is not None:  # POSIX; elsewhere (Windows) runs are not locked
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"--checkpoint-dir {folder}: another fer train ({holder}) is writing "
                          "its checkpoints there; wait for it to end, or pass another folder") \
            from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
