"""Image-folder reader: FER2013 label order, resizing, errors."""

import logging

import numpy as np
import pytest
from PIL import Image

from fer.data import FER2013_CLASSES, load_dataset, read_image_folder
from fer.errors import FERDataError


def _save(path, value, size=(48, 48), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)


def test_labels_follow_fer2013_order_not_alphabetical(tmp_path):
    for i, name in enumerate(FER2013_CLASSES):
        _save(tmp_path / "train" / name / f"{i}.png", value=i * 10)
    _save(tmp_path / "test" / "happy" / "x.jpg", value=200)
    data = read_image_folder(tmp_path)
    assert data.split_sizes() == {"train": 7, "val": 0, "test": 1}
    for image, label in zip(data.images, data.labels):
        if label != 3 or image.mean() != 200:
            assert abs(image.mean() - label * 10) < 1
    assert FER2013_CLASSES[3] == "happy"


def test_other_sizes_and_colour_are_converted_with_a_warning(tmp_path, caplog):
    _save(tmp_path / "train" / "sad" / "big.png", value=90, size=(96, 96), mode="RGB")
    with caplog.at_level(logging.WARNING):
        data = load_dataset(tmp_path)
    assert data.images.shape == (1, 48, 48)
    assert "resized 1 images" in caplog.text


def test_unknown_class_folder(tmp_path):
    _save(tmp_path / "train" / "happiness" / "a.png", value=1)
    with pytest.raises(FERDataError, match="unknown class folder 'happiness'"):
        read_image_folder(tmp_path)


def test_no_split_folders(tmp_path):
    _save(tmp_path / "happy" / "a.png", value=1)
    with pytest.raises(FERDataError, match="no split folders"):
        read_image_folder(tmp_path)


def test_unreadable_image(tmp_path):
    _save(tmp_path / "train" / "sad" / "ok.png", value=1)
    bad = tmp_path / "train" / "sad" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(FERDataError, match="broken.png: not a readable image"):
        read_image_folder(tmp_path)
    data = read_image_folder(tmp_path, on_error="skip")
    assert len(data) == 1 and len(data.skipped) == 1
    assert np.all(data.images == 1)
