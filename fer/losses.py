"""Pose scoring: the heatmap loss and the PCK metric of the pose task.

(The expression task's loss is torch's CrossEntropyLoss and its metric top-1;
both are a line in :mod:`fer.tasks`.)
"""

from __future__ import annotations

import torch
from torch import nn

from fer.data.pose import decode_heatmaps, encode_heatmaps

PCK_THRESHOLD = 0.2


class JointsMSELoss(nn.Module):
    """Mean squared heatmap error, each joint weighted by whether it is labelled
    (an unlabelled joint contributes nothing)."""

    def forward(self, predicted: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        target, weight = encode_heatmaps(keypoints, predicted.shape[-2:])
        w = weight[..., None, None]
        return 0.5 * ((predicted.float() * w - target) ** 2).mean()


def pck_hits(predicted: torch.Tensor, keypoints: torch.Tensor,
             threshold: float = PCK_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, labelled) keypoint counts for PCK@threshold; the reference length is
    the larger side of the labelled keypoints' bounding box."""
    pred = decode_heatmaps(predicted)
    labelled = keypoints[..., 2] > 0
    pts = keypoints[..., :2]
    big = torch.finfo(pts.dtype).max
    lo = torch.where(labelled[..., None], pts, torch.full_like(pts, big)).amin(1)
    hi = torch.where(labelled[..., None], pts, torch.full_like(pts, -big)).amax(1)
    size = (hi - lo).amax(-1).clamp(min=1.0)  # [B]
    dist = (pred - pts).norm(dim=-1)
    correct = (dist <= threshold * size[:, None]) & labelled
    return correct.sum(), labelled.sum()
