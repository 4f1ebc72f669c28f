"""Render stage: draws what the packet holds onto a copy of the frame; banner, HUD and reps in a strip above.

The HUD (fps, capture latency, people) belongs to live views: the saved video shows it only when
``render.hud`` is true, and otherwise the live sinks add it themselves (``HudMeter`` + ``add_strip``)
after the files have been written. See ``posestream.app`` for who gets what. An exercise run's reps,
phase and cues are the point of the run: they are drawn everywhere (under each person and as a strip line).
"""

from __future__ import annotations

import time

from posestream.keypoints import KeypointSet
from posestream.stages.base import StageBase
from posestream.types import Packet
from posestream.visual.draw import add_strip, draw_exercise, draw_poses, exercise_hud_line

__all__ = ["RenderStage", "HudMeter"]


class HudMeter:
    """HUD lines for the packets passing one point: fps measured there (a moving average of the
    arrival intervals), capture-to-here latency, people."""

    def __init__(self) -> None:
        self._t_last: float | None = None
        self._interval: float | None = None

    def lines(self, packet: Packet, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        if self._t_last is not None:
            dt = now - self._t_last
            self._interval = dt if self._interval is None else 0.9 * self._interval + 0.1 * dt
        self._t_last = now
        fps = 1.0 / self._interval if self._interval else 0.0
        latency_ms = (now - packet.frame.t_capture) * 1e3
        people = packet.people
        count = len(people) if people is not None else 0
        return [f"{fps:5.1f} fps  latency {latency_ms:4.0f} ms  frame {packet.index}  people {count}"]


class RenderStage(StageBase):
    """Skeletons, boxes and id labels on the picture; ``banner`` (e.g. the random-weights warning),
    with ``hud`` the HUD line and with ``exercise`` one line of reps/phase/cues per frame, in a strip
    above it (the output is taller by ``strip_height``); with ``exercise``, each tracked person's reps,
    phase and last cues under their box too.

    keypoint_set: the pose model's set (skeleton and limb colours); None = by the poses' K.
    """

    name = "render"

    def __init__(self, *, keypoint_threshold: float = 0.3, draw_boxes: bool = True, hud: bool = False,
                 banner: str | None = None, exercise: bool = False,
                 keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        self.keypoint_set = keypoint_set
        self.keypoint_threshold = keypoint_threshold
        self.draw_boxes = draw_boxes
        self.hud = HudMeter() if hud else None
        self.banner = banner
        self.exercise = exercise

    @property
    def strip_lines(self) -> int:
        """Lines of the strip above every rendered picture (0: the picture keeps its size)."""
        return int(self.banner is not None) + int(self.hud is not None) + int(self.exercise)

    def process(self, packet: Packet) -> Packet:
        image = packet.frame.image.copy()
        poses = packet.people
        if poses is not None:
            kset = self.keypoint_set if poses.keypoints.shape[1] else None  # tracking-only packets: K = 0
            draw_poses(image, poses, keypoint_threshold=self.keypoint_threshold, draw_boxes=self.draw_boxes,
                       keypoint_set=kset)  # fmt: skip
        lines = [self.banner] if self.banner else []
        if self.hud is not None:
            lines += self.hud.lines(packet)
        if self.exercise:  # a line on every frame (constant strip height), reps or not yet
            if packet.exercise is not None:
                draw_exercise(image, poses, packet.exercise)
                lines.append(exercise_hud_line(packet.exercise))
            else:
                lines.append("")
        return packet.with_(annotated=add_strip(image, lines))
