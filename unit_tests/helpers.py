"""Small builders shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.data.dataset import SPLITS, USAGE_TO_SPLIT

SPLIT_TO_USAGE = {v: k for k, v in USAGE_TO_SPLIT.items()}


def fer_csv_text(images: np.ndarray, labels, splits, *, header="emotion,pixels,Usage") -> str:
    rows = [header]
    for img, label, split in zip(images, labels, splits):
        pixels = " ".join(str(int(v)) for v in img.reshape(-1))
        rows.append(f"{int(label)},{pixels},{SPLIT_TO_USAGE[SPLITS[int(split)]]}")
    return "\n".join(rows) + "\n"


def write_fer_csv(path: Path, n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, size=n)
    splits = np.arange(n) % 3
    path.write_text(fer_csv_text(images, labels, splits))
    return images, labels, splits
