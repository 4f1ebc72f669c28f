"""UDP crop warps: frame -> model input, and the model-input tensor layout.

Unbiased Data Processing (Huang et al., CVPR 2020) measures image size in *pixel intervals*: a
crop of ``W`` pixels spans ``W - 1`` units, so the region ``[cx - sw/2, cx + sw/2]`` of the frame
maps onto pixel centres ``0 .. W - 1`` of the crop, and a heatmap of ``w`` pixels covers the same
region with ``0 .. w - 1``. Flipping and resizing then introduce no half-pixel bias, and the way back
from any grid (crop or heatmap) to the frame is the same formula with that grid's size. This is
mmpose's ``get_warp_matrix(0, 2c, size - 1, s)`` with rotation 0, as used by ViTPose.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["udp_warp_matrix", "udp_inverse_matrix", "apply_affine", "warp_crops", "to_model_input"]


def _centers_scales(center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if center.ndim != 2 or center.shape[1] != 2 or scale.shape != center.shape:
        raise ValueError(f"center, scale: expected two (N, 2) arrays, got {center.shape} and {scale.shape}")
    return center, scale


def udp_warp_matrix(center: np.ndarray, scale: np.ndarray, output_size_wh: tuple[int, int]) -> np.ndarray:
    """Frame -> crop affine matrices, (N, 2, 3) float64.

    center: (N, 2) ``(cx, cy)`` frame pixels; scale: (N, 2) ``(sw, sh)`` region size in frame pixels.
    output_size_wh: ``(W, H)`` of the crop. ``x_crop = (x - cx + sw / 2) * (W - 1) / sw``.
    """
    center, scale = _centers_scales(center, scale)
    gain = (np.asarray(output_size_wh, dtype=np.float64) - 1.0) / scale  # (N, 2) crop px per frame px
    matrix = np.zeros((len(center), 2, 3), dtype=np.float64)
    matrix[:, 0, 0] = gain[:, 0]
    matrix[:, 1, 1] = gain[:, 1]
    matrix[:, :, 2] = gain * (0.5 * scale - center)
    return matrix


def udp_inverse_matrix(center: np.ndarray, scale: np.ndarray, output_size_wh: tuple[int, int]) -> np.ndarray:
    """Crop (or heatmap) -> frame affine matrices, (N, 2, 3) float64; the inverse of ``udp_warp_matrix``.

    ``x = x_grid * sw / (W - 1) + cx - sw / 2`` for a grid of ``output_size_wh = (W, H)`` pixels.
    """
    center, scale = _centers_scales(center, scale)
    step = scale / (np.asarray(output_size_wh, dtype=np.float64) - 1.0)  # (N, 2) frame px per grid px
    matrix = np.zeros((len(center), 2, 3), dtype=np.float64)
    matrix[:, 0, 0] = step[:, 0]
    matrix[:, 1, 1] = step[:, 1]
    matrix[:, :, 2] = center - 0.5 * scale
    return matrix


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (N, 2, 3) matrices to (N, K, 2) points -> (N, K, 2) float64."""
    points = np.asarray(points, dtype=np.float64)
    return np.einsum("nij,nkj->nki", matrix[:, :, :2], points) + matrix[:, None, :, 2]


def warp_crops(
    image_bgr: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    output_size_wh: tuple[int, int] = (192, 256),
) -> np.ndarray:
    """Cut one UDP crop per person: (H, W, 3) uint8 frame -> (N, out_h, out_w, 3) uint8.

    Bilinear (``cv2.INTER_LINEAR``); pixels outside the frame are 0. Channel order is kept.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"image_bgr: expected (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
    width, height = int(output_size_wh[0]), int(output_size_wh[1])
    matrices = udp_warp_matrix(center, scale, (width, height))
    crops = np.empty((len(matrices), height, width, 3), dtype=np.uint8)
    for crop, matrix in zip(crops, matrices):  # one cv2 call per person; it writes in place
        cv2.warpAffine(
            image_bgr, matrix, (width, height), dst=crop,
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
        )  # fmt: skip
    return crops


def to_model_input(
    crops_bgr: np.ndarray,
    mean: tuple[float, float, float] | np.ndarray,
    std: tuple[float, float, float] | np.ndarray,
    color_order: str = "RGB",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR crops -> (N, 3, H, W) float32 ``(pixel - mean) / std``, C-contiguous.

    mean, std: per channel, 0-255 scale, in the model's ``color_order`` ("RGB" or "BGR").
    out: optional (N, 3, H, W) float32 C-contiguous array to write into (e.g. the first rows of a
    zero-padded batch); it is returned.
    """
    if crops_bgr.ndim != 4 or crops_bgr.shape[3] != 3:
        raise ValueError(f"crops_bgr: expected (N, H, W, 3), got {crops_bgr.shape}")
    if color_order not in ("RGB", "BGR"):
        raise ValueError(f"color_order: expected 'RGB' or 'BGR', got {color_order!r}")
    n, height, width, _ = crops_bgr.shape
    if out is None:
        out = np.empty((n, 3, height, width), dtype=np.float32)
    elif out.shape != (n, 3, height, width) or out.dtype != np.float32 or not out.flags.c_contiguous:
        expected = (n, 3, height, width)
        raise ValueError(f"out: expected C-contiguous float32 {expected}, got {out.shape} {out.dtype}")
    mean = np.asarray(mean, dtype=np.float32).reshape(3)
    inv_std = 1.0 / np.asarray(std, dtype=np.float32).reshape(3)
    source_channel = (2, 1, 0) if color_order == "RGB" else (0, 1, 2)  # crops are BGR
    for c, src in enumerate(source_channel):
        plane = out[:, c]  # (N, H, W) view
        np.subtract(crops_bgr[..., src], mean[c], out=plane, dtype=np.float32)
        plane *= inv_std[c]
    return out
