"""Serve stage: hands each rendered frame and the graph's live stats to the web view."""

from __future__ import annotations

import time

from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["ServeSink"]

STATS_EVERY_S = 0.25  # graph snapshots are cheap but not free: refresh the stats 4 times a second


class ServeSink(StageBase):
    """``server.publish`` never blocks (it keeps only the newest frame), so a slow browser cannot
    slow the graph. ``bind(pipeline)`` after the graph is built gives access to its metrics."""

    name = "serve"

    def __init__(self, server) -> None:
        self.server = server
        self.pipeline = None
        self._stats: dict = {}
        self._t_stats = 0.0
        self._frames = 0
        self._t0: float | None = None

    def bind(self, pipeline) -> None:
        self.pipeline = pipeline

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
        self.server.publish(image, stats)
        return packet

    def _collect(self, now: float) -> dict:
        elapsed = now - (self._t0 or now)
        stats: dict = {"fps": round(self._frames / elapsed, 2) if elapsed > 0 else 0.0}
        if self.pipeline is not None:
            snaps = self.pipeline.graph.snapshot()
            stats["stages"] = [s.as_dict() for s in snaps]
            stats["drops"] = sum(s.dropped for s in snaps)
            stats["source"] = self.pipeline.source.uri
            stats["model"] = self.pipeline.model_name
            stats["random_weights"] = self.pipeline.random_weights
        return stats
