"""Render stage: draws what the packet holds onto a copy of the frame, plus an optional HUD."""

from __future__ import annotations

import time

from posestream.stages.base import StageBase
from posestream.types import Packet
from posestream.visual.draw import draw_exercise, draw_hud, draw_poses, exercise_hud_lines

__all__ = ["RenderStage"]


class RenderStage(StageBase):
    """HUD: fps measured here (moving average over arrivals), capture-to-render latency, people;
    with an exercise, one line per tracked person (reps, phase, last cues) and the same under their box.

    banner: an extra first HUD line (e.g. the random-weights warning), drawn even with hud=False.
    """

    name = "render"

    def __init__(self, *, keypoint_threshold: float = 0.3, draw_boxes: bool = True, hud: bool = True,
                 banner: str | None = None) -> None:  # fmt: skip
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
            draw_poses(image, poses, keypoint_threshold=self.keypoint_threshold, draw_boxes=self.draw_boxes)
        if packet.exercise is not None:
            draw_exercise(image, poses, packet.exercise)
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
        if packet.exercise is not None:  # reps are the point of an exercise run: shown even with hud=False
            lines += exercise_hud_lines(packet.exercise)
        draw_hud(image, lines)
        return packet.with_(annotated=image)

