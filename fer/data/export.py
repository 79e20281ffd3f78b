"""Write FERData in fer2013.csv format (``emotion,pixels,Usage``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.atomic import atomic_open
from fer.data.dataset import SPLITS, USAGE_TO_SPLIT, FERData
from fer.errors import FERDataError

_SPLIT_TO_USAGE = {split: usage for usage, split in USAGE_TO_SPLIT.items()}


def pixel_strings(images: np.ndarray) -> list[bytes]:
    """Each image as FER2013's space-separated decimal pixel text, vectorised."""
    flat = images.reshape(len(images), -1).astype(np.int32)
    n, p = flat.shape
    chars = np.empty((n, p, 4), dtype=np.uint8)
    chars[..., 0] = flat // 100 + 48
    chars[..., 1] = flat // 10 % 10 + 48
    chars[..., 2] = flat % 10 + 48
    chars[..., 3] = ord(" ")
    keep = np.ones((n, p, 4), dtype=bool)
    keep[..., 0] = flat >= 100
    keep[..., 1] = flat >= 10
    keep[:, -1, 3] = False  # no space after a row's last pixel
    text = chars[keep].tobytes()
    ends = np.cumsum(keep.reshape(n, -1).sum(axis=1))
    starts = np.concatenate(([0], ends[:-1]))
    return [text[s:e] for s, e in zip(starts.tolist(), ends.tolist())]


def write_fer2013_csv(data: FERData, path: str | Path) -> None:
    """Write ``data`` as a fer2013.csv file, atomically (temp file, then rename)."""
    path = Path(path)
    if (data.labels < 0).any():
        raise FERDataError(f"{path}: cannot write unlabeled rows in fer2013.csv format")
    usages = [_SPLIT_TO_USAGE[s].encode() for s in SPLITS]
    lines = [b"emotion,pixels,Usage"]
    for label, pixels, split in zip(data.labels.tolist(), pixel_strings(data.images),
                                    data.splits.tolist()):
        lines.append(b"%d,%s,%s" % (label, pixels, usages[split]))
    try:
        with atomic_open(path) as f:
            f.write(b"\n".join(lines) + b"\n")
    except OSError as exc:
        raise FERDataError(f"{path}: cannot write here ({exc.strerror}); choose another --out") from None
