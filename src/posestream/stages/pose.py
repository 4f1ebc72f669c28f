"""Pose stage: every person of the frame through the top-down estimator in one batched call."""

from __future__ import annotations

import numpy as np

from posestream.stages.base import StageBase
from posestream.types import Packet, Poses

__all__ = ["PoseStage"]


class PoseStage(StageBase):
    """Boxes come from the tracks (with ids) when there are any, else from the detections (id -1)."""

    name = "pose"

    def __init__(self, estimator) -> None:
        self.estimator = estimator

    def process(self, packet: Packet) -> Packet:
        if packet.tracks is not None:
            xyxy, ids, box_score = packet.tracks.xyxy, packet.tracks.track_id, packet.tracks.score
        elif packet.detections is not None:
            xyxy, box_score = packet.detections.xyxy, packet.detections.score
            ids = np.full(len(packet.detections), -1, np.int64)
        else:
            return packet.with_(poses=Poses.empty(self.estimator.backend.num_keypoints))
        keypoints, scores = self.estimator.estimate(packet.frame.image, xyxy)
        return packet.with_(poses=Poses(keypoints, scores, xyxy.astype(np.float32), ids.astype(np.int64),
                                        box_score.astype(np.float32)))
