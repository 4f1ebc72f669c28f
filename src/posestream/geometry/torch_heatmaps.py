"""Heatmaps -> keypoints in torch, on the heatmaps' device: the twin of ``posestream.geometry.heatmaps``.

Same steps and numbers as ``decode_heatmaps`` (see that module for the reference it follows):
argmax, DARK on the Gaussian-blurred log map from only the (kernel + 2)^2 window around each peak,
the same 2-heatmap-pixel guard on the Taylor step, then inverse UDP to frame pixels. Only the
(N, K, 2) keypoints and (N, K) scores need to leave the device. The refinement runs in float64
like the numpy code (the windows are small: N x K x 13 x 13 values), so the two agree to far
below 0.01 frame pixel.

The border of the blur is applied by index arithmetic on the window positions instead of padding
whole maps (torch has no 'symmetric' padding, which is OpenCV's BORDER_REFLECT).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from posestream.geometry.affine import udp_inverse_matrix
from posestream.geometry.heatmaps import BLUR_BORDERS, MAX_DARK_OFFSET, check_decode_inputs, dark_step
from posestream.geometry.torch_warp import to_device

__all__ = ["decode_heatmaps_torch", "heatmap_argmax_torch", "refine_dark_udp_torch"]


def heatmap_argmax_torch(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, h, w) -> ``coords`` (N, K, 2) int64 ``(x, y)`` of the first maximum and ``scores``
    (N, K) float32, its value."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    index = torch.argmax(flat, dim=2)  # (N, K), first occurrence like numpy
    scores = flat.gather(2, index[..., None])[..., 0].float()
    return torch.stack([index % w, index // w], dim=-1), scores


def _border_index(index: torch.Tensor, size: int, border: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Map positions that may lie up to ``size - 1`` outside ``0 .. size - 1`` back inside by the
    border rule; also whether each position is real (False only for 'constant', whose outside is 0)."""
    valid = (index >= 0) & (index < size)
    if border == "reflect_101":  # gfedcb|abcdefgh
        index = torch.where(index < 0, -index, index)
        index = torch.where(index > size - 1, 2 * (size - 1) - index, index)
    elif border == "reflect":  # fedcba|abcdefgh
        index = torch.where(index < 0, -index - 1, index)
        index = torch.where(index > size - 1, 2 * size - 1 - index, index)
    else:  # replicate; constant gathers the edge and is masked by `valid`
        index = index.clamp(0, size - 1)
    return index, valid if border == "constant" else torch.ones_like(valid)


def _blurred_neighbourhood(
    heatmaps: torch.Tensor, coords: torch.Tensor, kernel_size: int, sigma: float | None, border: str
) -> torch.Tensor:
    """(N, K, 3, 3) float64: the blurred map at the 3x3 pixels around each peak (see the numpy twin)."""
    n, k, h, w = heatmaps.shape
    radius = kernel_size // 2
    span = torch.arange(kernel_size + 2, device=heatmaps.device) - (radius + 1)  # offsets from the peak
    rows, row_ok = _border_index(coords[..., 1, None] + span, h, border)  # (N, K, S)
    cols, col_ok = _border_index(coords[..., 0, None] + span, w, border)
    size = kernel_size + 2
    flat_index = (rows[..., :, None] * w + cols[..., None, :]).reshape(n, k, size * size)
    window = heatmaps.reshape(n, k, h * w).gather(2, flat_index).reshape(n, k, size, size).double()
    window = window * (row_ok[..., :, None] & col_ok[..., None, :])  # zeros outside for 'constant'

    taps_1d = cv2.getGaussianKernel(kernel_size, sigma or 0, ktype=cv2.CV_64F).ravel()  # cv2.GaussianBlur's
    kernel = to_device(taps_1d, heatmaps.device)
    device = heatmaps.device
    taps = torch.arange(3, device=device)[:, None] + torch.arange(kernel_size, device=device)  # (3, ks)
    along_y = torch.einsum("nkatc,t->nkac", window[:, :, taps, :], kernel)  # (N, K, 3, S)
    return torch.einsum("nkact,t->nkac", along_y[:, :, :, taps], kernel)  # (N, K, 3, 3)


def refine_dark_udp_torch(
    heatmaps: torch.Tensor,
    coords: torch.Tensor,
    kernel_size: int = 11,
    sigma: float | None = None,
    border: str = "reflect_101",
    max_offset: float | None = MAX_DARK_OFFSET,
) -> torch.Tensor:
    """DARK sub-pixel refinement of integer peaks -> (N, K, 2) float64 ``(x, y)`` heatmap pixels.

    Arguments as ``posestream.geometry.heatmaps.refine_dark_udp`` (coords from ``heatmap_argmax_torch``).
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size: expected a positive odd number, got {kernel_size}")
    if border not in BLUR_BORDERS:
        raise ValueError(f"border: expected one of {sorted(BLUR_BORDERS)}, got {border!r}")
    n, k, h, w = heatmaps.shape
    blurred = _blurred_neighbourhood(heatmaps, coords, kernel_size, sigma, border)
    log_hm = torch.log(blurred.clamp(0.001, 50.0)).reshape(n, k, 9)
    # Neighbours off the map take the nearest pixel on it (the reference edge-pads the log map).
    steps = torch.arange(-1, 2, device=heatmaps.device)
    col = (coords[..., 0, None] + steps).clamp(0, w - 1) - coords[..., 0, None] + 1  # (N, K, 3) in 0..2
    row = (coords[..., 1, None] + steps).clamp(0, h - 1) - coords[..., 1, None] + 1

    def at(dx: int, dy: int) -> torch.Tensor:  # (N, K) log of the blurred map at the peak + (dx, dy)
        return log_hm.gather(2, (row[..., dy + 1] * 3 + col[..., dx + 1])[..., None])[..., 0]

    dx, dy = dark_step(at, max_offset, torch)  # the numpy decoder's step, guard included
    return coords.double() + torch.stack([dx, dy], dim=-1)


def decode_heatmaps_torch(
    heatmaps: torch.Tensor,
    center: np.ndarray,
    scale: np.ndarray,
    input_size_wh: tuple[int, int] = (192, 256),
    *,
    dark: bool = True,
    blur_kernel_size: int = 11,
    blur_sigma: float | None = None,
    blur_border: str = "reflect_101",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints in frame pixels from top-down heatmaps, on the heatmaps' device.

    heatmaps: (N, K, h, w) tensor of any float dtype (decoded in float32 / float64). center,
    scale: (N, 2) frame pixels of the crops. Returns ``keypoints`` (N, K, 2) float32 ``(x, y)``
    and ``scores`` (N, K) float32, on the same device. Options as ``decode_heatmaps``.
    """
    center, scale = check_decode_inputs(tuple(heatmaps.shape), center, scale, input_size_wh)
    n, k, h, w = heatmaps.shape
    device = heatmaps.device
    if n == 0:
        return torch.zeros((0, k, 2), device=device), torch.zeros((0, k), device=device)

    maps = heatmaps.float()
    coords, scores = heatmap_argmax_torch(maps)
    if dark:
        xy = refine_dark_udp_torch(maps, coords, blur_kernel_size, blur_sigma, blur_border)
    else:
        xy = coords.double()
    matrix = to_device(udp_inverse_matrix(center, scale, (w, h)), device)  # (N, 2, 3) float64
    keypoints = torch.einsum("nij,nkj->nki", matrix[:, :, :2], xy) + matrix[:, None, :, 2]
    return keypoints.float(), scores
