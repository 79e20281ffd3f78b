"""The synthetic faces: deterministic, shaped like FER2013, class-driven."""

import numpy as np
import pytest

from fer.data import FER2013_CLASSES, make_synthetic_faces
from fer.data.dataset import FER2013_TRAIN_COUNTS


def test_deterministic_by_seed():
    a = make_synthetic_faces(300, seed=5)
    b = make_synthetic_faces(300, seed=5)
    c = make_synthetic_faces(300, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_shape_splits_and_classes():
    data = make_synthetic_faces(1000, seed=0)
    assert data.images.shape == (1000, 48, 48) and data.images.dtype == np.uint8
    assert data.class_names == FER2013_CLASSES
    sizes = data.split_sizes()
    assert sizes == {"train": 800, "val": 100, "test": 100}
    # FER2013's order: train rows first, then val, then test
    assert (np.diff(data.splits) >= 0).all()
    assert set(np.unique(data.labels)) == set(range(7))


def test_images_use_the_pixel_range():
    data = make_synthetic_faces(200, seed=1)
    assert data.images.min() < 30 and data.images.max() > 220
    assert data.images.reshape(200, -1).std(axis=1).min() > 5  # no blank images


def test_imbalance_follows_fer2013():
    data = make_synthetic_faces(20000, seed=0, imbalance=True)
    counts = np.bincount(data.labels, minlength=7) / 20000
    expected = np.array(FER2013_TRAIN_COUNTS) / sum(FER2013_TRAIN_COUNTS)
    np.testing.assert_allclose(counts, expected, atol=0.01)
    balanced = np.bincount(make_synthetic_faces(7000, seed=0).labels, minlength=7) / 7000
    np.testing.assert_allclose(balanced, 1 / 7, atol=0.02)


def test_expression_is_in_the_pixels():
    """Class means differ where the features are (mouth rows), not by chance."""
    data = make_synthetic_faces(4000, seed=2)
    mouth = data.images[:, 30:40, 16:32].reshape(len(data), -1).mean(axis=1)
    happy, surprise = mouth[data.labels == 3].mean(), mouth[data.labels == 5].mean()
    assert abs(happy - surprise) > 2  # surprise's open mouth darkens the mouth area


@pytest.mark.parametrize("bad", [0, -3])
def test_rejects_empty(bad):
    with pytest.raises(ValueError):
        make_synthetic_faces(bad)


@pytest.mark.slow
def test_learnable_by_a_small_cnn_but_not_by_a_linear_model():
    """The numbers benchmarks/synthetic_learnability.py reports, as a test."""
    from benchmarks.synthetic_learnability import linear_probe
    from fer.config import TrainConfig
    from fer.engine import build_trainer

    data = make_synthetic_faces(8000, seed=0)  # the script's defaults
    config = TrainConfig(model="test_efficientnet", device="cpu", epochs=3, synthetic_size=8000,
                         learning_rate=3e-3, eval_every=3, run_dir="none")  # validated at the end
    cnn = build_trainer(config, data=data).fit()[-1].val_acc
    linear = linear_probe(data)
    assert cnn >= 0.90
    assert linear < 0.80
