"""Drawing boxes, track ids, skeletons of any keypoint set and an information strip with OpenCV.

Boxes, id labels and keypoint rings are in the track's colour (a fixed golden-ratio hue walk, so an
id keeps its colour for the whole clip and neighbouring ids differ); limbs are in the colours of
the ``KeypointSet``'s skeleton (by body side). Keypoints scoring below ``keypoint_threshold`` are
hidden, as is every limb touching one. Id labels are placed so that no two overlap
(``place_labels``). Text that is not about one person (the HUD, the random-weights banner) goes in
a strip *above* the picture (``add_strip``), so it never covers anyone.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from posestream.keypoints import KeypointSet, keypoint_set_for
from posestream.types import ExerciseFrame, Poses

__all__ = ["track_color", "draw_poses", "place_labels", "add_strip", "strip_height", "draw_exercise",
           "exercise_hud_line"]

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
        color = track_color(int(poses.track_id[i]))
        if draw_boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in poses.xyxy[i])
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
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
    if draw_boxes:  # labels last, on top of every skeleton
        _draw_labels(image, poses, scale, thick)
    return image


def _draw_labels(image: np.ndarray, poses: Poses, scale: float, thick: int) -> None:
    tracked = [i for i in range(len(poses)) if poses.track_id[i] >= 0]
    texts = [f"#{int(poses.track_id[i])}" for i in tracked]
    font_scale = 0.6 * scale
    metrics = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick) for t in texts]
    sizes = [(tw + 4, th + base + 2) for (tw, th), base in metrics]
    h, w = image.shape[:2]
    corners = place_labels(poses.xyxy[tracked], sizes, (w, h))
    for i, text, (lw, lh), (_, base), (x, y) in zip(tracked, texts, sizes, metrics, corners):
        color = track_color(int(poses.track_id[i]))
        cv2.rectangle(image, (x, y), (x + lw, y + lh), color, -1)
        cv2.putText(image, text, (x + 2, y + lh - base - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    thick, cv2.LINE_AA)  # fmt: skip


def place_labels(
    boxes_xyxy: np.ndarray, sizes_wh: list[tuple[int, int]], image_wh: tuple[int, int]
) -> list[tuple[int, int]]:
    """Top-left corners for one label per box such that labels do not overlap each other.

    boxes_xyxy: (N, 4) pixels; sizes_wh: N label sizes. Each label tries, in order: above the box's
    top-left corner, inside it, above the top-right corner, inside it, below the bottom-left corner,
    then the same spots stepped down by one label height at a time; the first spot inside the image
    that overlaps no label placed so far wins (boxes are taken top to bottom, so crowded rows stack
    their labels). If none is free, the spot overlapping the placed labels least is used.
    Returns N (x, y) integer corners, in input order.
    """
    w_img, h_img = image_wh
    order = sorted(range(len(sizes_wh)), key=lambda i: (float(boxes_xyxy[i][1]), float(boxes_xyxy[i][0])))
    placed: list[tuple[int, int, int, int]] = []  # x1, y1, x2, y2
    out: list[tuple[int, int]] = [(0, 0)] * len(sizes_wh)

    def overlap(r: tuple[int, int, int, int]) -> int:
        total = 0
        for p in placed:
            dx = min(r[2], p[2]) - max(r[0], p[0])
            dy = min(r[3], p[3]) - max(r[1], p[1])
            total += max(dx, 0) * max(dy, 0)
        return total

    for i in order:
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes_xyxy[i])
        lw, lh = sizes_wh[i]
        spots = [(x1, y1 - lh), (x1, y1), (x2 - lw, y1 - lh), (x2 - lw, y1), (x1, y2)]
        spots += [(x1, y1 + k * lh) for k in range(1, max(1, (y2 - y1) // max(lh, 1)))]
        best, best_cost = None, None
        for sx, sy in spots:
            sx = min(max(sx, 0), max(w_img - lw, 0))  # keep it in the picture
            sy = min(max(sy, 0), max(h_img - lh, 0))
            rect = (sx, sy, sx + lw, sy + lh)
            cost = overlap(rect)
            if best_cost is None or cost < best_cost:
                best, best_cost = rect, cost
            if cost == 0:
                break
        placed.append(best)
        out[i] = (best[0], best[1])
    return out


def _text_metrics(size_wh: tuple[int, int]) -> tuple[float, int, int, int]:
    """Font scale, stroke, cap height and line height (px) of strip text for a ``size_wh`` picture."""
    scale = max(0.5, max(size_wh) / 1440.0)
    thick = max(1, round(scale * 1.5))
    (_, text_h), base = cv2.getTextSize("Hg", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    return scale, thick, text_h, text_h + base + round(8 * scale)


def strip_height(size_wh: tuple[int, int], num_lines: int) -> int:
    """Height in px (even, for yuv420p video) of the strip ``add_strip`` puts above a ``size_wh`` picture."""
    if num_lines <= 0:
        return 0
    _, _, _, line_h = _text_metrics(size_wh)
    h = line_h * num_lines + round(6 * max(1.0, max(size_wh) / 1440.0))
    return h + h % 2


def add_strip(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A new image: a dark strip holding ``lines`` stacked *above* ``image`` (H, W, 3) uint8 BGR.

    The picture itself is untouched, so the text never covers a person. Without lines, ``image``
    itself is returned.
    """
    if not lines:
        return image
    h, w = image.shape[:2]
    height = strip_height((w, h), len(lines))
    scale, thick, text_h, line_h = _text_metrics((w, h))
    strip = np.full((height, w, 3), 24, np.uint8)
    for j, text in enumerate(lines):
        base_y = j * line_h + round(6 * scale) + text_h  # baseline: top padding, then the cap height
        cv2.putText(strip, text, (round(8 * scale), base_y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick, cv2.LINE_AA)  # fmt: skip
    return np.concatenate([strip, image], axis=0)


CUE_BGR = (60, 170, 255)  # orange: a form cue


def exercise_hud_line(exercise: ExerciseFrame) -> str:
    """One strip line for every tracked person: ``squat  #3: 4 reps, bottom | go deeper  #5: ...``."""
    parts = []
    for s in exercise.people:
        cue = f" | {', '.join(s.cues)}" if s.cues else ""
        parts.append(f"#{s.track_id}: {s.reps} reps, {s.phase}{cue}")
    return f"{exercise.exercise}  " + ("  ".join(parts) if parts else "no one tracked")


def draw_exercise(image: np.ndarray, poses: Poses | None, exercise: ExerciseFrame) -> np.ndarray:
    """Under each tracked person's box: the rep count and phase, and the last rep's cues; in place."""
    if poses is None:
        return image
    scale = max(0.6, max(image.shape[:2]) / 1100.0)
    thick = max(1, round(2 * scale))
    rows = {int(t): i for i, t in enumerate(poses.track_id.tolist())}
    h, w = image.shape[:2]
    for s in exercise.people:
        i = rows.get(s.track_id)
        if i is None:
            continue
        x1, _, _, y2 = (int(round(v)) for v in poses.xyxy[i])
        lines = [(f"{s.reps} reps  {s.phase}", track_color(s.track_id))] + [(c, CUE_BGR) for c in s.cues]
        y = min(max(y2, 0), h - 1)
        for text, color in lines:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            y = min(y + th + base + 4, h - base)
            x = min(max(x1, 0), max(0, w - tw - 4))
            cv2.rectangle(image, (x, y - th - base), (x + tw + 4, y + base // 2), (0, 0, 0), -1)
            cv2.putText(image, text, (x + 2, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return image
