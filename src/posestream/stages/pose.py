"""Pose stage: the people of a frame through the top-down estimator, per frame or batched across frames."""

from __future__ import annotations

import numpy as np

from posestream.pipeline import Many
from posestream.stages.base import StageBase
from posestream.types import Packet, Poses

__all__ = ["PoseStage"]


class PoseStage(StageBase):
    """Boxes come from the tracks (with ids) when there are any, else from the detections (id -1).

    keypoint_boxes: a ``KeypointBoxes`` core; on frames the detector skipped, tracks posed
    confidently on the previous frame are posed in the box of their last keypoints.
    batcher: a ``FrameBatcher`` over the same estimator to run the people of consecutive frames in
    one model call (lossless sources only); packets are then held back and emitted in order,
    several at a time, and the rest at the end of the stream. Not with ``keypoint_boxes``, which
    needs each frame's keypoints before the next frame's boxes. None: one call per frame.
    """

    name = "pose"

    def __init__(self, estimator, keypoint_boxes=None, batcher=None) -> None:
        if keypoint_boxes is not None and batcher is not None:
            raise ValueError("keypoint_boxes needs each frame posed before the next: no cross-frame batcher")
        self.estimator = estimator
        self.keypoint_boxes = keypoint_boxes
        self.batcher = batcher

    def process(self, packet: Packet) -> Packet | Many:
        if self.batcher is not None:
            xyxy, ids = self._boxes(packet)
            done = self.batcher.add((packet, xyxy, ids), packet.frame.image, xyxy)
            return Many([self._with_poses(*key, keypoints, scores) for key, keypoints, scores in done])
        if packet.tracks is None and packet.detections is None:
            return packet.with_(poses=Poses.empty(self.estimator.backend.num_keypoints))
        xyxy, ids = self._boxes(packet)
        if self.keypoint_boxes is not None and packet.tracks is not None:
            xyxy = self.keypoint_boxes.boxes_for(xyxy, ids, detected=packet.detections is not None)
        keypoints, scores = self.estimator.estimate(packet.frame.image, xyxy)
        if self.keypoint_boxes is not None:
            self.keypoint_boxes.update(ids, keypoints, scores)
        return self._with_poses(packet, xyxy, ids, keypoints, scores)

    def flush(self) -> list[Packet]:
        """The frames still held by the batcher at the end of the stream, in order."""
        if self.batcher is None:
            return []
        return [self._with_poses(*key, keypoints, scores) for key, keypoints, scores in self.batcher.flush()]

    @staticmethod
    def _boxes(packet: Packet) -> tuple[np.ndarray, np.ndarray]:
        if packet.tracks is not None:
            return packet.tracks.xyxy, packet.tracks.track_id
        if packet.detections is not None:
            return packet.detections.xyxy, np.full(len(packet.detections), -1, np.int64)
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)

    @staticmethod
    def _with_poses(packet: Packet, xyxy, ids, keypoints: np.ndarray, scores: np.ndarray) -> Packet:
        boxes = packet.tracks if packet.tracks is not None else packet.detections
        box_score = boxes.score if boxes is not None else np.zeros((0,), np.float32)  # the detector's, per person
        return packet.with_(poses=Poses(keypoints, scores, xyxy.astype(np.float32), ids.astype(np.int64),
                                        box_score.astype(np.float32)))
