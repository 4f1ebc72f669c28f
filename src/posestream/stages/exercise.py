"""Exercise stage: rep counting and form cues per tracked person (``posestream.exercises``)."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from pathlib import Path

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
    packet only: counted reps must never be lost from the log. The opened file is an input check
    (a bad path fails before the run). ``totals`` / ``cues``: per track, for the end-of-run summary.
    """

    name = "exercise"

    def __init__(self, analyzer, events_path: str | Path | None = None) -> None:
        self.analyzer = analyzer
        self.writer = JsonLinesWriter(events_path, "rep events") if events_path else None
        self.totals: dict[int, int] = {}
        self.cues: dict[int, list[str]] = {}
        self._recent: deque = deque(maxlen=RECENT_REPS)

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
