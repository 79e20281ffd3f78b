"""Learnable synthetic faces in FER2013's seven classes: the offline default.

Each 48x48 grayscale image is a drawn face whose *expression* is set by a
handful of parameters — brow height and slant, eye openness, mouth curve,
opening, width and asymmetry, nose wrinkles — drawn around a per-class mean
(so classes overlap a little), and whose *nuisances* are random: position,
scale, rotation, face and background brightness, feature contrast and pixel
noise. A small CNN learns the classes to >90% accuracy in a few CPU epochs;
a linear model on raw pixels cannot, because the cue moves with the face.

Rendering is vectorised over a chunk of images with torch (both CPU cores),
seeded by a ``torch.Generator``: the same seed gives the same bytes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fer.data.dataset import (
    FER2013_CLASSES,
    FER2013_TRAIN_COUNTS,
    IMAGE_SIZE,
    FERData,
)

#: FER2013's size (train 28,709 + public test 3,589 + private test 3,589).
FER2013_SIZE = 35887
FER2013_SPLIT_FRACTIONS = (28709 / FER2013_SIZE, 3589 / FER2013_SIZE)

# Per-class means of the expression parameters, in face units (face height = 2).
#              brow_raise brow_tilt eye_open mouth_curve mouth_open mouth_width asym wrinkle
_CLASS_PARAMS = {
    "angry":    (-0.05,  1.00, 0.55, -0.30, 0.00, 0.30, 0.0, 0.0),
    "disgust":  (-0.02,  0.40, 0.45, -0.50, 0.00, 0.32, 0.6, 1.0),
    "fear":     ( 0.08, -0.80, 1.35, -0.10, 0.10, 0.40, 0.0, 0.0),
    "happy":    ( 0.00,  0.00, 0.75,  1.00, 0.05, 0.42, 0.0, 0.0),
    "sad":      ( 0.02, -0.90, 0.70, -0.90, 0.00, 0.33, 0.0, 0.0),
    "surprise": ( 0.15,  0.00, 1.50,  0.00, 0.22, 0.20, 0.0, 0.0),
    "neutral":  ( 0.00,  0.00, 1.00,  0.00, 0.00, 0.36, 0.0, 0.0),
}
_PARAM_JITTER = (0.03, 0.25, 0.12, 0.20, 0.02, 0.04, 0.15, 0.25)
_CHUNK = 4096


def make_synthetic_faces(
    n: int = FER2013_SIZE,
    *,
    seed: int = 0,
    imbalance: bool = False,
    split_fractions: tuple[float, float] = FER2013_SPLIT_FRACTIONS,
) -> FERData:
    """Draw ``n`` labelled faces, split train/val/test like FER2013.

    ``imbalance=True`` samples classes in FER2013's training proportions
    (disgust rare, happy common); otherwise classes are equally likely.
    ``split_fractions`` are the train and val shares; the rest is test.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    train_frac, val_frac = split_fractions
    if train_frac <= 0 or val_frac < 0 or train_frac + val_frac > 1:
        raise ValueError(f"split_fractions {split_fractions} must be positive and sum to <= 1")
    gen = torch.Generator().manual_seed(seed)
    weights = torch.tensor(FER2013_TRAIN_COUNTS if imbalance else [1] * 7, dtype=torch.float64)
    labels = torch.multinomial(weights, n, replacement=True, generator=gen)
    images = torch.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        images[start:stop] = _render(labels[start:stop], gen)
    n_train = max(1, round(n * train_frac))
    n_val = min(n - n_train, round(n * val_frac))
    splits = np.full(n, 2, dtype=np.int8)
    splits[:n_train] = 0
    splits[n_train:n_train + n_val] = 1
    return FERData(
        images=images.numpy(),
        labels=labels.numpy().astype(np.int64),
        splits=splits,
        class_names=FER2013_CLASSES,
        source=f"synthetic(n={n}, seed={seed}{', imbalance' if imbalance else ''})",
    )


