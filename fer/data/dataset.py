"""FERData: the one in-memory form every data source is read into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer.errors import FERDataError

#: FER2013's label indices, in the order of its ``emotion`` column.
FER2013_CLASSES: tuple[str, ...] = (
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
)
#: FER+ labels, in the order of the vote columns of ``fer2013new.csv``.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
#: FER2013's training-split class counts (28,709 images): the imbalance the
#: synthetic data can reproduce.
FER2013_TRAIN_COUNTS: tuple[int, ...] = (3995, 436, 4097, 7215, 4830, 3171, 4965)

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: FER2013's ``Usage`` values and the split each one feeds.
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

IMAGE_SIZE = 48
UNLABELED = -1


@dataclass(frozen=True)
class SkippedRow:
    """A row dropped in skip mode (or by the FER+ vote rules), with why."""

    line: int
    reason: str


@dataclass
class FERData:
    """Images, labels and split membership of one data source.

    ``images`` is uint8 ``[N, H, W]``; ``labels`` int64 ``[N]`` (``-1`` where a
    file has no labels); ``splits`` int8 ``[N]`` indexing :data:`SPLITS`;
    ``soft_targets`` optional float32 ``[N, C]`` vote distributions (FER+).
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    class_names: tuple[str, ...] = FER2013_CLASSES
    source: str = ""
    soft_targets: np.ndarray | None = None
    skipped: list[SkippedRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError("images must be a uint8 array [N, H, W]")
        if len(self.labels) != n or len(self.splits) != n:
            raise ValueError("images, labels and splits must have the same length")
        if self.soft_targets is not None and self.soft_targets.shape != (n, self.num_classes):
            raise ValueError("soft_targets must be [N, num_classes]")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def has_labels(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def split(self, name: str) -> FERData:
        """The rows of one split (``train``, ``val`` or ``test``), as a new FERData."""
        if name not in SPLITS:
            raise FERDataError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
        mask = self.splits == SPLITS.index(name)
        return FERData(
            images=self.images[mask],
            labels=self.labels[mask],
            splits=self.splits[mask],
            class_names=self.class_names,
            source=f"{self.source}[{name}]",
            soft_targets=None if self.soft_targets is None else self.soft_targets[mask],
        )

    def split_sizes(self) -> dict[str, int]:
        counts = np.bincount(self.splits.astype(np.int64), minlength=len(SPLITS))
        return {name: int(c) for name, c in zip(SPLITS, counts)}

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        labels = self.labels if split is None else self.labels[self.splits == SPLITS.index(split)]
        labels = labels[labels >= 0]
        counts = np.bincount(labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def summary(self) -> dict:
        """A JSON-ready description: source, size, splits, class histogram, skips."""
        per_split = {s: self.class_counts(s) for s, n in self.split_sizes().items() if n}
        return {
            "source": self.source,
            "images": len(self),
            "image_shape": list(self.image_shape),
            "classes": list(self.class_names),
            "splits": self.split_sizes(),
            "class_counts": per_split,
            "labeled": self.has_labels,
            "soft_targets": self.soft_targets is not None,
            "skipped_rows": len(self.skipped),
        }
