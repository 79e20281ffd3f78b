"""Pose data: 17 COCO keypoints on RGB images (the HRNet workload's data layer).

* :class:`PoseData` — RGB uint8 images ``[N, 3, H, W]``, keypoints ``[N, 17, 3]``
  as (x, y, v) in input pixels, with COCO's visibility v (0 unlabelled,
  1 labelled but occluded, 2 visible), and split membership.
* :func:`parse_pose_size` — ``--pose-size HEIGHTxWIDTH`` (multiples of 32).
* :func:`make_synthetic_poses` — learnable stick figures; :func:`read_coco_keypoints`
  — COCO ``person_keypoints_*.json`` plus an image folder, each person box cropped
  to the input aspect.
* :func:`encode_heatmaps` / :func:`decode_heatmaps` — Gaussian targets (sigma 2)
  at stride 4 and back (the loss and PCK metric live with the task, in
  :mod:`fer.losses`; the model head is :class:`fer.models.PoseHRNet`).
* :func:`make_pose_loader` / :class:`PoseDeviceLoader` — the device-resident
  loader, the only loader kind pose has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer.data.dataset import SPLITS
from fer.data.loaders import LoaderOptions, ShardedBatches
from fer.errors import ConfigError, FERDataError

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_KEYPOINTS = len(COCO_KEYPOINTS)
SKELETON = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11),
            (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16))
STRIDE = 4
SIGMA = 2.0
DEFAULT_INPUT = (256, 192)  # height, width
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PoseData:
    images: np.ndarray  # uint8 [N, 3, H, W]
    keypoints: np.ndarray  # float32 [N, 17, 3]: x, y, visibility
    splits: np.ndarray  # int8 [N]
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def split(self, name: str) -> PoseData:
        mask = self.splits == SPLITS.index(name)
        return PoseData(self.images[mask], self.keypoints[mask], self.splits[mask],
                        f"{self.source}[{name}]")

    def split_sizes(self) -> dict[str, int]:
        counts = np.bincount(self.splits.astype(np.int64), minlength=3)
        return {s: int(c) for s, c in zip(SPLITS, counts)}


#: the longest side --pose-size accepts
MAX_POSE_SIDE = 1280


def check_input_size(size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` unchanged if HRNet can take it: both sides multiples of 32
    (its deepest branch is at stride 32); else a ConfigError naming ``--pose-size``."""
    h, w = size
    if h % 32 or w % 32 or h < 32 or w < 32:
        raise ConfigError(f"--pose-size {h}x{w}: both sides must be multiples of 32 (e.g. 256x192)")
    if max(h, w) > MAX_POSE_SIDE:
        raise ConfigError(f"--pose-size {h}x{w}: a side above {MAX_POSE_SIDE} (HRNet's largest "
                          "published input is 384x288; the data is kept on the device at this "
                          "size, so larger inputs exhaust memory)")
    return h, w


def parse_pose_size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> ``(256, 192)``: ``--pose-size HEIGHTxWIDTH``, both multiples of 32."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"--pose-size {text!r}: use HEIGHTxWIDTH, e.g. 256x192") from None
    return check_input_size((h, w))


# ------------------------------------------------------------ synthetic --

