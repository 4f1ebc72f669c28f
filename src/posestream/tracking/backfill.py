"""Backfill: report a newly confirmed track from the first frame its person was detected.

ByteTrack reports a person only once their track is confirmed: born from a box scoring at least
``new_track_threshold``, then matched again. On recorded footage the frames before that are not
lost, only not yet emitted, so a stage that holds the last few frames back can give them the track
too: walking back from the box the track was confirmed with, each earlier frame contributes the
detection that overlaps the box found after it best (IoU >= ``iou_threshold``, among the detections
no reported track holds there), down to the detector's own threshold. Frames in between where the
person was not detected (a short gap, at most ``max_gap_s`` of media time) get boxes interpolated
linearly between the two detections around them, with score NaN (no detection there).

Pure numpy, no state: the caller keeps the frames (see ``posestream.stages.track``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posestream.tracking.matching import box_iou

__all__ = ["HeldFrame", "backfill_track"]

_TAKEN_IOU = 0.9  # a detection overlapping a reported track's box this much is that track's


@dataclass(frozen=True, slots=True)
class HeldFrame:
    """What backfill needs of one held frame.

    pts: media time (s). det_xyxy (D, 4) / det_score (D,): the detector's boxes, or None where the
    detector did not run. track_xyxy (T, 4): boxes reported there already (taken).
    """

    pts: float
    det_xyxy: np.ndarray | None
    det_score: np.ndarray | None
    track_xyxy: np.ndarray


def backfill_track(
    frames: Sequence[HeldFrame],
    xyxy: np.ndarray,
    pts: float,
    *,
    iou_threshold: float = 0.3,
    max_gap_s: float = 0.0,
) -> dict[int, tuple[np.ndarray, float]]:
    """Boxes for a track confirmed at time ``pts`` with box ``xyxy`` (4,), in earlier ``frames``.

    frames: held frames in time order, all before ``pts``. Returns {index into frames: (box (4,),
    score)}: detected boxes with their scores, and interpolated boxes (score NaN) for gaps of at
    most ``max_gap_s`` between two detections. Stops at the first longer gap.
    """
    out: dict[int, tuple[np.ndarray, float]] = {}
    anchor_box, anchor_pts, anchor_index = np.asarray(xyxy, np.float64), float(pts), len(frames)
    for i in range(len(frames) - 1, -1, -1):
        frame = frames[i]
        if anchor_pts - frame.pts > max_gap_s + 1e-9 and anchor_index - i > 1:
            break  # undetected for longer than a gap may last
        if frame.det_xyxy is None or len(frame.det_xyxy) == 0:
            continue
        det = np.asarray(frame.det_xyxy, np.float64)
        free = np.ones(len(det), bool)
        if len(frame.track_xyxy):
            free &= box_iou(det, np.asarray(frame.track_xyxy, np.float64)).max(axis=1) < _TAKEN_IOU
        iou = np.where(free, box_iou(det, anchor_box[None])[:, 0], -1.0)
        best = int(np.argmax(iou))
        if iou[best] < iou_threshold:
            continue  # not here: a gap, as long as it stays short
        box = det[best]
        for j in range(i + 1, anchor_index):  # frames skipped since the anchor: interpolate
            w = (frames[j].pts - frame.pts) / (anchor_pts - frame.pts)
            out[j] = ((1 - w) * box + w * anchor_box, float("nan"))
        out[i] = (box, float(frame.det_score[best]))
        anchor_box, anchor_pts, anchor_index = box, frame.pts, i
    return out
