"""Serve stage: hands each rendered frame and the graph's live stats to the web view."""

from __future__ import annotations

import time
from typing import Any

from posestream.pipeline.graph import StageContext
from posestream.stages.base import StageBase
from posestream.stages.render import HudMeter
from posestream.types import Packet
from posestream.visual.draw import add_strip

__all__ = ["ServeSink", "parse_hostport"]

STATS_EVERY_S = 0.25  # graph snapshots are cheap but not free: refresh the stats 4 times a second


def parse_hostport(text: str) -> tuple[str, int]:
    """``'127.0.0.1:8080'`` -> ``('127.0.0.1', 8080)``; ``':8080'`` binds 127.0.0.1. ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"'{text}': expected HOST:PORT, e.g. 127.0.0.1:8080")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"'{text}': port {int(port)} is out of range 0..65535")
    return host or "127.0.0.1", int(port)


class ServeSink(StageBase):
    """``server.publish`` never blocks (it keeps only the newest frame), so a slow browser cannot
    slow the graph. The stage context's ``snapshot`` gives the stage metrics for the stats; ``about``
    (source, model, random_weights) is added to them as is. Stops the server in ``close()``."""

    name = "serve"

    def __init__(self, server, *, hud: bool = True, about: dict[str, Any] | None = None) -> None:
        self.server = server
        self.hud = HudMeter() if hud else None
        self.about = about if about is not None else {}  # shared: the builder may complete it later
        self._snapshot = None
        self._stats: dict = {}
        self._t_stats = 0.0
        self._frames = 0
        self._t0: float | None = None

    def open(self, ctx: StageContext) -> None:
        self._snapshot = ctx.snapshot

    def process(self, packet: Packet) -> Packet:
        now = time.monotonic()
        self._t0 = now if self._t0 is None else self._t0
        self._frames += 1
        if now - self._t_stats >= STATS_EVERY_S or not self._stats:
            self._stats = self._collect(now)
            self._t_stats = now
        stats = dict(self._stats)
        stats["frame"] = packet.index
        people = packet.people
        stats["people"] = len(people) if people is not None else 0
        stats["latency_ms"] = {"capture_to_render": round((now - packet.frame.t_capture) * 1e3, 1)}
        if packet.exercise is not None:
            stats["exercise"] = packet.exercise.as_dict()
        image = packet.annotated if packet.annotated is not None else packet.frame.image
        if self.hud is not None:
            image = add_strip(image, self.hud.lines(packet, now))
        self.server.publish(image, stats)
        return packet

    def close(self) -> None:
        self.server.stop()

    def _collect(self, now: float) -> dict:
        elapsed = now - (self._t0 or now)
        stats: dict = {"fps": round(self._frames / elapsed, 2) if elapsed > 0 else 0.0}
        if self._snapshot is not None:
            snaps = self._snapshot()
            stats["stages"] = [s.as_dict() for s in snaps]
            stats["drops"] = sum(s.dropped for s in snaps)
        stats.update(self.about)
        return stats
