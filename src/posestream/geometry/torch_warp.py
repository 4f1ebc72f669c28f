"""UDP crop warps and model-input normalisation in torch, on whatever device the frames are on.

The device-side twin of ``posestream.geometry.affine`` (``warp_crops`` + ``to_model_input``): the
same UDP matrices (``udp_warp_matrix``), bilinear sampling with zeros outside the frame, rounding
to whole grey levels, then ``(pixel - mean) / std`` in the model's colour order. On a GPU it keeps
frames on the device and replaces one ``cv2.warpAffine`` per person with one sampling call for
every person of every frame of a batch; on the CPU the same code runs, which is how the tests
compare it with OpenCV.

How one call samples crops from several frames: the frames are stacked as the depth axis of a
5-D volume ``(1, 3, F, H, W)`` and sampled with 3-D ``grid_sample``; each crop's depth coordinate
sits exactly on its frame's slice, so the trilinear weight of the neighbouring slices is zero
(up to float rounding, ~1e-7 of a grey level) and the result is the 2-D bilinear crop of that
frame. The in-plane grid comes from ``F.affine_grid`` with the UDP matrix rewritten for
``align_corners=True`` normalised coordinates, where ``-1`` and ``1`` are the centres of the first
and last pixel: the UDP convention (a crop of W pixels spans W - 1 intervals).

OpenCV 5 interpolates in floating point, as this does; the crops then agree within one grey level
(OpenCV 4 quantised positions to 1/32 px and differed by up to ~3 levels at sharp edges).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from posestream.geometry.affine import udp_inverse_matrix

__all__ = ["udp_theta", "warp_crops_torch", "normalise_crops", "stack_frames", "to_device"]


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array on ``device`` (same dtype) without stalling it: on CUDA a copy from
    pageable memory waits for all work queued on the stream, one from pinned memory does not."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device=device, non_blocking=True)


def udp_theta(
    center: np.ndarray, scale: np.ndarray, output_size_wh: tuple[int, int], image_size_wh: tuple[int, int]
) -> np.ndarray:
    """``F.affine_grid`` matrices (N, 2, 3) float64 for UDP crops, ``align_corners=True``.

    ``affine_grid`` maps a normalised crop position ``u_n = 2 u / (w - 1) - 1`` to a normalised
    frame position ``x_n = 2 x / (W - 1) - 1``; with ``x = A u + b`` (``udp_inverse_matrix``)
    that is ``x_n = D_in A D_out^-1 u_n + ...``, written out below. center, scale: (N, 2) frame
    pixels (``xyxy_to_center_scale``); sizes are ``(w, h)`` / ``(W, H)`` in pixels.
    """
    inverse = udp_inverse_matrix(center, scale, output_size_wh)  # (N, 2, 3): crop px -> frame px
    out_half = (np.asarray(output_size_wh, dtype=np.float64) - 1.0) / 2.0  # crop px per normalised unit
    in_half = (np.asarray(image_size_wh, dtype=np.float64) - 1.0) / 2.0
    if np.any(out_half <= 0) or np.any(in_half <= 0):
        raise ValueError(f"sizes must be at least 2 px: output {output_size_wh}, image {image_size_wh}")
    linear = inverse[:, :, :2] * out_half[None, None, :] / in_half[None, :, None]  # D_in A D_out^-1
    # u_n = 0 is crop pixel out_half; it lands on frame pixel A @ out_half + b.
    offset = (np.einsum("nij,j->ni", inverse[:, :, :2], out_half) + inverse[:, :, 2]) / in_half - 1.0
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def stack_frames(frames: list[torch.Tensor]) -> torch.Tensor:
    """F frames (H, W, 3) uint8 on one device -> the (1, 3, F, H, W) float32 volume that
    ``warp_crops_torch`` samples."""
    if not frames:
        raise ValueError("stack_frames: no frames")
    shapes = {tuple(frame.shape) for frame in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames of one batch must share a size, got {sorted(shapes)}")
    (shape,) = shapes
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames: expected (H, W, 3), got {shape}")
    volume = torch.stack(frames)  # (F, H, W, 3) uint8
    return volume.permute(3, 0, 1, 2).unsqueeze(0).float()  # (1, 3, F, H, W)


def warp_crops_torch(
    volume: torch.Tensor,
    frame_index: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    output_size_wh: tuple[int, int] = (192, 256),
) -> torch.Tensor:
    """UDP crops of ``N`` people from ``F`` frames in one sampling call.

    volume: (1, 3, F, H, W) float32 (``stack_frames``), channel order as in the frames (BGR).
    frame_index: (N,) which frame each person is in; center, scale: (N, 2) frame pixels.
    Returns (N, 3, out_h, out_w) float32 on the volume's device, rounded to whole grey levels
    (what the uint8 OpenCV crops hold); pixels outside the frame are 0.
    """
    if volume.ndim != 5 or volume.shape[:2] != (1, 3):
        raise ValueError(f"volume: expected (1, 3, F, H, W), got {tuple(volume.shape)}")
    num_frames, height, width = volume.shape[2:]
    frame_index = np.asarray(frame_index, dtype=np.int64).reshape(-1)
    n = len(frame_index)
    out_w, out_h = int(output_size_wh[0]), int(output_size_wh[1])
    if n == 0:
        return volume.new_zeros((0, 3, out_h, out_w))
    if frame_index.min() < 0 or frame_index.max() >= num_frames:
        raise ValueError(f"frame_index: expected values in 0..{num_frames - 1}, got {frame_index.tolist()}")
    device = volume.device
    theta = to_device(udp_theta(center, scale, (out_w, out_h), (width, height)).astype(np.float32), device)
    plane = F.affine_grid(theta, [n, 1, out_h, out_w], align_corners=True)  # (N, h, w, 2) normalised x, y
    # Depth: slice f of F sits at 2 f / (F - 1) - 1 (any value for F = 1, where the axis has one slice).
    depth = frame_index * (2.0 / (num_frames - 1)) - 1.0 if num_frames > 1 else np.zeros(n)
    z = to_device(depth.astype(np.float32), device)[:, None, None, None].expand(n, out_h, out_w, 1)
    grid = torch.cat([plane, z], dim=-1).unsqueeze(0)  # (1, N, h, w, 3): x, y, z
    crops = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return crops[0].transpose(0, 1).round_()  # (1, 3, N, h, w) -> (N, 3, h, w)


def normalise_crops(
    crops_bgr: torch.Tensor,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    color_order: str = "RGB",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(N, 3, H, W) BGR crops, 0-255 -> ``(pixel - mean) / std`` in the model's ``color_order``, as ``dtype``.

    mean, std: per channel, 0-255 scale, in ``color_order`` ("RGB" or "BGR"), as ``to_model_input``.
    """
    if color_order not in ("RGB", "BGR"):
        raise ValueError(f"color_order: expected 'RGB' or 'BGR', got {color_order!r}")
    if crops_bgr.ndim != 4 or crops_bgr.shape[1] != 3:
        raise ValueError(f"crops_bgr: expected (N, 3, H, W), got {tuple(crops_bgr.shape)}")
    x = crops_bgr.flip(1) if color_order == "RGB" else crops_bgr
    mean_t = to_device(np.asarray(mean, np.float32), x.device).view(1, 3, 1, 1)
    inv_std = 1.0 / to_device(np.asarray(std, np.float32), x.device).view(1, 3, 1, 1)
    return ((x - mean_t) * inv_std).to(dtype)
