"""Exercise stage: rep counting and form cues per tracked person (``posestream.exercises``)."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from pathlib import Path

from posestream.io.outputs import OutputFile
from posestream.io.writers import JsonLinesWriter
from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["ExerciseStage", "RECENT_REPS"]

RECENT_REPS = 8  # rep events carried in every frame for views that may miss the frame of a rep


class ExerciseStage(StageBase):
    """Sets ``packet.exercise`` from the packet's poses, timed by the frame's pts, and writes each
    completed rep to ``events_path`` (JSON Lines, flushed) at once.

    The events are written here rather than by a sink further down because on a live source a
    slower stage downstream (render, the live view) drops packets, and an event lives in one
    packet only: counted reps must never be lost from the log. ``events_target``: a path or a
    claimed output (``io.outputs``, checked before the run); the file is replaced in ``open()``, when
    the run starts. ``totals`` / ``cues``: per track, for the end-of-run summary.
    """

    name = "exercise"

    def __init__(self, analyzer, events_target: str | Path | OutputFile | None = None) -> None:
        self.analyzer = analyzer
        self.events_target = events_target
        self.writer: JsonLinesWriter | None = None
        self.totals: dict[int, int] = {}
        self.cues: dict[int, list[str]] = {}
        self._recent: deque = deque(maxlen=RECENT_REPS)

    def open(self, ctx=None) -> None:
        if self.events_target:
            self.writer = JsonLinesWriter(self.events_target, "rep events")

    def process(self, packet: Packet) -> Packet:
        frame = self.analyzer.update(packet.poses, packet.frame.pts)
        for event in frame.events:
            self.totals[event.track_id] = event.rep
            self.cues.setdefault(event.track_id, []).extend(event.cues)
            if self.writer is not None:
                self.writer.write(event.as_dict())
        self._recent.extend(frame.events)
        return packet.with_(exercise=replace(frame, recent=tuple(self._recent)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        elif isinstance(self.events_target, OutputFile):
            self.events_target.release()

    def describe(self) -> list[str]:
        if self.writer is not None:
            return [self.writer.describe()]
        return [f"rep events {self.events_target}: not written"] if self.events_target else []
