"""Render stage: draws what the packet holds onto a copy of the frame, plus an optional HUD."""

from __future__ import annotations

import time

from posestream.keypoints import KeypointSet
from posestream.stages.base import StageBase
from posestream.types import Packet
from posestream.visual.draw import draw_hud, draw_poses

__all__ = ["RenderStage"]


class RenderStage(StageBase):
    """HUD: fps measured here (moving average over arrivals), capture-to-render latency, people.

    banner: an extra first HUD line (e.g. the random-weights warning), drawn even with hud=False.
    keypoint_set: the pose model's set (skeleton and limb colours); None = by the poses' K.
    """

    name = "render"

    def __init__(self, *, keypoint_threshold: float = 0.3, draw_boxes: bool = True, hud: bool = True,
                 banner: str | None = None, keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        self.keypoint_set = keypoint_set
        self.keypoint_threshold = keypoint_threshold
        self.draw_boxes = draw_boxes
        self.hud = hud
        self.banner = banner
        self._t_last: float | None = None
        self._interval: float | None = None

    def process(self, packet: Packet) -> Packet:
        image = packet.frame.image.copy()
        poses = packet.people
        if poses is not None:
            kset = self.keypoint_set if poses.keypoints.shape[1] else None  # tracking-only packets: K = 0
            draw_poses(image, poses, keypoint_threshold=self.keypoint_threshold, draw_boxes=self.draw_boxes,
                       keypoint_set=kset)  # fmt: skip
        now = time.monotonic()
        if self._t_last is not None:
            dt = now - self._t_last
            self._interval = dt if self._interval is None else 0.9 * self._interval + 0.1 * dt
        self._t_last = now
        lines = [self.banner] if self.banner else []
        if self.hud:
            fps = 1.0 / self._interval if self._interval else 0.0
            latency_ms = (now - packet.frame.t_capture) * 1e3
            people = len(poses) if poses is not None else 0
            lines += [f"{fps:5.1f} fps  latency {latency_ms:4.0f} ms", f"frame {packet.index}  people {people}"]
        draw_hud(image, lines)
        return packet.with_(annotated=image)

