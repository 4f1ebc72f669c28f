"""Track-id stability of a recorded run, without ground truth.

The shared clips have no ground-truth identities, so stability is measured on the tracker's own
output as a proxy: between consecutive recorded frames, boxes are paired by IoU (Hungarian,
IoU >= ``min_iou``); a pair whose track ids differ is an **id switch** (the same place, a different
id: what a viewer sees as a label jumping). Ids first seen after the first frame are **births**;
on a clip where nobody enters or leaves, every birth is a fragmentation of an existing person.
It cannot see a swap between two people who cross without their boxes ever matching; the
ByteTrack golden tests cover crossings with scripted ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posestream.tracking.matching import box_iou

__all__ = ["IdStability", "id_stability"]


@dataclass(frozen=True, slots=True)
class IdStability:
    frames: int
    id_switches: int
    births_after_first_frame: int
    distinct_ids: int
    max_people_per_frame: int
    mean_people_per_frame: float
    longest_track_frames: int

    def as_dict(self) -> dict:
        return asdict(self)


def id_stability(frames: Iterable[Sequence[tuple[int, Sequence[float]]]], min_iou: float = 0.5) -> IdStability:
    """``frames``: per recorded frame, a list of ``(track_id, box_xyxy)``; untracked (-1) ignored."""
    switches = births = 0
    seen: set[int] = set()
    lengths: dict[int, int] = {}
    counts: list[int] = []
    prev_ids = np.zeros(0, np.int64)
    prev_boxes = np.zeros((0, 4), np.float32)
    for i, people in enumerate(frames):
        people = [(int(t), b) for t, b in people if int(t) >= 0]
        ids = np.array([t for t, _ in people], np.int64)
        boxes = np.array([b for _, b in people], np.float32).reshape(-1, 4)
        counts.append(len(ids))
        for t in ids:
            lengths[int(t)] = lengths.get(int(t), 0) + 1
            if int(t) not in seen:
                births += int(i > 0)
                seen.add(int(t))
        if len(prev_ids) and len(ids):
            iou = box_iou(prev_boxes, boxes)
            rows, cols = linear_sum_assignment(-iou)
            keep = iou[rows, cols] >= min_iou
            switches += int(np.sum(prev_ids[rows[keep]] != ids[cols[keep]]))
        prev_ids, prev_boxes = ids, boxes
    return IdStability(
        frames=len(counts),
        id_switches=switches,
        births_after_first_frame=births,
        distinct_ids=len(seen),
        max_people_per_frame=max(counts, default=0),
        mean_people_per_frame=float(np.mean(counts)) if counts else 0.0,
        longest_track_frames=max(lengths.values(), default=0),
    )
