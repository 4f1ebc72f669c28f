"""Cheaper detection: a tracked person's next box from their last keypoints (the BlazePose idea),
and the schedule that decides when the detector must run after all.

While a person's keypoints are confident, the box around them (padded, as the detector's box would
be) is a better guess for the next frame than a motion prediction, and costs nothing. The detector
still runs

1. every ``detect_every`` frames, because someone may have walked in;
2. on the next frame after any posed person's confidence dropped (occlusion, a fast turn, leaving
   the picture): their keypoint box can no longer be trusted;
3. when nobody is tracked.

``DetectionSchedule`` is shared by the detect stage (asks ``should_detect``) and the pose stage
(``report``s each posed frame); it is thread-safe because those run on different threads. In live
mode ``slow_down``/``speed_up`` stretch the interval when the pose stage falls behind.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["DetectionSchedule", "KeypointBoxes", "keypoint_boxes", "person_confidence"]


def person_confidence(scores: np.ndarray, score_threshold: float) -> np.ndarray:
    """(N, K) keypoint scores -> (N,) fraction of keypoints above ``score_threshold``."""
    if scores.size == 0:
        return np.zeros((len(scores),), np.float32)
    return (scores > score_threshold).mean(axis=1).astype(np.float32)


def keypoint_boxes(
    keypoints: np.ndarray, scores: np.ndarray, score_threshold: float, padding: float = 1.1, min_visible: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes around each person's confident keypoints.

    keypoints: (N, K, 2) frame pixels; scores: (N, K). Returns xyxy (N, 4) float32, the tight box
    of the keypoints above ``score_threshold`` enlarged by ``padding`` about its centre (keypoints
    sit inside the body outline: a little margin brings the box near a detector's), and ok (N,)
    bool: False where fewer than ``min_visible`` keypoints are confident (box meaningless).
    """
    n = len(keypoints)
    xyxy = np.zeros((n, 4), np.float32)
    ok = np.zeros((n,), bool)
    for i in range(n):
        visible = scores[i] > score_threshold
        if visible.sum() < min_visible:
            continue
        points = keypoints[i][visible]
        lo, hi = points.min(axis=0), points.max(axis=0)
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * padding
        xyxy[i] = np.concatenate([centre - half, centre + half])
        ok[i] = True
    return xyxy, ok


class DetectionSchedule:
    """When the detector must run (see the module docstring).

    detect_every: frames between forced detections (1 = every frame: the schedule is then a no-op).
    max_every: the most ``slow_down`` may stretch the interval to (live mode).
    """

    def __init__(self, detect_every: int, max_every: int | None = None) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.base_every = int(detect_every)
        self.every = int(detect_every)
        self.max_every = int(max_every or max(detect_every, 1) * 4)
        self._lock = threading.Lock()
        self._last_detect: int | None = None
        self._need = True  # nothing tracked yet
        self.detections = 0  # frames the detector ran on
        self.skipped = 0

    def should_detect(self, frame_index: int) -> bool:
        """Called by the detect stage for each frame, in order; True = run the detector."""
        with self._lock:
            due = self._last_detect is None or frame_index - self._last_detect >= self.every
            if due or self._need:
                self._last_detect = frame_index
                self._need = False
                self.detections += 1
                return True
            self.skipped += 1
            return False

    def report(self, confident: bool, people: int) -> None:
        """Called by the pose stage after each frame: were all posed people confident?"""
        with self._lock:
            if not confident or people == 0:
                self._need = True

    def slow_down(self) -> None:
        """The pose stage is behind: detect less often (live mode)."""
        with self._lock:
            self.every = min(self.max_every, self.every * 2)

    def speed_up(self) -> None:
        """The pose stage keeps up again: back towards the configured interval."""
        with self._lock:
            self.every = max(self.base_every, self.every // 2)


class KeypointBoxes:
    """Per-track memory of the last keypoints, turned into the next frame's boxes.

    schedule: told after each frame whether everyone posed was confident. score_threshold: a
    keypoint above it counts as seen. min_confidence: a person whose fraction of seen keypoints
    falls below it is not confident (their box comes from the tracker, and the detector is asked
    for the next frame).
    """

    def __init__(
        self, schedule: DetectionSchedule, score_threshold: float = 0.3, min_confidence: float = 0.5,
        padding: float = 1.1,
    ) -> None:  # fmt: skip
        self.schedule = schedule
        self.score_threshold = float(score_threshold)
        self.min_confidence = float(min_confidence)
        self.padding = float(padding)
        self._last: dict[int, np.ndarray] = {}  # track id -> (4,) xyxy from its last confident keypoints
        self.used = 0  # boxes that came from keypoints

    def boxes_for(self, xyxy: np.ndarray, track_ids: np.ndarray, detected: bool) -> np.ndarray:
        """(N, 4) tracker boxes -> the boxes to pose: on a frame the detector skipped, a track with
        confident keypoints last frame gets their box; others (and every box of a detected frame)
        are kept."""
        if detected or not self._last:
            return xyxy
        out = np.array(xyxy, np.float32, copy=True)
        for i, track_id in enumerate(track_ids.tolist()):
            box = self._last.get(int(track_id))
            if box is not None:
                out[i] = box
                self.used += 1
        return out

    def update(self, track_ids: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """After posing: remember confident people's keypoint boxes; report to the schedule."""
        boxes, ok = keypoint_boxes(keypoints, scores, self.score_threshold, self.padding)
        confident = ok & (person_confidence(scores, self.score_threshold) >= self.min_confidence)
        self._last = {int(t): boxes[i] for i, t in enumerate(track_ids.tolist()) if confident[i] and t >= 0}
        self.schedule.report(bool(confident.all()), len(track_ids))
