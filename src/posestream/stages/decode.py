"""Decode stage: the graph's source, over ``posestream.io.video``."""

from __future__ import annotations

import dataclasses
import time

from posestream.io.video import FrameReader
from posestream.types import Packet

__all__ = ["DecodeSource"]


class DecodeSource:
    """Reads frames into packets.

    live: edges drop the oldest item when a stage falls behind (cameras, streams).
    realtime: pace a file to its pts (as a camera would deliver it); used to rehearse live runs.
    """

    name = "decode"

    def __init__(self, reader: FrameReader, *, live: bool, realtime: bool = False) -> None:
        self.reader = reader
        self.live = live or realtime
        self.realtime = realtime
        self._t0: float | None = None

    def open(self) -> None:
        pass

    def read(self) -> Packet | None:
        frame = self.reader.read()
        if frame is None:
            return None
        if self.realtime:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now - frame.pts
            wait = self._t0 + frame.pts - now
            if wait > 0:
                time.sleep(wait)
            frame = dataclasses.replace(frame, t_capture=time.monotonic())
        return Packet(frame=frame)

    def close(self) -> None:
        self.reader.close()

    def describe(self) -> list[str]:
        """Summary lines about the source (damage skipped, a file cut short)."""
        return self.reader.describe()
