"""Synthetic pose data for tests on the CPU and the GPU: textured frames, boxes, peaked heatmaps,
and a small real model whose heatmaps peak where a crop is brightest.

pytest puts this folder on ``sys.path`` (for ``conftest.py``), so tests import it as ``pose_synthetic``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posestream.geometry.boxes import xyxy_to_center_scale

K = 17
H, W = 64, 48  # heatmap size of a 256x192 input


def textured_frame(seed: int, height: int = 360, width: int = 480) -> np.ndarray:
    """(H, W, 3) uint8 BGR: smooth gradients, hard-edged blocks and pixel noise (every kind of edge)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([(xx * 255 // width), (yy * 255 // height), ((xx + yy) % 256)], axis=-1).astype(np.int32)
    for _ in range(12):
        x, y = rng.integers(0, width - 40), rng.integers(0, height - 40)
        image[y : y + rng.integers(5, 40), x : x + rng.integers(5, 40)] = rng.integers(0, 256, 3)
    image += rng.integers(-30, 31, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)



def random_boxes_inside(rng: np.random.Generator, n: int, size_wh: tuple[int, int]) -> np.ndarray:
    """(N, 4) xyxy boxes whose padded 3:4 crop region stays inside the frame."""
    width, height = size_wh
    boxes = []
    while len(boxes) < n:
        w, h = rng.uniform(12, width / 2), rng.uniform(20, height / 2)
        x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = np.array([x1, y1, x1 + w, y1 + h])
        center, scale = xyxy_to_center_scale(box[None])
        low, high = center - scale / 2, center + scale / 2
        if low.min() >= 1 and high[0, 0] <= width - 2 and high[0, 1] <= height - 2:
            boxes.append(box)
    return np.stack(boxes) if boxes else np.zeros((0, 4))



def peaked_heatmaps(rng: np.random.Generator, n: int, k: int, noise: float) -> np.ndarray:
    """Gaussian peaks (some on edges and corners) + a distractor + noise: (N, K, 64, 48) float32."""
    yy, xx = np.mgrid[0:H, 0:W]
    peaks = rng.uniform(0, [W - 1, H - 1], size=(n, k, 2))
    peaks[0, :4] = [[0, 0], [W - 1, H - 1], [0.4, 30.2], [20.6, H - 1.3]]
    distractors = rng.uniform(0, [W - 1, H - 1], size=(n, k, 2))

    def gaussian(p: np.ndarray) -> np.ndarray:
        return np.exp(-((xx - p[..., 0, None, None]) ** 2 + (yy - p[..., 1, None, None]) ** 2) / 8.0)

    maps = (gaussian(peaks) + 0.3 * gaussian(distractors)) * rng.uniform(0.3, 1.0, (n, k, 1, 1))
    return (maps + noise * rng.standard_normal(maps.shape)).astype(np.float32)



class BrightSpotModel(nn.Module):
    """(N, 3, 256, 192) normalised crops -> (N, 17, 64, 48) heatmaps peaked at the brightest 4x4 cell."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        brightness = nn.functional.avg_pool2d(x.mean(dim=1, keepdim=True), 4)  # (N, 1, 64, 48)
        weights = torch.linspace(0.5, 1.0, K, device=x.device, dtype=x.dtype).view(1, K, 1, 1)
        return torch.exp(2.0 * (brightness - brightness.amax(dim=(2, 3), keepdim=True))) * weights



def frame_with_people(seed: int, n: int, size_wh: tuple[int, int] = (1280, 480)):
    """A dim textured frame with ``n`` <= 5 people side by side, each in its own 256-px column (no
    crop sees a neighbour's blob): boxes (n, 4) and the bright blob inside each (n, 2)."""
    rng = np.random.default_rng(seed)
    width, height = size_wh
    image = rng.integers(20, 60, (height, width, 3)).astype(np.float64)
    yy, xx = np.mgrid[0:height, 0:width]
    boxes, blobs = [], []
    for column in range(n):
        w, h = rng.uniform(50, 120), rng.uniform(110, 170)
        x1, y1 = 256 * column + (256 - w) / 2 + rng.uniform(-20, 20), rng.uniform(60, height - h - 60)
        blob = np.array([x1 + rng.uniform(0.3, 0.7) * w, y1 + rng.uniform(0.3, 0.7) * h])
        image += 180 * np.exp(-((xx - blob[0]) ** 2 + (yy - blob[1]) ** 2) / (2 * 6.0**2))[..., None]
        boxes.append([x1, y1, x1 + w, y1 + h])
        blobs.append(blob)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, np.array(boxes).reshape(-1, 4), np.array(blobs).reshape(-1, 2)