def make_synthetic_poses(n: int, *, input_size: tuple[int, int] = DEFAULT_INPUT, seed: int = 0,
                         split_fractions: tuple[float, float] = (0.8, 0.1)) -> PoseData:
    """Stick figures: random pose, scale, position, colours, noise and occluding boxes.

    Limb angles vary around a standing pose; each limb is a coloured line, the
    head a disc. A random grey box hides part of some figures: keypoints under
    it keep their label with visibility 1 (occluded), as COCO marks them.
    """
    h, w = check_input_size(input_size)
    g = torch.Generator().manual_seed(seed)
    kp = _random_skeletons(n, h, w, g)
    images = torch.empty(n, 3, h, w, dtype=torch.uint8)
    for start in range(0, n, 256):
        images[start:start + 256] = _draw(kp[start:start + 256], h, w, g)
    vis = torch.full((n, NUM_KEYPOINTS), 2.0)
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    vis[~inside] = 0.0
    # occluders
    occluded = torch.rand(n, generator=g) < 0.3
    box = torch.rand(n, 4, generator=g)
    bx0, by0 = box[:, 0] * w * 0.7, box[:, 1] * h * 0.7
    bx1, by1 = bx0 + (0.15 + 0.25 * box[:, 2]) * w, by0 + (0.15 + 0.25 * box[:, 3]) * h
    xs, ys = torch.arange(w).view(1, 1, -1), torch.arange(h).view(1, -1, 1)
    for i in torch.nonzero(occluded).flatten().tolist():
        mask = (xs >= bx0[i]) & (xs < bx1[i]) & (ys >= by0[i]) & (ys < by1[i])
        images[i][:, mask[0]] = 128
        under = ((kp[i, :, 0] >= bx0[i]) & (kp[i, :, 0] < bx1[i]) & (kp[i, :, 1] >= by0[i])
                 & (kp[i, :, 1] < by1[i]))
        vis[i, under & (vis[i] > 0)] = 1.0
    n_train = max(1, round(n * split_fractions[0]))
    n_val = min(n - n_train, round(n * split_fractions[1]))
    splits = np.full(n, 2, np.int8)
    splits[:n_train], splits[n_train:n_train + n_val] = 0, 1
    keypoints = torch.cat([kp, vis.unsqueeze(-1)], dim=-1).numpy().astype(np.float32)
    return PoseData(images.numpy(), keypoints, splits, f"synthetic-poses(n={n}, seed={seed})")


