"""Heatmaps -> keypoints: argmax, DARK sub-pixel refinement, UDP back to frame pixels.

Follows the ViTPose reference (mmpose 0.x ``keypoints_from_heatmaps`` with ``use_udp=True``,
``target_type='GaussianHeatmap'``, ``modulate_kernel=11``, i.e. ``post_dark_udp``):

1. ``(x0, y0)`` = argmax of each heatmap, score = its maximum.
2. DARK (Zhang et al., CVPR 2020): blur each heatmap with ``cv2.GaussianBlur(hm, (11, 11), 0)``
   (OpenCV derives sigma = 0.3 * ((11 - 1) / 2 - 1) + 0.8 = 2.0 from the size, matching the
   training target's sigma 2; border ``BORDER_REFLECT_101``), clip to [0.001, 50], take the log,
   and move to the maximum of the second-order Taylor expansion at ``(x0, y0)``:
   ``p = p0 - H^-1 g`` with central differences for the gradient ``g`` and Hessian ``H``
   (the map is edge-padded by one pixel so border peaks have neighbours). Only those 3x3 values
   of the blurred map are needed, so only they are computed (same numbers, ~20x less work).
3. UDP (Huang et al., CVPR 2020): heatmap pixel ``0 .. w - 1`` spans the crop region
   ``cx - sw/2 .. cx + sw/2``, so ``x = x_hm * sw / (w - 1) + cx - sw / 2`` (likewise for y).

Known difference: Hugging Face ``VitPoseImageProcessor.post_process_pose_estimation`` blurs with
``scipy.ndimage.gaussian_filter(sigma=0.8, radius=5)`` in ``'reflect'`` mode (OpenCV's
``BORDER_REFLECT``): sigma 0.8 is OpenCV's value for a 3x3 kernel, not for the 11x11 one it asks
for. On clean Gaussian heatmaps away from the border both give the same point (a blurred Gaussian
stays Gaussian, whose log is exactly quadratic); with noise they part (max 0.04 / 0.14 heatmap px
for noise sd 0.01 / 0.03 on unit peaks), and the reference's wider blur is about twice as close
to the true peak.
``decode_heatmaps(..., blur_sigma=0.8, blur_border="reflect")`` reproduces Hugging Face exactly.

Border bias: the reference's mirrored border doubles a peak that sits near the heatmap edge, and
the wide blur merges the two, pulling the refined point towards the edge. On clean sigma-2
Gaussians 1-3 px from the edge the worst error measured was ~1.4 px (``reflect_101``) vs ~0.55 px
with ``blur_border="constant"``; interior peaks (>= 8 px in) are identical for every border.
The default stays the reference's.

Also unlike the reference, a heatmap whose maximum is <= 0 keeps its argmax (the reference sets it
to -1 before refining, which lands on garbage); its score says it is not a detection either way.
"""

from __future__ import annotations

import cv2
import numpy as np

from posestream.geometry.affine import apply_affine, udp_inverse_matrix

__all__ = [
    "decode_heatmaps", "heatmap_argmax", "refine_dark_udp", "blurred_neighbourhood", "BLUR_BORDERS",
    "MAX_DARK_OFFSET", "dark_step", "check_decode_inputs",
]  # fmt: skip

# OpenCV border names -> the numpy.pad mode that extends a map the same way.
_NUMPY_PAD_MODES = {
    "reflect_101": "reflect",  # cv2.BORDER_REFLECT_101 (OpenCV's default): gfedcb|abcdefgh
    "reflect": "symmetric",  # cv2.BORDER_REFLECT (scipy.ndimage's 'reflect'): fedcba|abcdefgh
    "replicate": "edge",  # cv2.BORDER_REPLICATE: aaaaaa|abcdefgh
    "constant": "constant",  # cv2.BORDER_CONSTANT with 0: 000000|abcdefgh
}
BLUR_BORDERS: tuple[str, ...] = tuple(_NUMPY_PAD_MODES)


