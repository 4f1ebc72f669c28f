"""Drawing boxes, track ids, skeletons of any keypoint set and a HUD with OpenCV.

Boxes, id labels and keypoint rings are in the track's colour (a fixed golden-ratio hue walk, so an
id keeps its colour for the whole clip and neighbouring ids differ); limbs are in the colours of
the ``KeypointSet``'s skeleton (by body side). Keypoints scoring below ``keypoint_threshold`` are
hidden, as is every limb touching one.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from posestream.keypoints import KeypointSet, keypoint_set_for
from posestream.types import Poses

__all__ = ["track_color", "draw_poses", "draw_hud"]

UNTRACKED_BGR = (200, 200, 200)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour for ``track_id`` (grey for -1, untracked)."""
    if track_id < 0:
        return UNTRACKED_BGR
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_poses(
    image: np.ndarray,
    poses: Poses,
    *,
    keypoint_threshold: float = 0.3,
    draw_boxes: bool = True,
    keypoint_set: KeypointSet | None = None,
) -> np.ndarray:
    """Draw ``poses`` onto ``image`` (H, W, 3) uint8 BGR, in place; returns it.

    keypoint_set: the skeleton and limb colours; None = the registered set for the poses' K (no
    skeleton when no set has that K). ValueError when the set's K is not the poses' K.
    """
    scale = max(1.0, max(image.shape[:2]) / 720.0)
    thick = max(1, round(2 * scale))
    radius = max(2, round(3 * scale))
    num_k = poses.keypoints.shape[1]
    if keypoint_set is None and num_k > 0:
        keypoint_set = keypoint_set_for(num_k)
    if num_k and keypoint_set.num_keypoints != num_k:
        raise ValueError(f"draw_poses: poses have {num_k} keypoints, keypoint set {keypoint_set.describe()}")
    limbs = list(zip(keypoint_set.skeleton, keypoint_set.limb_colors)) if num_k else []
    for i in range(len(poses)):
        tid = int(poses.track_id[i])
        color = track_color(tid)
        if draw_boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in poses.xyxy[i])
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
            if tid >= 0:
                label = f"#{tid}"
                (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
                cv2.rectangle(image, (x1, y1 - th - base - 2), (x1 + tw + 4, y1), color, -1)
                cv2.putText(image, label, (x1 + 2, y1 - base), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                            (0, 0, 0), thick, cv2.LINE_AA)  # fmt: skip
        kp, sc = poses.keypoints[i], poses.scores[i]
        visible = (sc >= keypoint_threshold) & np.isfinite(kp).all(axis=1)
        for (a, b), limb_color in limbs:
            if visible[a] and visible[b]:
                pa = (int(round(kp[a, 0])), int(round(kp[a, 1])))
                pb = (int(round(kp[b, 0])), int(round(kp[b, 1])))
                cv2.line(image, pa, pb, limb_color, thick, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            center = (int(round(kp[k, 0])), int(round(kp[k, 1])))
            cv2.circle(image, center, radius, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(image, center, radius, color, max(1, thick // 2), cv2.LINE_AA)
    return image


def draw_hud(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Text lines in the top-left corner on a translucent dark panel, in place; returns it."""
    if not lines:
        return image
    scale = max(0.5, max(image.shape[:2]) / 1440.0)
    thick = max(1, round(scale * 1.5))
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for t in lines]
    line_h = max(h for _, h in sizes) + round(10 * scale)
    w = max(w for w, _ in sizes) + round(16 * scale)
    h = line_h * len(lines) + round(8 * scale)
    h, w = min(h, image.shape[0]), min(w, image.shape[1])
    roi = image[:h, :w]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for j, text in enumerate(lines):
        org = (round(8 * scale), (j + 1) * line_h)
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return image
