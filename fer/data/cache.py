"""On-disk cache of parsed datasets.

A parsed file is stored as an uncompressed ``.npz`` under the user's cache
folder (``$FER_CACHE_DIR``, else ``$XDG_CACHE_HOME/fer``, else ``~/.cache/fer``),
keyed by the file's absolute path, size and modification time plus the
parser's version and options: editing or replacing the file invalidates it.
Writes go to a temp file in the same folder and are renamed into place, so an
interrupted run never leaves a torn cache. A cache that cannot be read or
written is ignored with a warning; it never stops a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer.atomic import atomic_open
from fer.data.dataset import FERData, SkippedRow

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get("FER_CACHE_DIR"):
        return Path(os.environ["FER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fer"


def cache_path(source: Path, variant: str) -> Path:
    st = source.stat()
    key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{variant}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / f"{source.name}.{digest}.npz"


def cached_load(source: Path, variant: str, parse: Callable[[], FERData]) -> FERData:
    """Return the cached parse of ``source`` or run ``parse()`` and cache it."""
    target = cache_path(source, variant)
    if target.is_file():
        try:
            return _read(target)
        except Exception as exc:  # a torn or foreign cache file: re-parse
            log.warning("ignoring unreadable cache %s (%s)", target, exc)
    data = parse()
    try:
        _write(target, data)
    except OSError as exc:
        log.warning("could not write cache %s (%s); parsing will repeat next time", target, exc)
    return data


def _write(target: Path, data: FERData) -> None:
    meta = {
        "class_names": list(data.class_names),
        "source": data.source,
        "skipped": [[s.line, s.reason] for s in data.skipped],
    }
    arrays = {"images": data.images, "labels": data.labels, "splits": data.splits,
              "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    if data.soft_targets is not None:
        arrays["soft_targets"] = data.soft_targets
    with atomic_open(target) as f:
        np.savez(f, **arrays)


def _read(target: Path) -> FERData:
    with np.load(target, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        return FERData(
            images=z["images"],
            labels=z["labels"],
            splits=z["splits"],
            class_names=tuple(meta["class_names"]),
            source=meta["source"],
            soft_targets=z["soft_targets"] if "soft_targets" in z.files else None,
            skipped=[SkippedRow(int(line), reason) for line, reason in meta["skipped"]],
        )
