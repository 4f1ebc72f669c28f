"""Training samples: person box -> augmented UDP crop, joints in crop pixels, heatmap targets.

The geometry is the inference geometry (``posestream.geometry``): the box becomes ``center, scale``
through ``xyxy_to_center_scale`` (aspect 192/256, padding 1.25) and the crop matrix is
``udp_warp_matrix``; augmentation only changes ``center, scale`` and composes a rotation about the
crop centre on top, so with augmentation off a training crop is bit-for-bit the crop the estimator
makes.

Augmentation, the ViTPose configs' train pipeline (mmpose 0.x transforms, same order):

1. ``TopDownRandomFlip(flip_prob=0.5)``: mirror; left/right joints swap (the flip pairs of the
   category's ``KeypointSet``). Done here on the crop (``x -> W_in - 1 - x`` under UDP), which is the
   same picture as flipping the image first.
2. ``TopDownHalfBodyTransform(num_joints_half_body=8, prob_half_body=0.3)``: with more than 8 labelled
   joints, re-centre on the upper or the lower body (lower = names with hip/knee/ankle/foot/heel/toe),
   box of those joints, aspect-fixed, x1.5. (mmpose picks upper with ``randn() < 0.5``, i.e. ~69 %;
   here it is a fair coin.)
3. ``TopDownGetRandomScaleRotation(rot_factor=40, scale_factor=0.5)``: scale x ``clip(1 + 0.5 N(0,1),
   0.5, 1.5)``; with probability 0.6 rotate by ``clip(40 N(0,1), -80, 80)`` degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posestream.datasets.coco_keypoints import PersonInstance
from posestream.geometry.affine import udp_warp_matrix
from posestream.geometry.boxes import xyxy_to_center_scale

__all__ = [
    "AugmentConfig", "NO_AUGMENT", "LOWER_BODY_WORDS", "lower_body_mask", "sample_augmentation",
    "crop_matrix", "make_crop",
]  # fmt: skip

LOWER_BODY_WORDS = ("hip", "knee", "ankle", "foot", "heel", "toe")


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the train-time augmentation (defaults: the ViTPose configs)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5
    scale_factor: float = 0.5
    rotation_factor: float = 40.0
    rotation_prob: float = 0.6


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0, 1.5, 0.0, 0.0, 0.0)


def lower_body_mask(names: tuple[str, ...]) -> np.ndarray:
    """(K,) bool: which keypoints belong to the lower body for the half-body transform."""
    return np.array([any(word in n for word in LOWER_BODY_WORDS) for n in names], bool)


def _half_body(
    keypoints: np.ndarray, lower: np.ndarray, rng: np.random.Generator, aspect_wh: float, padding: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """center (2,), scale (2,) of the upper or lower body's labelled joints, or None if too few."""
    labelled = keypoints[:, 2] > 0
    upper_ids = np.flatnonzero(labelled & ~lower)
    lower_ids = np.flatnonzero(labelled & lower)
    if rng.random() < 0.5 and len(upper_ids) > 2:
        chosen = upper_ids
    elif len(lower_ids) > 2:
        chosen = lower_ids
    else:
        chosen = upper_ids
    if len(chosen) < 2:
        return None
    pts = keypoints[chosen, :2].astype(np.float64)
    center = pts.mean(axis=0)
    w, h = pts.max(axis=0) - pts.min(axis=0)
    if w > aspect_wh * h:
        h = w / aspect_wh
    else:
        w = h * aspect_wh
    return center, np.array([w, h]) * padding


def sample_augmentation(
    rng: np.random.Generator,
    center: np.ndarray,
    scale: np.ndarray,
    keypoints: np.ndarray,
    lower: np.ndarray,
    config: AugmentConfig,
    aspect_wh: float = 192 / 256,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Draw one augmentation: returns ``(center (2,), scale (2,), rotation_deg, flip)``.

    center, scale: (2,) pixels from ``xyxy_to_center_scale``; keypoints: (K, 3) ``x, y, v`` in image
    pixels; lower: (K,) bool from ``lower_body_mask``.
    """
    flip = bool(rng.random() < config.flip_prob)
    if (keypoints[:, 2] > 0).sum() > config.half_body_min_joints and rng.random() < config.half_body_prob:
        half = _half_body(keypoints, lower, rng, aspect_wh, config.half_body_padding)
        if half is not None:
            center, scale = half
    sf = config.scale_factor
    scale = np.asarray(scale, np.float64) * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    rf = config.rotation_factor
    rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
    if rng.random() >= config.rotation_prob:
        rotation = 0.0
    return np.asarray(center, np.float64), scale, rotation, flip


def crop_matrix(
    center: np.ndarray, scale: np.ndarray, rotation_deg: float, output_size_wh: tuple[int, int] = (192, 256)
) -> np.ndarray:
    """(2, 3) float64 image -> crop matrix: ``udp_warp_matrix`` then a rotation about the crop centre.

    Rotation 0 gives exactly the inference matrix.
    """
    center, scale = np.asarray(center, np.float64)[None], np.asarray(scale, np.float64)[None]  # (1, 2) each
    m = np.asarray(udp_warp_matrix(center, scale, output_size_wh))[0].astype(np.float64)
    if rotation_deg == 0.0:
        return m
    w, h = output_size_wh
    r = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), rotation_deg, 1.0)  # crop-centre pivot
    return r @ np.vstack([m, [0.0, 0.0, 1.0]])


def make_crop(
    image_bgr: np.ndarray,
    person: PersonInstance,
    flip_index: np.ndarray,
    lower: np.ndarray,
    rng: np.random.Generator | None,
    config: AugmentConfig,
    output_size_wh: tuple[int, int] = (192, 256),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training crop.

    Returns crop (H_in, W_in, 3) uint8 BGR, joints (K, 2) float32 crop pixels, visible (K,) float32
    (1 where labelled). ``rng=None`` means no augmentation (the inference crop).
    """
    w, h = output_size_wh
    center, scale = xyxy_to_center_scale(person.xyxy[None].astype(np.float32), aspect_wh=w / h, padding=1.25)
    center, scale = np.asarray(center, np.float64)[0], np.asarray(scale, np.float64)[0]
    rotation, flip = 0.0, False
    if rng is not None:
        center, scale, rotation, flip = sample_augmentation(
            rng, center, scale, person.keypoints, lower, config, aspect_wh=w / h
        )
    m = crop_matrix(center, scale, rotation, output_size_wh)
    crop = cv2.warpAffine(image_bgr, m, (w, h), flags=cv2.INTER_LINEAR)
    joints = person.keypoints[:, :2].astype(np.float64) @ m[:, :2].T + m[:, 2]  # (K, 2) crop pixels
    visible = (person.keypoints[:, 2] > 0).astype(np.float32)
    if flip:
        crop = crop[:, ::-1].copy()
        joints[:, 0] = (w - 1) - joints[:, 0]
        joints, visible = joints[flip_index], visible[flip_index]
    return crop, joints.astype(np.float32), visible
