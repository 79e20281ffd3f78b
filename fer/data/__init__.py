"""The data layer: FER2013/FER+/folder readers, synthetic faces, augmentations, the two
loader paths (one set of :class:`LoaderOptions`), and pose data (:mod:`fer.data.pose`)."""

from __future__ import annotations

from pathlib import Path

from fer.data.dataset import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    SPLITS,
    FERData,
    SkippedRow,
)
from fer.data.fer2013 import read_fer2013_csv, read_ferplus
from fer.data.folders import read_image_folder
from fer.data.loaders import LOADERS, LoaderOptions, make_loader
from fer.data.pose import (
    COCO_KEYPOINTS,
    NUM_KEYPOINTS,
    PoseData,
    PoseDeviceLoader,
    make_pose_loader,
    make_synthetic_poses,
    parse_pose_size,
    read_coco_keypoints,
)
from fer.data.synthetic import FER2013_SIZE, make_synthetic_faces
from fer.errors import FERDataError

SYNTHETIC = "synthetic"

__all__ = [
    "COCO_KEYPOINTS", "FER2013_CLASSES", "FER2013_SIZE", "FERPLUS_CLASSES", "LOADERS",
    "NUM_KEYPOINTS", "SPLITS", "SYNTHETIC",
    "FERData", "LoaderOptions", "PoseData", "PoseDeviceLoader", "SkippedRow", "load_dataset",
    "make_loader", "make_pose_loader", "make_synthetic_faces", "make_synthetic_poses",
    "parse_pose_size", "read_coco_keypoints", "read_fer2013_csv", "read_ferplus",
    "read_image_folder",
]


def load_dataset(
    source: str | Path = SYNTHETIC,
    *,
    ferplus: str | Path | None = None,
    ferplus_mode: str = "majority",
    on_error: str = "raise",
    synthetic_size: int = FER2013_SIZE,
    seed: int = 0,
    imbalance: bool = False,
    cache: bool = True,
) -> FERData:
    """Read any supported source: ``"synthetic"``, a FER2013 CSV, or an image folder.

    ``ferplus`` joins FER+ votes (``fer2013new.csv``) onto a FER2013 CSV; with it,
    ``on_error="skip"`` drops bad vote rows (a bad image row still stops the join).
    """
    if str(source) == SYNTHETIC:
        if ferplus is not None:
            raise FERDataError("--ferplus needs a real fer2013.csv as --data, not 'synthetic'")
        return make_synthetic_faces(synthetic_size, seed=seed, imbalance=imbalance)
    path = Path(source)
    if path.is_dir():
        if ferplus is not None:
            raise FERDataError(f"{path}: --ferplus joins onto a fer2013.csv file, not an image folder")
        return read_image_folder(path, on_error=on_error)
    if not path.exists():
        raise FERDataError(f"{path}: no such file or folder; pass fer2013.csv, an image folder, "
                           f"or 'synthetic'")
    if ferplus is not None:
        return read_ferplus(path, ferplus, mode=ferplus_mode, cache=cache, on_error=on_error)
    return read_fer2013_csv(path, on_error=on_error, cache=cache)
