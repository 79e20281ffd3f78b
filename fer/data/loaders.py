"""make_loader(): the DataLoader path and the device-resident path, one set of options.

:class:`LoaderOptions` is the one description of how to load (which path, the
device, the DataLoader knobs, the seed, the DDP shard); every task's
``make_loader(data, *, train, batch_size, options)`` takes it.

* ``dataloader``: a standard :class:`torch.utils.data.DataLoader` over PIL
  images with the torchvision per-sample pipeline — the path the study tuned
  (``num_workers``, ``pin_memory``, ``persistent_workers``, ``prefetch_factor``).
* ``device``: the whole uint8 dataset is copied to the device once; each batch
  is indexed, augmented and normalised there with batched tensor ops. No worker
  processes, no per-sample Python, no host-to-device copy per step.

Both yield ``(inputs float [B, 1, S, S], targets)`` where targets are int64
labels, or float soft targets when the data has them. Shuffling is seeded:
the order of epoch ``e`` depends only on ``seed`` and ``e`` (call
``set_epoch(e)``, as with a DistributedSampler).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from fer.data.augment import batch_augment, sample_transform, to_model_input
from fer.data.dataset import FERData
from fer.errors import ConfigError

LOADERS = ("dataloader", "device")


@dataclass(frozen=True)
class LoaderOptions:
    """How to load batches; the same for every task and split.

    ``kind``: ``"dataloader"`` (a torch DataLoader with per-sample transforms) or
    ``"device"`` (the dataset resident on ``device``, batched ops). The DataLoader
    knobs (``num_workers``, ``persistent_workers``, ``prefetch_factor``) apply to
    ``"dataloader"`` only and are a ConfigError with ``"device"``; ``pin_memory``
    is a no-op on the device path (nothing is copied per step). ``image_size``:
    the side the model sees, None for the data's native size. ``rank`` /
    ``world_size``: this process's shard under DistributedDataParallel.
    """

    kind: str = "dataloader"
    device: str | torch.device = "cpu"
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    seed: int = 0
    image_size: int | None = None
    rank: int = 0
    world_size: int = 1
    channels: int = 1  # the gray face repeated to 3 for an ImageNet-shaped stem

    def __post_init__(self) -> None:
        if self.kind not in LOADERS:
            raise ConfigError(f"loader {self.kind!r} is not one of {', '.join(LOADERS)} (--loader)")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers} (--num-workers)")
        if self.kind == "device":
            for name, unset in (("num_workers", 0), ("persistent_workers", False),
                                ("prefetch_factor", None)):
                if getattr(self, name) != unset:
                    flag = "--" + name.replace("_", "-")
                    raise ConfigError(f"{flag} applies to --loader dataloader; the device loader "
                                      "has no worker processes")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"image_size must be >= 1 or None, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels} (--channels)")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is not in [0, world_size={self.world_size})")

    def replace(self, **changes) -> LoaderOptions:
        return dataclasses.replace(self, **changes)


class EpochLoader(Protocol):
    num_images: int

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...


def _targets(data: FERData) -> torch.Tensor:
    if data.soft_targets is not None:
        return torch.from_numpy(np.ascontiguousarray(data.soft_targets))
    return torch.from_numpy(np.ascontiguousarray(data.labels))


class FERImageDataset(Dataset):
    """Per-sample dataset: a PIL image through a torchvision transform."""

    def __init__(self, data: FERData, transform) -> None:
        self.images = data.images
        self.targets = _targets(data)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), self.targets[index]


class SeededDataLoader:
    """A DataLoader whose shuffle order is a function of (seed, epoch).

    With ``world_size > 1`` a DistributedSampler gives each rank its shard (the
    same permutation on every rank, equal shard sizes for training).
    """

    def __init__(self, dataset: Dataset, *, seed: int, shuffle: bool, rank: int = 0,
                 world_size: int = 1, **kwargs) -> None:
        self.generator = torch.Generator()
        self.seed = seed
        self.sampler = None
        if world_size > 1:
            self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                              shuffle=shuffle, seed=seed,
                                              drop_last=kwargs.get("drop_last", False))
        self.set_epoch(0)
        self.loader = DataLoader(dataset, shuffle=shuffle if self.sampler is None else None,
                                 sampler=self.sampler, generator=self.generator, **kwargs)
        self.num_images = len(self.sampler) if self.sampler is not None else len(dataset)
        if kwargs.get("drop_last"):
            self.num_images = len(self.loader) * kwargs["batch_size"]

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed * 100_003 + epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


class ShardedBatches:
    """Batch indices for data that lives on a device: a seeded order per epoch (the
    same on every rank, drawn on the CPU), this rank's shard of it, then batches.

    For training (``drop_last``) every rank gets the same number of batches, as
    DDP requires; the shard is every ``world_size``-th item of the epoch's order.
    """

    def __init__(self, total: int, *, batch_size: int, device: torch.device, shuffle: bool,
                 seed: int, drop_last: bool, rank: int = 0, world_size: int = 1) -> None:
        self.device = torch.device(device)
        self.total, self.batch_size, self.shuffle, self.seed = total, batch_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        n = total // world_size if drop_last else len(range(rank, total, world_size))
        self.shard_size = n
        self.num_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
        self.num_images = self.num_batches * batch_size if drop_last else n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    @property
    def epoch_seed(self) -> int:
        return self.seed * 100_003 + self.epoch

    def batch_indices(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            order = torch.randperm(self.total,
                                   generator=torch.Generator().manual_seed(self.epoch_seed))
        else:
            order = torch.arange(self.total)
        order = order[self.rank::self.world_size][:self.shard_size].to(self.device)
        for i in range(self.num_batches):
            yield order[i * self.batch_size:(i + 1) * self.batch_size]


class DeviceLoader(ShardedBatches):
    """Batches drawn from a uint8 dataset that lives on ``device``."""

    def __init__(
        self,
        data: FERData,
        *,
        batch_size: int,
        device: torch.device,
        shuffle: bool,
        augment: bool,
        seed: int,
        drop_last: bool,
        image_size: int | None,
        rank: int = 0,
        world_size: int = 1,
        channels: int = 1,
    ) -> None:
        super().__init__(len(data), batch_size=batch_size, device=device, shuffle=shuffle,
                         seed=seed, drop_last=drop_last, rank=rank, world_size=world_size)
        self.channels = channels
        self.images = torch.from_numpy(data.images).to(self.device).unsqueeze(1)
        self.targets = _targets(data).to(self.device)
        self.augment = augment
        self.image_size = image_size
        self.generator = torch.Generator(device=self.device)  # augmentation

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.generator.manual_seed(self.epoch_seed * 31 + self.rank)
        for index in self.batch_indices():
            x = self.images[index]
            if self.augment:
                x = batch_augment(x, generator=self.generator)
            yield to_model_input(x, self.image_size, channels=self.channels), self.targets[index]


def make_loader(
    data: FERData,
    *,
    train: bool,
    batch_size: int,
    options: LoaderOptions | None = None,
    augment: bool | None = None,
    drop_last: bool | None = None,
    **option_fields,
) -> EpochLoader:
    """A loader over ``data`` (one split, see :meth:`FERData.split`).

    ``options`` picks the path and its knobs (see :class:`LoaderOptions`); as a
    shorthand, its fields may be given as keywords instead (``kind="device"``,
    ``seed=1``; ``loader=`` is accepted for ``kind=``), applied over ``options``
    or the defaults. ``train`` turns on shuffling, augmentation and ``drop_last``
    unless ``augment`` / ``drop_last`` say otherwise.
    """
    if "loader" in option_fields:
        option_fields["kind"] = option_fields.pop("loader")
    unknown = set(option_fields) - {f.name for f in dataclasses.fields(LoaderOptions)}
    if unknown:
        raise TypeError(f"make_loader() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    options = options or LoaderOptions()
    if option_fields:
        options = options.replace(**option_fields)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if len(data) == 0:
        raise ConfigError(f"{data.source}: no images to load; check the split and the data path")
    augment = train if augment is None else augment
    drop_last = (train and len(data) >= batch_size) if drop_last is None else drop_last
    rank, world_size = options.rank, options.world_size
    if options.kind == "device":
        return DeviceLoader(data, batch_size=batch_size, device=torch.device(options.device),
                            shuffle=train, augment=augment, seed=options.seed, drop_last=drop_last,
                            image_size=options.image_size, rank=rank, world_size=world_size,
                            channels=options.channels)
    extra = {}
    if options.num_workers > 0:
        extra["persistent_workers"] = options.persistent_workers
        if options.prefetch_factor is not None:
            extra["prefetch_factor"] = options.prefetch_factor
    dataset = FERImageDataset(data, sample_transform(augment, options.image_size,
                                                     channels=options.channels))
    if world_size > 1 and not drop_last:  # evaluation: a plain, unpadded shard
        dataset, world_size = Subset(dataset, range(rank, len(dataset), world_size)), 1
    return SeededDataLoader(dataset, seed=options.seed, shuffle=train, batch_size=batch_size,
                            num_workers=options.num_workers, pin_memory=options.pin_memory,
                            drop_last=drop_last, rank=rank, world_size=world_size, **extra)
