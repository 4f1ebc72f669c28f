"""Per-stage metrics: counts, latency percentiles, busy fraction, queue depth.

A ``StageMetrics`` is written by its stage's worker thread(s) and read by others (progress bar, live
page). Writers take a small lock (a ``Parallel`` stage has several writers); readers take a
``snapshot()`` that copies the latency window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["StageMetrics", "StageSnapshot"]

LATENCY_WINDOW = 4096  # recent samples kept for percentiles: bounded memory on endless live runs


@dataclass(frozen=True, slots=True)
class StageSnapshot:
    name: str
    frames_in: int
    frames_out: int
    dropped: int  # items dropped on this stage's input edge (drop-oldest)
    p50_ms: float
    p95_ms: float
    busy: float  # fraction of wall time spent inside process() (per worker for a Parallel stage)
    queue: int  # items waiting on the input edge now
    max_queue: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "name": self.name,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "busy": round(self.busy, 4),
            "queue": self.queue,
            "max_queue": self.max_queue,
        }


@dataclass(slots=True)
class StageMetrics:
    name: str
    workers: int = 1
    frames_in: int = 0
    frames_out: int = 0
    busy_s: float = 0.0
    t_start: float | None = None
    t_end: float | None = None
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, seconds: float, emitted: int | bool) -> None:
        """One item processed in ``seconds``; ``emitted`` items sent on (0, 1, or a batch's many)."""
        with self._lock:
            self.frames_in += 1
            self.frames_out += int(emitted)
            self.busy_s += seconds
            self.latencies_s.append(seconds)

    def add_emitted(self, count: int, seconds: float) -> None:
        """Items sent on without a new input (a ``flush`` at the end of the stream)."""
        with self._lock:
            self.frames_out += count
            self.busy_s += seconds

    def snapshot(self, queue: int = 0, max_queue: int = 0, dropped: int = 0) -> StageSnapshot:
        lat = np.fromiter(tuple(self.latencies_s), dtype=np.float64)
        p50, p95 = (np.percentile(lat, [50, 95]) * 1e3) if lat.size else (0.0, 0.0)
        wall = 0.0
        if self.t_start is not None:
            wall = (self.t_end if self.t_end is not None else time.monotonic()) - self.t_start
        busy = self.busy_s / (wall * self.workers) if wall > 0 else 0.0
        return StageSnapshot(
            self.name, self.frames_in, self.frames_out, dropped,
            float(p50), float(p95), min(busy, 1.0), queue, max_queue,
        )  # fmt: skip