def _render(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = len(labels)
    table = torch.tensor([_CLASS_PARAMS[c] for c in FER2013_CLASSES], dtype=torch.float32)
    p = table[labels] + torch.randn(b, 8, generator=gen) * torch.tensor(_PARAM_JITTER)
    raise_, tilt, eye_open, curve, mouth_open, width, asym, wrinkle = (
        p[:, i, None, None] for i in range(8)
    )
    eye_open = eye_open.clamp(min=0.25)
    mouth_open = mouth_open.clamp(min=0.0)
    width = width.clamp(min=0.15)
    side = torch.where(torch.rand(b, 1, 1, generator=gen) < 0.5, -1.0, 1.0)
    asym = asym * side  # disgust lifts either corner of the mouth
    wrinkle = wrinkle.clamp(0, 1)

    # The expression is drawn in the face's own frame, only on the rows that
    # hold features (a quarter of the pixels), then warped into place.
    canvas = torch.zeros(b, 2, _CANVAS, _CANVAS)  # channel 0: face, 1: dark features
    canvas[:, 0] = _FACE
    features = canvas[:, 1]
    u = _CANVAS_COORDS.view(1, 1, -1)

    def rows(lo: float, hi: float) -> tuple[slice, torch.Tensor]:
        idx = torch.nonzero((_CANVAS_COORDS >= lo) & (_CANVAS_COORDS <= hi)).flatten()
        sl = slice(int(idx[0]), int(idx[-1]) + 1)
        return sl, _CANVAS_COORDS[sl].view(1, -1, 1)

    def draw(sl: slice, region: torch.Tensor) -> None:
        torch.maximum(features[:, sl], region, out=features[:, sl])

    sl, v = rows(-0.65, 0.05)  # eyes and brows
    for s in (-1.0, 1.0):
        du = u - 0.33 * s
        eye = torch.sqrt((du / 0.13) ** 2 + ((v + 0.12) / (0.075 * eye_open)) ** 2)
        draw(sl, ((1 - eye) * 3).clamp_(0, 1))
        t = du * s / 0.17  # -1 at the brow's inner end, +1 at its outer end
        brow_v = -0.38 - raise_ - 0.07 * tilt * t
        draw(sl, _band((v - brow_v).abs(), 0.035) * _band(t.abs() * 0.17, 0.17))

    sl, v = rows(-0.05, 0.32)  # nose, and the wrinkles of disgust
    nose = 0.4 * _band(u.abs(), 0.02) * _band((v - 0.1).abs(), 0.12)
    nose_span = _band(u.abs(), 0.1)
    for nose_v in (0.14, 0.22):
        nose = torch.maximum(nose, wrinkle * _band((v - nose_v).abs(), 0.02) * nose_span)
    draw(sl, nose)

    sl, v = rows(0.1, 0.9)  # mouth
    mu = u / width
    lip_v = 0.45 + asym * u - 0.12 * curve * (mu**2 - 0.5)
    lip = _band((v - lip_v).abs(), 0.03) * _band(mu.abs() * width, width)
    opening = (1 - torch.sqrt(mu**2 + ((v - lip_v) / (mouth_open + 1e-3)) ** 2)) * 4
    draw(sl, torch.maximum(lip, opening.clamp_(0, 1) * (mouth_open > 0.02)))

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    # Nuisances: where the face is, how big, how turned and how lit.
    radius = uniform(16.0, 21.0)  # face half-height in pixels
    angle = uniform(-math.radians(12), math.radians(12))
    offset_x, offset_y = uniform(-3.0, 3.0), uniform(-3.0, 3.0)
    background, skin, ink, noise = (
        x.view(b, 1, 1) for x in (uniform(0.05, 0.5), uniform(0.5, 0.9), uniform(0.0, 0.25),
                                  uniform(0.02, 0.07))
    )
    # The sampling grid: output pixel (x, y) -> canvas coordinates, in the
    # [-1, 1] units of grid_sample (a rotation, a scale and a shift; built by
    # broadcasting, which is much cheaper than affine_grid's batched matmul).
    scale = 1 / (_CANVAS_HALF_WIDTH * radius.view(b, 1, 1))
    cos, sin = torch.cos(angle).view(b, 1, 1) * scale, torch.sin(angle).view(b, 1, 1) * scale
    pixel = torch.arange(IMAGE_SIZE, dtype=torch.float32) - (IMAGE_SIZE - 1) / 2
    x = pixel.view(1, 1, -1) - offset_x.view(b, 1, 1)
    y = pixel.view(1, -1, 1) - offset_y.view(b, 1, 1)
    grid = torch.empty(b, IMAGE_SIZE, IMAGE_SIZE, 2)
    torch.add(cos * x, sin * y, out=grid[..., 0])
    torch.sub(cos * y, sin * x, out=grid[..., 1])
    face, ink_mask = F.grid_sample(canvas, grid, align_corners=False).unbind(1)

    img = torch.addcmul(background, skin - background, face)
    img.addcmul_(ink - img, ink_mask.mul_(face))
    img.addcmul_(noise, torch.randn(img.shape, generator=gen))
    return img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)


def _band(distance: torch.Tensor, half_width: float) -> torch.Tensor:
    """1 within ``half_width`` of a line, 0 beyond, anti-aliased over a pixel."""
    return ((half_width - distance) * _CANVAS_PX + 0.5).clamp_(0, 1)


# The canvas: the face's own frame, [-1.25, 1.25] face units on each axis.
_CANVAS = 48
_CANVAS_HALF_WIDTH = 1.25
_CANVAS_COORDS = ((torch.arange(_CANVAS) * 2 + 1) / _CANVAS - 1) * _CANVAS_HALF_WIDTH
_CANVAS_PX = _CANVAS / (2 * _CANVAS_HALF_WIDTH)  # canvas pixels per face unit
_FACE = _band(
    torch.sqrt((_CANVAS_COORDS.view(1, -1) / 0.8) ** 2 + _CANVAS_COORDS.view(-1, 1) ** 2), 1.0
).unsqueeze(0)
