"""Track stage: ByteTrack over the packet's detections, timed by the frame's pts."""

from __future__ import annotations

import numpy as np

from posestream.stages.base import StageBase
from posestream.types import Packet, Tracks

__all__ = ["TrackStage"]


class TrackStage(StageBase):
    """coast_lost_s > 0: also report lost tracks, at their predicted boxes, for that long after
    their last detection (recorded footage: a missed detection should not cost a pose)."""

    name = "track"

    def __init__(self, tracker, coast_lost_s: float = 0.0) -> None:
        self.tracker = tracker
        self.coast_lost_s = coast_lost_s

    def process(self, packet: Packet) -> Packet:
        t = packet.frame.pts
        if packet.detections is None:  # a frame the detector skipped (detect_every > 1)
            tracks = self.tracker.predict_only(t)
        else:
            tracks = self.tracker.update(packet.detections, t)
        if self.coast_lost_s > 0:
            coasting = self.tracker.lost_predicted(t, self.coast_lost_s)
            if len(coasting):
                tracks = Tracks(*(np.concatenate([a, b]) for a, b in
                                  zip((tracks.xyxy, tracks.score, tracks.track_id),
                                      (coasting.xyxy, coasting.score, coasting.track_id))))  # fmt: skip
        return packet.with_(tracks=tracks)
