"""Detect stage: person boxes from a detector core, optionally every N-th frame only."""

from __future__ import annotations

from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["DetectStage"]


class DetectStage(StageBase):
    """detect_every: run the detector on one frame in N (counted on frames that reach this stage,
    so live drops do not starve it); frames in between carry ``detections=None`` and the tracker
    fills their boxes from motion prediction."""

    name = "detect"

    def __init__(self, detector, detect_every: int = 1) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.detector = detector
        self.detect_every = detect_every
        self._seen = 0

    def process(self, packet: Packet) -> Packet:
        run = self._seen % self.detect_every == 0
        self._seen += 1
        if not run:
            return packet
        return packet.with_(detections=self.detector.detect(packet.frame.image))
