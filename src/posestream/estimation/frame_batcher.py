"""Cross-frame batching: the crops of consecutive frames through one model call.

A frame of the multi-person clip holds ~3 people; ViTPose-B reaches its GPU throughput only at
batch 64 and more. For sources where every frame is processed anyway (files, image folders:
lossless, latency is not the point) the pose stage can hold frames back and run their people
together. ``FrameBatcher`` is that policy, pure and single-threaded:

- ``add(key, image, boxes)`` starts the frame's upload (the estimator's ``upload``: on a GPU the
  copy overlaps the wait for the next frames) and holds it; it returns the frames that are done,
  oldest first, each as ``(key, keypoints, scores)``;
- a batch runs when the next frame would take it past ``max_crops`` (so batches fill a CUDA-graph
  bucket without spilling into the next), when it holds ``max_frames`` frames, or when its oldest
  frame has waited ``max_wait_s`` (checked as frames arrive: nothing runs on a timer);
- ``flush()`` runs what is left at the end of the stream.

Frames come back in the order they were added, frames without people included (they wait their
turn). A frame with more people than ``max_crops`` runs on its own, chunked by the estimator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FrameBatcher", "Done"]

Done = tuple[Any, np.ndarray, np.ndarray]  # (key, keypoints (N, K, 2), scores (N, K)) of one frame


@dataclass(slots=True)
class _Pending:
    key: Any
    frame: Any  # what the estimator's upload() returned
    boxes: np.ndarray  # (N, 4) xyxy
    t_added: float


class FrameBatcher:
    """Holds frames until a batch is worth running (see module docstring).

    estimator: has ``upload(image)`` and ``estimate_frames(frames, boxes)`` (``TopDownEstimator``,
    ``DeviceTopDownEstimator``). max_crops: people per model call to aim for (a CUDA-graph bucket,
    e.g. 64). max_frames: frames held at most (bounds memory and latency when frames have few
    people). max_wait_s: the longest the oldest held frame waits for company. clock: seconds.
    """

    def __init__(
        self,
        estimator,
        max_crops: int = 64,
        max_frames: int = 32,
        max_wait_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_crops < 1 or max_frames < 1:
            raise ValueError(f"max_crops and max_frames must be positive, got {max_crops}, {max_frames}")
        if not max_wait_s >= 0:
            raise ValueError(f"max_wait_s: expected 0 or more seconds, got {max_wait_s}")
        self.estimator = estimator
        self.max_crops = int(max_crops)
        self.max_frames = int(max_frames)
        self.max_wait_s = float(max_wait_s)
        self.clock = clock
        self._pending: list[_Pending] = []
        self.batches_run = 0

    @property
    def pending_frames(self) -> int:
        return len(self._pending)

    @property
    def pending_crops(self) -> int:
        return sum(len(p.boxes) for p in self._pending)

    def add(self, key: Hashable, image: np.ndarray, boxes: np.ndarray) -> list[Done]:
        """Hold one frame; return the frames finished now (maybe none), oldest first."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        done: list[Done] = []
        if self._pending and self.pending_crops + len(boxes) > self.max_crops:
            done += self._run()  # the new frame would overfill the batch: run what is held first
        now = self.clock()
        frame = self.estimator.upload(image) if len(boxes) else None  # nothing to upload without people
        self._pending.append(_Pending(key, frame, boxes, now))
        full = self.pending_crops >= self.max_crops or len(self._pending) >= self.max_frames
        if full or now - self._pending[0].t_added >= self.max_wait_s:
            done += self._run()
        return done

    def flush(self) -> list[Done]:
        """Run whatever is held (end of stream)."""
        return self._run() if self._pending else []

    def _run(self) -> list[Done]:
        pending, self._pending = self._pending, []
        with_people = [p for p in pending if len(p.boxes)]
        results = iter(())
        if with_people:
            frames, boxes = [p.frame for p in with_people], [p.boxes for p in with_people]
            results = iter(self.estimator.estimate_frames(frames, boxes))
            self.batches_run += 1
        k = self.estimator.num_keypoints
        empty = (np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32))
        return [(p.key, *(next(results) if len(p.boxes) else empty)) for p in pending]
