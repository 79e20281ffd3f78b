"""make_loader() and LoaderOptions: both paths, seeding, sizes and errors."""

import pytest
import torch

from fer.data import LoaderOptions, make_loader, make_synthetic_faces
from fer.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(100, seed=0).split("train")  # 80 images


@pytest.mark.parametrize("loader", ["dataloader", "device"])
def test_batches_shapes_and_counts(data, loader):
    it = make_loader(data, batch_size=16, train=True, options=LoaderOptions(kind=loader))
    batches = list(it)
    assert len(batches) == len(it) == 5
    x, y = batches[0]
    assert x.shape == (16, 1, 48, 48) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert sum(len(b[0]) for b in batches) == it.num_images == 80


@pytest.mark.parametrize("loader", ["dataloader", "device"])
def test_eval_loader_keeps_order_and_last_batch(data, loader):
    it = make_loader(data, batch_size=32, train=False, options=LoaderOptions(kind=loader))
    ys = torch.cat([y for _, y in it])
    assert ys.tolist() == data.labels.tolist()
    assert it.num_images == 80 and len(it) == 3


@pytest.mark.parametrize("loader", ["dataloader", "device"])
def test_shuffle_is_seeded_per_epoch(data, loader):
    def order(seed, epoch):
        it = make_loader(data, batch_size=80, train=True,
                         options=LoaderOptions(kind=loader, seed=seed))
        it.set_epoch(epoch)
        return next(iter(it))[1].tolist()

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(order(0, 0)) == sorted(data.labels.tolist())


def test_resize_option(data):
    for loader in ("dataloader", "device"):
        x, _ = next(iter(make_loader(data, batch_size=4, train=True,
                                     options=LoaderOptions(kind=loader, image_size=64))))
        assert x.shape == (4, 1, 64, 64)


def test_three_channels_for_an_imagenet_stem(data):
    # the study scale's input: resized per sample (in the workers) and repeated to 3 channels
    batches = {}
    for loader, workers in (("dataloader", 1), ("device", 0)):
        x, _ = next(iter(make_loader(data, batch_size=4, train=False, options=LoaderOptions(
            kind=loader, num_workers=workers, image_size=64, channels=3))))
        assert x.shape == (4, 3, 64, 64)
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
        batches[loader] = x
    torch.testing.assert_close(batches["dataloader"], batches["device"], atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        LoaderOptions(channels=2)


def test_dataloader_knobs_with_workers(data):
    options = LoaderOptions(num_workers=2, persistent_workers=True, prefetch_factor=2)
    it = make_loader(data, batch_size=20, train=True, options=options)
    assert it.loader.num_workers == 2 and it.loader.persistent_workers
    assert sum(len(x) for x, _ in it) == 80
    assert sum(len(x) for x, _ in it) == 80  # a second epoch on the persistent workers


def test_paths_agree_without_augmentation(data):
    a = torch.cat([x for x, _ in make_loader(data, batch_size=32, train=False)])
    b = torch.cat([x for x, _ in make_loader(data, batch_size=32, train=False,
                                          options=LoaderOptions(kind="device"))])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_soft_targets_are_yielded():
    import numpy as np

    data = make_synthetic_faces(20, seed=0)
    data.soft_targets = np.full((20, 7), 1 / 7, dtype=np.float32)
    _, y = next(iter(make_loader(data, batch_size=4, train=False,
                                    options=LoaderOptions(kind="device"))))
    assert y.shape == (4, 7) and y.dtype == torch.float32


@pytest.mark.parametrize("fields,match", [
    ({"kind": "gpu"}, "loader 'gpu'"),
    ({"num_workers": -1}, "num_workers"),
    ({"kind": "device", "num_workers": 2}, "--num-workers applies to --loader dataloader"),
    ({"kind": "device", "prefetch_factor": 2}, "--prefetch-factor applies"),
    ({"rank": 2, "world_size": 2}, "rank 2"),
])
def test_option_errors(fields, match):
    with pytest.raises(ConfigError, match=match):
        LoaderOptions(**fields)


def test_options_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        LoaderOptions().kind = "device"


def test_batch_size_error(data):
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(data, batch_size=0, train=True, options=LoaderOptions())


def test_keyword_shorthand_overrides_options(data):
    """Option fields as keywords (``loader=`` for ``kind=``) apply over ``options``."""
    base = LoaderOptions(kind="dataloader", seed=3)
    it = make_loader(data, batch_size=8, train=True, options=base, loader="device")
    assert it.__class__.__name__ == "DeviceLoader" and it.seed == 3
    assert make_loader(data, batch_size=8, train=True, kind="device").seed == 0
    with pytest.raises(TypeError, match="workers"):
        make_loader(data, batch_size=8, train=True, workers=2)
