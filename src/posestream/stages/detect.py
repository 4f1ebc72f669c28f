"""Detect stage: person boxes from a detector core, optionally every N-th frame only."""

from __future__ import annotations

import time

from posestream.stages.base import StageBase
from posestream.types import Detections, Packet

__all__ = ["DetectStage"]


class DetectStage(StageBase):
    """detect_every: run the detector on one frame in N (counted on frames that reach this stage,
    so live drops do not starve it); frames in between carry ``detections=None`` and the tracker
    fills their boxes from motion prediction.

    schedule: a ``DetectionSchedule`` instead (keypoint-driven boxes: the pose stage asks for a
    detection when someone's keypoints turn unconfident). In live mode the stage also watches the
    pose stage's input queue: when it stays full the schedule stretches its interval, when it
    empties the interval comes back.

    min_score: keep only boxes scoring at least this (untracked runs, where every box left is a
    person; tracked runs keep the low ones for ByteTrack's second association). None: all.
    """

    name = "detect"
    WATCH_EVERY_S = 0.5

    def __init__(self, detector, detect_every: int = 1, schedule=None, min_score: float | None = None) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.detector = detector
        self.min_score = min_score
        self.detect_every = detect_every
        self.schedule = schedule
        self._seen = 0
        self._ctx = None
        self._t_watch = 0.0
        self._pose_dropped = 0

    def open(self, ctx) -> None:
        self._ctx = ctx if ctx is not None and ctx.live and self.schedule is not None else None

    def process(self, packet: Packet) -> Packet:
        if self.schedule is not None:
            if self._ctx is not None:
                self._watch_pose()
            run = self.schedule.should_detect(packet.index)
        else:
            run = self._seen % self.detect_every == 0
        self._seen += 1
        if not run:
            return packet
        detections = self.detector.detect(packet.frame.image)
        if self.min_score is not None and len(detections):
            keep = detections.score >= self.min_score
            detections = Detections(detections.xyxy[keep], detections.score[keep])
        return packet.with_(detections=detections)

    def _watch_pose(self) -> None:
        now = time.monotonic()
        if now - self._t_watch < self.WATCH_EVERY_S:
            return
        self._t_watch = now
        pose = next((s for s in self._ctx.snapshot() if s.name == "pose"), None)
        if pose is None:
            return
        behind = pose.dropped > self._pose_dropped or pose.queue > 0
        self._pose_dropped = pose.dropped
        if behind:
            self.schedule.slow_down()
        else:
            self.schedule.speed_up()
