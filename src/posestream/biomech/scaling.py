"""Pixels to metres: from the person's height, or from two points a known distance apart (a
two-point calibration; the flag is ``--scale-points``, as ``--calibration`` names int8 pictures).

Height (after Sports2D, which scales its 2D output the same way): the person's height in pixels
is the sum of median segment lengths over the clip, each median taken over the frames where both
ends of the segment score above the threshold, left and right averaged:

    shank (ankle-knee) + thigh (knee-hip) + trunk (hip-shoulder) + head

where head = 1.33 x |mid-shoulder - nose| (Sports2D's stand-in when the model has no head-top
keypoint) and the floor-to-ankle height, which COCO keypoints cannot see, is taken as 3.9% of
the height (Winter, *Biomechanics and Motor Control of Human Movement*, anthropometric table).
So ``m_per_px = (1 - 0.039) * height_m / height_px``. Medians rather than means: a frame where a
segment points at the camera (foreshortened) or a keypoint is misplaced moves them little. The
scale is only right for movement in a plane parallel to the image (a side view), as in Sports2D.

Two points: ``m_per_px = distance_m / |p2 - p1|`` for two image points (pixels) of known distance.

Coordinates then become X = x * s (right), Y = -y * s (up: image y points down), Z = 0, origin at
the image's top-left corner; :func:`to_world` does that, for metres or (s = 1) pixels alike.
"""

from __future__ import annotations

import math

import numpy as np

from posestream.errors import InputError
from posestream.types import COCO_KEYPOINTS

__all__ = ["height_px", "scale_from_height", "scale_from_points", "parse_scale_points", "to_world",
           "ANKLE_HEIGHT_FRACTION", "HEAD_FACTOR"]  # fmt: skip

ANKLE_HEIGHT_FRACTION = 0.039  # floor to ankle, fraction of standing height (Winter)
HEAD_FACTOR = 1.33  # mid-shoulder -> top of head, as a multiple of mid-shoulder -> nose (Sports2D)

_KP = {name: i for i, name in enumerate(COCO_KEYPOINTS)}


def _segment(kp: np.ndarray, ok: np.ndarray, a: str, b: str) -> np.ndarray:
    """(T,) length of segment a-b per frame; NaN where either end is not valid."""
    ia, ib = _KP[a], _KP[b]
    length = np.hypot(*(kp[:, ia] - kp[:, ib]).T)
    return np.where(ok[:, ia] & ok[:, ib], length, np.nan)


def _median_sides(kp: np.ndarray, ok: np.ndarray, a: str, b: str) -> float:
    both = np.concatenate([_segment(kp, ok, f"left_{a}", f"left_{b}"), _segment(kp, ok, f"right_{a}", f"right_{b}")])
    both = both[np.isfinite(both)]
    return float(np.median(both)) if both.size else math.nan


def height_px(keypoints: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> dict[str, float]:
    """Median segment lengths (pixels) of one person over a clip, and their sum ``ankle_to_head``.

    keypoints: (T, K, 2) with COCO-17 first; scores: (T, K). A segment never seen is NaN, and so
    is the sum.
    """
    kp = np.asarray(keypoints, np.float64)[:, : len(COCO_KEYPOINTS)]
    ok = (np.asarray(scores)[:, : len(COCO_KEYPOINTS)] >= threshold) & np.isfinite(kp).all(axis=-1)
    out = {
        "shank": _median_sides(kp, ok, "ankle", "knee"),
        "thigh": _median_sides(kp, ok, "knee", "hip"),
        "trunk": _median_sides(kp, ok, "hip", "shoulder"),
    }
    ls, rs, nose = _KP["left_shoulder"], _KP["right_shoulder"], _KP["nose"]
    neck = np.hypot(*((kp[:, ls] + kp[:, rs]) / 2 - kp[:, nose]).T)
    neck = neck[ok[:, ls] & ok[:, rs] & ok[:, nose]]
    out["head"] = HEAD_FACTOR * float(np.median(neck)) if neck.size else math.nan
    out["ankle_to_head"] = out["shank"] + out["thigh"] + out["trunk"] + out["head"]
    return out


def scale_from_height(keypoints: np.ndarray, scores: np.ndarray, height_m: float,
                      threshold: float = 0.3) -> tuple[float, dict[str, float]]:  # fmt: skip
    """(metres per pixel, the segment medians) for a person ``height_m`` tall. InputError when a
    segment is never seen (the person must be fully visible in some frames)."""
    if not (math.isfinite(height_m) and 0.3 <= height_m <= 3.0):
        raise InputError(f"--person-height must be a height in metres between 0.3 and 3, got {height_m}")
    segments = height_px(keypoints, scores, threshold)
    missing = [k for k, v in segments.items() if k != "ankle_to_head" and not math.isfinite(v)]
    if missing:
        raise InputError(f"--person-height: the {', '.join(missing)} segment(s) are never visible (score >= "
                         f"{threshold}) for this person; use --scale-points instead")  # fmt: skip
    return (1.0 - ANKLE_HEIGHT_FRACTION) * height_m / segments["ankle_to_head"], segments


def scale_from_points(p1: tuple[float, float], p2: tuple[float, float], distance_m: float) -> float:
    """Metres per pixel from two image points ``distance_m`` apart."""
    px = math.dist(p1, p2)
    if not (math.isfinite(distance_m) and distance_m > 0):
        raise InputError(f"--scale-points: the distance must be > 0 metres, got {distance_m}")
    if not (math.isfinite(px) and px > 0):
        raise InputError(f"--scale-points: the two points must differ, got {p1} and {p2}")
    return distance_m / px


def parse_scale_points(text: str) -> tuple[tuple[float, float], tuple[float, float], float]:
    """``"x1,y1,x2,y2,metres"`` -> ((x1, y1), (x2, y2), metres). InputError naming the flag."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 5 or not all(math.isfinite(v) for v in values):
        raise InputError(f"--scale-points '{text}': expected X1,Y1,X2,Y2,METRES (two image points in pixels "
                         "and the distance between them in metres), e.g. 100,900,1100,900,2.5")  # fmt: skip
    x1, y1, x2, y2, d = values
    return (x1, y1), (x2, y2), d


def to_world(keypoints: np.ndarray, m_per_px: float = 1.0) -> np.ndarray:
    """(..., 2) image pixels -> (..., 3) X right, Y up, Z = 0, scaled by ``m_per_px``."""
    kp = np.asarray(keypoints, np.float64)
    out = np.zeros(kp.shape[:-1] + (3,))
    out[..., 0] = kp[..., 0] * m_per_px
    out[..., 1] = -kp[..., 1] * m_per_px
    return out
