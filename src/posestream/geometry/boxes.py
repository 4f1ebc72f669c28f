"""Person boxes: format conversion and the top-down (center, scale) encoding.

Top-down pose models see each person through a fixed-aspect crop (192x256 for ViTPose). A box is
encoded as ``center`` (its middle) and ``scale`` (the size of the region to crop, in pixels): the
shorter side is grown until the box has the model's aspect ratio, then both sides are multiplied
by ``padding`` so limbs that stick out of a tight detector box stay in view. This is the mmpose /
ViTPose convention (``_xywh2cs``). mmpose and Hugging Face ``VitPoseImageProcessor`` store the scale
divided by a "pixel std" of 200; here it stays in pixels (multiply theirs by 200 to compare).
"""

from __future__ import annotations

import numpy as np

__all__ = ["xyxy_to_center_scale", "xywh_to_xyxy", "clip_xyxy", "area_xyxy", "MIN_SCALE_PX"]

# A crop narrower than this is a degenerate box; clamping keeps the warp matrix finite.
MIN_SCALE_PX = 1.0


def _as_boxes(name: str, boxes: np.ndarray) -> np.ndarray:
    """``boxes`` as a float64 (N, 4) array, or ValueError naming ``name``."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), got {array.shape}")
    return array


def xyxy_to_center_scale(
    xyxy: np.ndarray, aspect_wh: float = 192 / 256, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Encode boxes as crop centers and crop sizes in pixels.

    xyxy: (N, 4) boxes ``(x1, y1, x2, y2)`` in frame pixels.
    aspect_wh: width / height of the model input (192 / 256 for ViTPose).
    padding: factor applied to both sides after fixing the aspect ratio.

    Returns ``center`` (N, 2) float64 ``(cx, cy)`` and ``scale`` (N, 2) float64 ``(w, h)`` of the
    region to crop, with ``w / h == aspect_wh`` (sides below ``MIN_SCALE_PX`` are clamped).
    """
    boxes = _as_boxes("xyxy", xyxy)
    if not aspect_wh > 0 or not padding > 0:
        raise ValueError(f"aspect_wh and padding must be positive, got {aspect_wh}, {padding}")
    center = 0.5 * (boxes[:, :2] + boxes[:, 2:])  # (N, 2)
    w = np.abs(boxes[:, 2] - boxes[:, 0])
    h = np.abs(boxes[:, 3] - boxes[:, 1])
    # Grow the side that is too short for the aspect ratio (never shrink).
    too_wide = w > aspect_wh * h
    scale = np.stack([np.where(too_wide, w, h * aspect_wh), np.where(too_wide, w / aspect_wh, h)], axis=1)
    scale *= padding  # (N, 2)
    return center, np.maximum(scale, MIN_SCALE_PX)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) ``(x, y, w, h)`` (COCO, top-left corner) -> (N, 4) ``(x1, y1, x2, y2)``, float64."""
    boxes = _as_boxes("xywh", xywh)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def clip_xyxy(xyxy: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes clipped to a ``size_wh`` frame (``0 <= x <= W``, ``0 <= y <= H``), float64."""
    boxes = _as_boxes("xyxy", xyxy)
    width, height = size_wh
    return np.clip(boxes, 0.0, [width, height, width, height])


def area_xyxy(xyxy: np.ndarray) -> np.ndarray:
    """(N,) areas of (N, 4) ``xyxy`` boxes in square pixels (0 for inverted boxes), float64."""
    boxes = _as_boxes("xyxy", xyxy)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
