"""Track stage: ByteTrack over the packet's detections, timed by the frame's pts."""

from __future__ import annotations

from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["TrackStage"]


class TrackStage(StageBase):
    name = "track"

    def __init__(self, tracker) -> None:
        self.tracker = tracker

    def process(self, packet: Packet) -> Packet:
        t = packet.frame.pts
        if packet.detections is None:  # a frame the detector skipped (detect_every > 1)
            return packet.with_(tracks=self.tracker.predict_only(t))
        return packet.with_(tracks=self.tracker.update(packet.detections, t))
