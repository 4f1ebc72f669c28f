"""Replay stage: poses from an earlier run's keypoints file instead of a model (``--keypoints-from``)."""

from __future__ import annotations

import logging
from pathlib import Path

from posestream.errors import InputError
from posestream.io.keypoints import KeypointFrame
from posestream.stages.base import StageBase
from posestream.types import Packet, Poses

__all__ = ["ReplayStage", "PTS_TOLERANCE_S"]

log = logging.getLogger(__name__)

# Files written before pts were kept in full rounded them to 1 us; anything further apart is a
# different clip (or a different decode of it), and replaying it would draw people in wrong places.
PTS_TOLERANCE_S = 1e-4


class ReplayStage(StageBase):
    """Fills ``packet.poses`` from the file's line with the same frame index, after checking that its
    pts matches the frame's (InputError otherwise: the keypoints belong to another clip). A frame the
    file does not have (an earlier run stopped early) gets nobody, said once in the log."""

    name = "replay"

    def __init__(self, frames: list[KeypointFrame], path: str | Path, num_keypoints: int) -> None:
        self.path = Path(path)
        self.by_index = {f.frame: f for f in frames}
        self.num_keypoints = num_keypoints
        self._missing = 0

    def process(self, packet: Packet) -> Packet:
        record = self.by_index.get(packet.index)
        if record is None:
            if self._missing == 0:
                log.warning("%s has no line for frame %d (nor, possibly, later ones): those frames have nobody",
                            self.path, packet.index)  # fmt: skip
            self._missing += 1
            return packet.with_(poses=Poses.empty(self.num_keypoints))
        if abs(record.pts - packet.frame.pts) > PTS_TOLERANCE_S:
            raise InputError(f"{self.path}: frame {packet.index} has pts {record.pts:.6f} s but the source's frame "
                             f"{packet.index} is at {packet.frame.pts:.6f} s: the keypoints come from another clip")
        return packet.with_(poses=record.poses)

    def close(self) -> None:
        if self._missing:
            log.warning("replay: %d frame(s) had no keypoints in %s", self._missing, self.path)