def heatmap_argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer peak per heatmap.

    heatmaps: (N, K, h, w). Returns ``coords`` (N, K, 2) int64 ``(x, y)`` heatmap pixels and
    ``scores`` (N, K) float32, the maxima.
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    index = np.argmax(flat, axis=2)  # (N, K)
    scores = np.take_along_axis(flat, index[..., None], axis=2)[..., 0].astype(np.float32)
    coords = np.stack([index % w, index // w], axis=-1)
    return coords, scores


def blurred_neighbourhood(
    heatmaps: np.ndarray,
    coords: np.ndarray,
    kernel_size: int = 11,
    sigma: float | None = None,
    border: str = "reflect_101",
) -> np.ndarray:
    """The Gaussian-blurred heatmap at the 3x3 pixels around each peak, (N, K, 3, 3) float64.

    Equal to ``cv2.GaussianBlur(map, (kernel_size, kernel_size), sigma, borderType=border)``
    sampled at ``(x + dx, y + dy)``, dx, dy in -1..1 (rows: dy, columns: dx), but computes only
    those 9 values per map: a (kernel_size + 2)^2 window is gathered around each peak from the
    border-extended maps and filtered with the separable kernel. Positions outside the map
    (peaks on the edge) hold the blur of the extended image; callers clamp them.

    heatmaps: (N, K, h, w); coords: (N, K, 2) integer ``(x, y)`` peaks. kernel_size: odd.
    sigma: None = OpenCV's rule from the size (``0.3 * ((kernel_size - 1) / 2 - 1) + 0.8``, 2.0
    for 11). border: "reflect_101" (OpenCV's default, the reference), "reflect" (scipy's default),
    "replicate" or "constant" (zeros); peaks within ~3 px of the edge are pulled towards it by the
    mirrored borders, zeros bias them least (see the module docstring).
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size: expected a positive odd number, got {kernel_size}")
    if border not in _NUMPY_PAD_MODES:
        raise ValueError(f"border: expected one of {sorted(_NUMPY_PAD_MODES)}, got {border!r}")
    n, k = heatmaps.shape[:2]
    radius = kernel_size // 2
    # Extended by radius + 1 so the windows of the neighbours x - 1 and x + 1 fit.
    margin = (radius + 1, radius + 1)
    extended = np.pad(heatmaps, ((0, 0), (0, 0), margin, margin), mode=_NUMPY_PAD_MODES[border])
    span = np.arange(kernel_size + 2)  # window offsets; extended index x + j is map index x - radius - 1 + j
    rows = coords[..., 1, None] + span  # (N, K, S)
    cols = coords[..., 0, None] + span
    person = np.arange(n)[:, None, None, None]
    joint = np.arange(k)[None, :, None, None]
    window = extended[person, joint, rows[..., :, None], cols[..., None, :]]  # (N, K, S, S)
    window = window.astype(np.float64)

    # The same taps cv2.GaussianBlur uses (it derives sigma from the size when given 0).
    kernel = cv2.getGaussianKernel(kernel_size, sigma or 0, ktype=cv2.CV_64F).ravel()
    taps = np.arange(3)[:, None] + np.arange(kernel_size)[None, :]  # (3, kernel_size) sliding positions
    along_y = np.einsum("nkatc,t->nkac", window[:, :, taps, :], kernel)  # (N, K, 3, S)
    return np.einsum("nkact,t->nkac", along_y[:, :, :, taps], kernel)  # (N, K, 3, 3)


MAX_DARK_OFFSET = 2.0  # heatmap pixels


def refine_dark_udp(
    heatmaps: np.ndarray,
    coords: np.ndarray,
    kernel_size: int = 11,
    sigma: float | None = None,
    border: str = "reflect_101",
    max_offset: float | None = MAX_DARK_OFFSET,
) -> np.ndarray:
    """DARK sub-pixel refinement of integer peaks.

    max_offset: a Taylor step longer than this (heatmap px, either axis) falls back to the integer
    peak; None = the reference's unguarded step.

    heatmaps: (N, K, h, w); coords: (N, K, 2) integer ``(x, y)`` peaks (from ``heatmap_argmax``).
    Returns (N, K, 2) float64 refined ``(x, y)`` in heatmap pixels. Blur options as in
    ``blurred_neighbourhood``.
    """
    h, w = heatmaps.shape[2:]
    coords = coords.astype(np.int64)
    log_hm = np.log(np.clip(blurred_neighbourhood(heatmaps, coords, kernel_size, sigma, border), 0.001, 50.0))
    # The reference edge-pads the blurred log map by one pixel: a neighbour off the map takes the
    # value of the nearest pixel on it, i.e. clamp the neighbour's position, per axis.
    steps = np.arange(-1, 2)
    col = np.clip(coords[..., 0, None] + steps, 0, w - 1) - coords[..., 0, None] + 1  # (N, K, 3) into 0..2
    row = np.clip(coords[..., 1, None] + steps, 0, h - 1) - coords[..., 1, None] + 1
    person = np.arange(len(coords))[:, None]
    joint = np.arange(coords.shape[1])[None, :]

    def at(dx: int, dy: int) -> np.ndarray:  # (N, K) log of the blurred map at the peak + (dx, dy)
        return log_hm[person, joint, row[..., dy + 1], col[..., dx + 1]]

    dx, dy = dark_step(at, max_offset, np)
    return coords.astype(np.float64) + np.stack([dx, dy], axis=-1)


def dark_step(at, max_offset: float | None, xp):
    """The DARK Taylor step ``-H^-1 g`` at each peak, shared by the numpy and the torch decoders.

    at(dx, dy): the log of the blurred map at the peak + (dx, dy), an (N, K) array of ``xp``
    (``numpy`` or ``torch``: only arithmetic, ``abs`` and ``where`` are used). Returns the step
    ``(dx, dy)``, two (N, K) arrays in heatmap pixels.
    """
    center = at(0, 0)
    right, left, down, up = at(1, 0), at(-1, 0), at(0, 1), at(0, -1)
    # Gradient and Hessian by central differences (dxy from the two diagonal neighbours).
    gx = 0.5 * (right - left)
    gy = 0.5 * (down - up)
    hxx = right - 2.0 * center + left
    hyy = down - 2.0 * center + up
    hxy = 0.5 * (at(1, 1) - right - down + 2.0 * center - left - up + at(-1, -1))
    # Offset = -H^-1 g with the reference's eps on the diagonal; closed-form 2x2 inverse.
    eps = float(np.finfo(np.float32).eps)
    hxx = hxx + eps
    hyy = hyy + eps
    det = hxx * hyy - hxy * hxy
    safe = xp.abs(det) > 0
    det = xp.where(safe, det, 1.0)
    dx = xp.where(safe, -(hyy * gx - hxy * gy) / det, 0.0)
    dy = xp.where(safe, -(hxx * gy - hxy * gx) / det, 0.0)
    # Guard (not in the reference): on a flat or saddle-shaped map (random weights, an occluded
    # joint) the Taylor step can be arbitrarily long; seen: 11 heatmap px, throwing a keypoint far
    # outside its crop. A step longer than MAX_DARK_OFFSET falls back to the integer peak. Real
    # peaks are unaffected: their steps stay under about 1 px, also at the map's edges.
    if max_offset is not None:
        sane = (xp.abs(dx) <= max_offset) & (xp.abs(dy) <= max_offset)
        dx, dy = xp.where(sane, dx, 0.0), xp.where(sane, dy, 0.0)
    return dx, dy


def check_decode_inputs(
    shape: tuple[int, ...], center: np.ndarray, scale: np.ndarray, input_size_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a decode call (heatmaps ``shape`` (N, K, h, w)); center, scale as (N, 2) float64."""
    if len(shape) != 4:
        raise ValueError(f"heatmaps: expected (N, K, h, w), got {shape}")
    n, _, h, w = shape
    in_w, in_h = input_size_wh
    if in_w * h != in_h * w:
        raise ValueError(f"heatmaps {w}x{h} (w x h) do not share the aspect ratio of the input {in_w}x{in_h}")
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    if len(center) != n or len(scale) != n:
        raise ValueError(f"center {center.shape}, scale {scale.shape}: expected ({n}, 2) like the heatmaps")
    return center, scale


def decode_heatmaps(
    heatmaps: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    input_size_wh: tuple[int, int] = (192, 256),
    *,
    dark: bool = True,
    blur_kernel_size: int = 11,
    blur_sigma: float | None = None,
    blur_border: str = "reflect_101",
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints in frame pixels from top-down heatmaps.

    heatmaps: (N, K, h, w), e.g. (N, 17, 64, 48). center, scale: (N, 2) frame pixels, the crops
    the heatmaps were predicted from (``xyxy_to_center_scale``). input_size_wh: the model input
    ``(W, H)``; with UDP the result depends only on the heatmap grid, so it serves to check that
    the heatmap is the input downsampled by one stride on both axes.
    dark: refine with DARK (else integer argmax). Blur options: see ``blurred_neighbourhood``;
    ``blur_sigma=0.8, blur_border="reflect"`` reproduces Hugging Face (see module docstring).

    Returns ``keypoints`` (N, K, 2) float32 ``(x, y)`` frame pixels and ``scores`` (N, K) float32
    heatmap maxima.
    """
    center, scale = check_decode_inputs(tuple(heatmaps.shape), center, scale, input_size_wh)
    n, k, h, w = heatmaps.shape
    if n == 0:
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)

    coords, scores = heatmap_argmax(heatmaps)
    if dark:
        xy = refine_dark_udp(heatmaps, coords, blur_kernel_size, blur_sigma, blur_border)
    else:
        xy = coords.astype(np.float64)
    keypoints = apply_affine(udp_inverse_matrix(center, scale, (w, h)), xy)  # (N, K, 2)
    return keypoints.astype(np.float32), scores
