"""Reading the keypoints JSON Lines that ``KeypointJsonlWriter`` writes: one line per frame.

    {"frame": 0, "pts": 0.0, "people": [{"track_id": 3, "box_xyxy": [x1, y1, x2, y2], "box_score": 0.9,
                                         "keypoints": [[x, y, score], ...]}]}

This is the one reader of that format (replay, the angle report and the biomechanics outputs all
use it). Unknown keys are ignored; blank lines skipped; ``null`` coordinates become NaN; a person
without ``track_id`` is untracked (-1); without ``box_xyxy`` the box is the keypoints' extent;
without ``box_score`` (or null) the score is NaN; ``"keypoints": []`` (a tracking-only run) is a
person with K = 0 keypoints.
Every person of the file must have the same number of keypoints and frame numbers must increase.
Errors are ``InputError`` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.errors import InputError
from posestream.types import Poses

__all__ = ["KeypointFrame", "read_keypoint_frames"]


@dataclass(frozen=True, slots=True)
class KeypointFrame:
    """One line: the frame index and pts it was recorded at, and its people."""

    frame: int
    pts: float
    poses: Poses


def read_keypoint_frames(path: str | Path) -> list[KeypointFrame]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read keypoints file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    frames: list[KeypointFrame] = []
    num_k: int | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError(f"expected a JSON object, got {type(item).__name__}")
            frame, pts = int(item["frame"]), float(item["pts"])
            if frames and frame <= frames[-1].frame:
                raise ValueError(f"frame {frame} does not follow frame {frames[-1].frame}")
            poses = _poses(item.get("people") or [], num_k)
        except (ValueError, KeyError, TypeError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InputError(f"{path}:{lineno}: bad keypoints record: {what}") from None
        if len(poses):
            num_k = poses.keypoints.shape[1]
        frames.append(KeypointFrame(frame, pts, poses))
    if num_k is not None:  # frames with nobody get the file's keypoint count
        frames = [f if len(f.poses) else KeypointFrame(f.frame, f.pts, Poses.empty(num_k)) for f in frames]
    return frames


def _poses(people: list, num_k: int | None) -> Poses:
    if not isinstance(people, list):
        raise ValueError(f"people must be a list, got {type(people).__name__}")
    if not people:
        return Poses.empty(num_k or 0)
    kps, boxes, ids, box_scores = [], [], [], []
    for person in people:
        kp = np.asarray(person["keypoints"], dtype=np.float64)  # (K, 3) x, y, score; None -> nan
        if kp.size == 0:  # a tracking-only run: boxes and ids, no keypoints
            kp = np.zeros((0, 3), np.float64)
        if kp.ndim != 2 or kp.shape[1] != 3:
            raise ValueError(f"keypoints must be a list of [x, y, score], got shape {kp.shape}")
        if num_k is not None and kp.shape[0] != num_k:
            raise ValueError(f"{kp.shape[0]} keypoints where the file has {num_k}")
        num_k = kp.shape[0]
        kps.append(kp)
        box = person.get("box_xyxy")
        if box is None:
            xy = kp[:, :2][np.isfinite(kp[:, :2]).all(axis=1)]
            box = [*xy.min(axis=0), *xy.max(axis=0)] if len(xy) else [np.nan] * 4
        boxes.append(np.asarray(box, np.float64))
        ids.append(int(person.get("track_id", -1)))
        score = person.get("box_score")
        box_scores.append(np.nan if score is None else float(score))
    kps_arr = np.stack(kps)
    return Poses(kps_arr[..., :2].astype(np.float32), np.nan_to_num(kps_arr[..., 2], nan=0.0).astype(np.float32),
                 np.stack(boxes).astype(np.float32), np.asarray(ids, np.int64),
                 np.asarray(box_scores, np.float32))  # fmt: skip
