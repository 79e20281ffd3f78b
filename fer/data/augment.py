"""Augmentations: batched tensor ops that run on any device, and the
per-sample torchvision pipeline of the DataLoader path.

Both paths apply the same augmentation: a random crop after zero padding
(``padding`` pixels each side), a horizontal flip with probability 1/2, scaling
to [0, 1] and normalisation with FER2013's pixel mean and std, then an
optional bilinear resize to a larger ``image_size``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: FER2013's pixel mean and standard deviation, on the [0, 1] scale.
FER_MEAN = 0.5077
FER_STD = 0.2550
DEFAULT_PADDING = 4


def batch_augment(
    images: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    padding: int = DEFAULT_PADDING,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip of a uint8 batch.

    ``images`` is ``[B, 1, H, W]`` (any dtype, any device); the result has the
    same shape and dtype. Crop and flip are one gather: each output pixel reads
    one source pixel of the padded batch, so the cost is one pass over the data.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    span = 2 * padding + 1
    off_y = torch.randint(0, span, (b, 1), device=device, generator=generator)
    off_x = torch.randint(0, span, (b, 1), device=device, generator=generator)
    rows = off_y + torch.arange(h, device=device)  # [B, H]
    cols = torch.arange(w, device=device).expand(b, w)
    if flip:
        flipped = torch.rand(b, 1, device=device, generator=generator) < 0.5
        cols = torch.where(flipped, w - 1 - cols, cols)
    cols = off_x + cols  # [B, W]
    width = w + 2 * padding
    index = (rows.unsqueeze(2) * width + cols.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
    out = padded.reshape(b, c, -1).gather(2, index)
    return out.view(b, c, h, w)


def to_model_input(
    images: torch.Tensor, image_size: int | None = None, dtype: torch.dtype = torch.float32,
    channels: int = 1,
) -> torch.Tensor:
    """uint8 ``[B, 1, H, W]`` -> normalised float, resized to ``image_size`` if given, the
    gray channel repeated to ``channels`` (3: an ImageNet-shaped stem)."""
    x = images.to(dtype).mul_(1 / (255 * FER_STD)).sub_(FER_MEAN / FER_STD)
    if image_size is not None and image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    if channels != x.shape[1]:
        x = x.expand(-1, channels, -1, -1).contiguous()
    return x


class RepeatChannels:
    """A ``[1, H, W]`` tensor -> ``[channels, H, W]`` (picklable, for DataLoader workers)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(self.channels, -1, -1)

    def __repr__(self) -> str:
        return f"RepeatChannels({self.channels})"


def sample_transform(train: bool, image_size: int | None = None, padding: int = DEFAULT_PADDING,
                     channels: int = 1):
    """The torchvision per-sample pipeline (PIL image in, tensor out) of the DataLoader path:
    crop and flip at 48 px, normalise, resize to ``image_size`` (per sample, in the workers),
    repeat the gray channel to ``channels``."""
    from torchvision import transforms  # lazy: torchvision only for the per-sample (study-scale) path

    steps = []
    if train:
        steps += [transforms.RandomCrop(48, padding=padding), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize((FER_MEAN,), (FER_STD,))]
    if image_size is not None and image_size != 48:
        steps.append(transforms.Resize((image_size, image_size), antialias=False))
    if channels != 1:
        steps.append(RepeatChannels(channels))
    return transforms.Compose(steps)