def _random_skeletons(n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

    scale = u(0.55, 0.9) * h / 7.0  # one "head" unit; a figure is ~7 heads tall
    cx, cy = u(0.35, 0.65) * w, u(0.45, 0.55) * h
    kp = torch.zeros(n, NUM_KEYPOINTS, 2)
    lean = u(-0.3, 0.3)
    neck = torch.stack([cx, cy - 1.8 * scale], -1)
    hip_c = neck + torch.stack([torch.sin(lean), torch.cos(lean)], -1) * (2.8 * scale).unsqueeze(-1)
    head = neck + torch.stack([torch.sin(lean + u(-0.3, 0.3)), -torch.cos(lean)], -1) * \
        (0.9 * scale).unsqueeze(-1)
    s = scale.unsqueeze(-1)
    kp[:, 0] = head
    kp[:, 1] = head + torch.tensor([-0.25, -0.2]) * s
    kp[:, 2] = head + torch.tensor([0.25, -0.2]) * s
    kp[:, 3] = head + torch.tensor([-0.5, 0.0]) * s
    kp[:, 4] = head + torch.tensor([0.5, 0.0]) * s
    kp[:, 5] = neck + torch.tensor([-0.9, 0.2]) * s
    kp[:, 6] = neck + torch.tensor([0.9, 0.2]) * s
    kp[:, 11] = hip_c + torch.tensor([-0.6, 0.0]) * s
    kp[:, 12] = hip_c + torch.tensor([0.6, 0.0]) * s

    def limb(start, length, angle):
        return start + torch.stack([torch.sin(angle), torch.cos(angle)], -1) * (length * scale).unsqueeze(-1)

    for side, (sh, el, wr, hp, kn, an) in ((-1, (5, 7, 9, 11, 13, 15)), (1, (6, 8, 10, 12, 14, 16))):
        upper = side * u(0.1, 2.6)  # arms swing from down to raised
        kp[:, el] = limb(kp[:, sh], 1.4, upper)
        kp[:, wr] = limb(kp[:, el], 1.3, upper + side * u(-0.2, 1.5))
        thigh = side * u(-0.15, 0.7)
        kp[:, kn] = limb(kp[:, hp], 1.7, thigh)
        kp[:, an] = limb(kp[:, kn], 1.6, thigh - side * u(0.0, 0.8))
    return kp


def _draw(kp: torch.Tensor, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    b = len(kp)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, -1)
    ys = torch.arange(h, dtype=torch.float32).view(1, -1, 1)
    background = 0.2 + 0.5 * torch.rand(b, 3, 1, 1, generator=g)
    img = background.expand(b, 3, h, w).clone()
    thickness = (h / 64.0) * (1.0 + torch.rand(b, 1, 1, generator=g))
    for a, c in SKELETON:
        p, q = kp[:, a].view(b, 2, 1, 1), kp[:, c].view(b, 2, 1, 1)
        d = q - p
        t = (((xs - p[:, 0]) * d[:, 0] + (ys - p[:, 1]) * d[:, 1]) /
             (d[:, 0] ** 2 + d[:, 1] ** 2 + 1e-6)).clamp(0, 1)
        dist = torch.hypot(xs - (p[:, 0] + t * d[:, 0]), ys - (p[:, 1] + t * d[:, 1]))
        alpha = (thickness - dist + 0.5).clamp(0, 1).unsqueeze(1)
        colour = torch.rand(b, 3, 1, 1, generator=g)
        img = img + (colour - img) * alpha
    head_r = (kp[:, 3] - kp[:, 4]).norm(dim=-1).view(b, 1, 1) * 0.6
    dist = torch.hypot(xs - kp[:, 0, 0].view(b, 1, 1), ys - kp[:, 0, 1].view(b, 1, 1))
    alpha = (head_r - dist + 0.5).clamp(0, 1).unsqueeze(1)
    img = img + (0.9 - img) * alpha
    img = img + 0.05 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


# ----------------------------------------------------------------- COCO --

def read_coco_keypoints(annotations: str | Path, image_dir: str | Path, *,
                        input_size: tuple[int, int] = DEFAULT_INPUT, split: str = "train",
                        padding: float = 1.25) -> PoseData:
    """Every non-crowd person with keypoints, cropped to the input aspect and resized."""
    from PIL import Image  # lazy: Pillow only when COCO images are read

    annotations, image_dir = Path(annotations), Path(image_dir)
    h, w = check_input_size(input_size)
    try:
        coco = json.loads(annotations.read_text())
    except (OSError, ValueError) as exc:
        raise FERDataError(f"{annotations}: not a readable COCO JSON file ({exc})") from None
    for key in ("images", "annotations"):
        if not isinstance(coco, dict) or not isinstance(coco.get(key), list):
            raise FERDataError(f"{annotations}: missing the '{key}' list of a COCO keypoint file")
    files = {}
    for im in coco["images"]:
        if "id" not in im or "file_name" not in im:
            raise FERDataError(f"{annotations}: an image entry lacks 'id' or 'file_name': {im}")
        files[im["id"]] = im["file_name"]
    images, keypoints = [], []
    for ann in coco["annotations"]:
        aid = ann.get("id", "?")
        if ann.get("iscrowd") or not ann.get("num_keypoints", 1):
            continue
        kps = ann.get("keypoints")
        if not isinstance(kps, list) or len(kps) != 3 * NUM_KEYPOINTS:
            raise FERDataError(f"{annotations}: annotation {aid}: 'keypoints' must hold "
                               f"{3 * NUM_KEYPOINTS} numbers (x, y, v for 17 keypoints)")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or bbox[2] <= 0 or bbox[3] <= 0:
            raise FERDataError(f"{annotations}: annotation {aid}: 'bbox' must be [x, y, w, h] "
                               "with positive size")
        if ann.get("image_id") not in files:
            raise FERDataError(f"{annotations}: annotation {aid} names image_id "
                               f"{ann.get('image_id')!r}, which is not in 'images'")
        path = image_dir / files[ann["image_id"]]
        if not path.is_file():
            raise FERDataError(f"{path}: image of annotation {aid} not found under {image_dir}")
        # the person box grown to the input's aspect ratio, then padded (as pose_hrnet does)
        x, y, bw, bh = map(float, bbox)
        cx, cy = x + bw / 2, y + bh / 2
        if bw / bh > w / h:
            bh = bw * h / w
        else:
            bw = bh * w / h
        bw, bh = bw * padding, bh * padding
        left, top = cx - bw / 2, cy - bh / 2
        with Image.open(path) as im:
            # EXTENT maps the (possibly out-of-image) box onto the output; outside is black
            crop = im.convert("RGB").transform((w, h), Image.Transform.EXTENT,
                                               (left, top, left + bw, top + bh), Image.BILINEAR)
            images.append(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))
        k = np.asarray(kps, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        k[:, 0] = (k[:, 0] - left) * w / bw
        k[:, 1] = (k[:, 1] - top) * h / bh
        k[k[:, 2] == 0, :2] = 0
        keypoints.append(k)
    if not images:
        raise FERDataError(f"{annotations}: no person with keypoints (non-crowd, num_keypoints > 0)")
    n = len(images)
    return PoseData(np.stack(images), np.stack(keypoints),
                    np.full(n, SPLITS.index(split), np.int8), str(annotations))


# -------------------------------------------------------------- targets --

def encode_heatmaps(keypoints: torch.Tensor, heatmap_size: tuple[int, int], *,
                    stride: int = STRIDE, sigma: float = SIGMA) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian heatmaps ``[B, 17, h, w]`` and weights ``[B, 17]`` (1 where labelled)."""
    hh, hw = heatmap_size
    # a heatmap pixel i covers input pixels [i*stride, (i+1)*stride): its centre
    # is at heatmap coordinate i, so keypoint x maps to (x - (stride-1)/2) / stride
    xy = (keypoints[..., :2] - (stride - 1) / 2) / stride
    ys = torch.arange(hh, device=keypoints.device, dtype=torch.float32).view(1, 1, -1, 1)
    xs = torch.arange(hw, device=keypoints.device, dtype=torch.float32).view(1, 1, 1, -1)
    gx = torch.exp(-((xs - xy[..., 0, None, None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ys - xy[..., 1, None, None]) ** 2) / (2 * sigma**2))
    weight = (keypoints[..., 2] > 0).float()
    return gx * gy * weight[..., None, None], weight


def decode_heatmaps(heatmaps: torch.Tensor, *, stride: int = STRIDE) -> torch.Tensor:
    """Keypoint (x, y) in input pixels from heatmaps: the argmax, moved a quarter
    pixel towards the higher neighbour (the reference decoder)."""
    b, k, hh, hw = heatmaps.shape
    flat = heatmaps.reshape(b, k, -1).float()
    idx = flat.argmax(-1)
    x, y = (idx % hw).float(), (idx // hw).float()
    xi, yi = (idx % hw), (idx // hw)

    def at(dx, dy):
        xx, yy = (xi + dx).clamp(0, hw - 1), (yi + dy).clamp(0, hh - 1)
        return flat.gather(-1, (yy * hw + xx).unsqueeze(-1)).squeeze(-1)

    x = x + 0.25 * torch.sign(at(1, 0) - at(-1, 0)) * ((xi > 0) & (xi < hw - 1))
    y = y + 0.25 * torch.sign(at(0, 1) - at(0, -1)) * ((yi > 0) & (yi < hh - 1))
    return torch.stack([x * stride + (stride - 1) / 2, y * stride + (stride - 1) / 2], -1)


# --------------------------------------------------------------- loader --

class PoseDeviceLoader(ShardedBatches):
    """Pose batches from data resident on the device: images normalised with
    ImageNet statistics, targets the (x, y, v) keypoints."""

    def __init__(self, data: PoseData, *, batch_size: int, device: torch.device, shuffle: bool,
                 seed: int, drop_last: bool, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(data), batch_size=batch_size, device=device, shuffle=shuffle,
                         seed=seed, drop_last=drop_last, rank=rank, world_size=world_size)
        self.images = torch.from_numpy(data.images).to(self.device)
        self.keypoints = torch.from_numpy(data.keypoints).to(self.device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255

    def __iter__(self):
        for index in self.batch_indices():
            x = (self.images[index].float() - self.mean) / self.std
            yield x, self.keypoints[index]


def make_pose_loader(data: PoseData, *, train: bool, batch_size: int,
                     options: LoaderOptions) -> PoseDeviceLoader:
    """The pose loader for ``data`` (one split). Pose data lives on the device; an
    option this loader cannot honour is a ConfigError, never silently dropped.
    (``pin_memory`` has nothing to pin here, as on the expression device path.)"""
    if options.num_workers:
        raise ConfigError(f"--num-workers {options.num_workers}: --task pose has no worker "
                          "processes (its data lives on the device); drop --num-workers")
    if options.kind != "device":
        raise ConfigError(f"--loader {options.kind}: --task pose has only the device-resident "
                          "loader; pass --loader device (or leave --loader auto)")
    if options.image_size is not None:
        raise ConfigError(f"--image-size {options.image_size} applies to --task fer; pose "
                          "images are sized by --pose-size HEIGHTxWIDTH")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return PoseDeviceLoader(data, batch_size=batch_size, device=torch.device(options.device),
                            shuffle=train, seed=options.seed,
                            drop_last=train and len(data) >= batch_size,
                            rank=options.rank, world_size=options.world_size)


__all__ = ["COCO_KEYPOINTS", "NUM_KEYPOINTS", "SKELETON", "PoseData", "PoseDeviceLoader",
           "check_input_size", "decode_heatmaps", "encode_heatmaps", "make_pose_loader",
           "make_synthetic_poses", "parse_pose_size", "read_coco_keypoints"]
