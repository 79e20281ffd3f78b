"""Reader for FER2013 as image folders: ``ROOT/{train,val,test}/{class}/*.png|jpg``.

Class folders are named after FER2013's labels (``angry``, ``disgust``,
``fear``, ``happy``, ``sad``, ``surprise``, ``neutral``) and mapped to
FER2013's indices, not to alphabetical order. Images are read as grayscale;
any that are not 48x48 are resized, with one warning saying how many.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fer.data.dataset import FER2013_CLASSES, IMAGE_SIZE, SPLITS, FERData, SkippedRow
from fer.errors import FERDataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "validation": "val",
                 "publictest": "val", "test": "test", "privatetest": "test"}


def read_image_folder(root: str | Path, *, on_error: str = "raise") -> FERData:
    root = Path(root)
    if not root.is_dir():
        raise FERDataError(f"{root}: no such folder")
    split_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_FOLDERS)
    if not split_dirs:
        raise FERDataError(f"{root}: no split folders; expected {root}/train/<class>/*.png "
                           f"(and test/, val/) with classes {', '.join(FER2013_CLASSES)}")
    images, labels, splits, skipped = [], [], [], []
    resized = 0
    for split_dir in split_dirs:
        split = SPLITS.index(SPLIT_FOLDERS[split_dir.name.lower()])
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            name = class_dir.name.lower()
            if name not in FER2013_CLASSES:
                raise FERDataError(f"{class_dir}: unknown class folder {class_dir.name!r}; "
                                   f"class folders must be named {', '.join(FER2013_CLASSES)}")
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(file) as im:
                        im = im.convert("L")
                        if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                            im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
                            resized += 1
                        images.append(np.asarray(im, dtype=np.uint8))
                except (OSError, UnidentifiedImageError) as exc:
                    if on_error == "raise":
                        raise FERDataError(f"{file}: not a readable image ({exc}); remove or "
                                           "replace it, or pass --skip-bad-rows") from None
                    skipped.append(SkippedRow(0, f"{file}: unreadable image"))
                    continue
                labels.append(FER2013_CLASSES.index(name))
                splits.append(split)
    if not images:
        raise FERDataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    if resized:
        log.warning("%s: resized %d images that were not %dx%d", root, resized, IMAGE_SIZE, IMAGE_SIZE)
    return FERData(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        splits=np.asarray(splits, dtype=np.int8),
        class_names=FER2013_CLASSES,
        source=str(root),
        skipped=skipped,
    )
