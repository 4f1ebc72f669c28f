"""Pose stage: every person of the frame through the top-down estimator in one batched call."""

from __future__ import annotations

import numpy as np

from posestream.stages.base import StageBase
from posestream.types import Packet, Poses

__all__ = ["PoseStage"]


class PoseStage(StageBase):
    """Boxes come from the tracks (with ids) when there are any, else from the detections (id -1).

    keypoint_boxes: a ``KeypointBoxes`` core; on frames the detector skipped, tracks posed
    confidently on the previous frame are posed in the box of their last keypoints.
    """

    name = "pose"

    def __init__(self, estimator, keypoint_boxes=None) -> None:
        self.estimator = estimator
        self.keypoint_boxes = keypoint_boxes

    def process(self, packet: Packet) -> Packet:
        if packet.tracks is not None:
            xyxy, ids, box_score = packet.tracks.xyxy, packet.tracks.track_id, packet.tracks.score
        elif packet.detections is not None:
            xyxy, box_score = packet.detections.xyxy, packet.detections.score
            ids = np.full(len(packet.detections), -1, np.int64)
        else:
            return packet.with_(poses=Poses.empty(self.estimator.backend.num_keypoints))
        if self.keypoint_boxes is not None and packet.tracks is not None:
            xyxy = self.keypoint_boxes.boxes_for(xyxy, ids, detected=packet.detections is not None)
        keypoints, scores = self.estimator.estimate(packet.frame.image, xyxy)
        if self.keypoint_boxes is not None:
            self.keypoint_boxes.update(ids, keypoints, scores)
        return packet.with_(poses=Poses(keypoints, scores, xyxy.astype(np.float32), ids.astype(np.int64),
                                        box_score.astype(np.float32)))
