"""Smooth stage: per-track temporal filtering of keypoints, timed by the frame's pts."""

from __future__ import annotations

from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["SmoothStage"]


class SmoothStage(StageBase):
    name = "smooth"

    def __init__(self, smoother) -> None:
        self.smoother = smoother

    def process(self, packet: Packet) -> Packet:
        if packet.poses is None:
            return packet
        return packet.with_(poses=self.smoother(packet.poses, packet.frame.pts))
