"""Track stage: ByteTrack over the packet's detections, timed by the frame's pts."""

from __future__ import annotations

from collections import deque

import numpy as np

from posestream.pipeline import Many
from posestream.stages.base import StageBase
from posestream.tracking.backfill import HeldFrame, backfill_track
from posestream.types import Packet, Tracks

__all__ = ["TrackStage"]


class TrackStage(StageBase):
    """coast_lost_s > 0: also report lost tracks, at their predicted boxes, for that long after
    their last detection (recorded footage: a missed detection should not cost a pose).

    backfill_s > 0 (recorded footage only: it delays every frame by that much): hold the last
    ``backfill_s`` seconds of frames back, and when a track is confirmed give it, in the held frames,
    the detections of the same person since they were first detected (``tracking.backfill``; gaps up
    to ``coast_lost_s`` interpolated). Held frames leave in order; the last ones at the end of the
    stream (``flush``). A stop or a failure does not flush: up to ``backfill_s`` of the last frames
    are then not written.
    """

    name = "track"

    def __init__(self, tracker, coast_lost_s: float = 0.0, backfill_s: float = 0.0) -> None:
        self.tracker = tracker
        self.coast_lost_s = coast_lost_s
        self.backfill_s = backfill_s
        self._held: deque[Packet] = deque()
        self._reported: set[int] = set()

    def process(self, packet: Packet) -> Packet | Many:
        t = packet.frame.pts
        if packet.detections is None:  # a frame the detector skipped (detect_every > 1)
            tracks = self.tracker.predict_only(t)
        else:
            tracks = self.tracker.update(packet.detections, t)
        if self.coast_lost_s > 0:
            coasting = self.tracker.lost_predicted(t, self.coast_lost_s)
            if len(coasting):
                tracks = _concat(tracks, coasting)
        packet = packet.with_(tracks=tracks)
        if self.backfill_s <= 0:
            return packet
        for i in np.flatnonzero(~np.isin(tracks.track_id, list(self._reported))):
            self._backfill(int(tracks.track_id[i]), tracks.xyxy[i], t)
        self._reported.update(tracks.track_id.tolist())
        self._held.append(packet)
        out = []
        while t - self._held[0].frame.pts > self.backfill_s:
            out.append(self._held.popleft())
        return Many(out)

    def flush(self) -> list[Packet]:
        out, self._held = list(self._held), deque()
        return out

    def _backfill(self, track_id: int, xyxy: np.ndarray, t: float) -> None:
        held = [
            HeldFrame(p.frame.pts, getattr(p.detections, "xyxy", None), getattr(p.detections, "score", None),
                      p.tracks.xyxy)  # fmt: skip
            for p in self._held
        ]
        found = backfill_track(held, xyxy, t, max_gap_s=self.coast_lost_s)
        for i, (box, score) in found.items():
            p = self._held[i]
            extra = Tracks(box[None].astype(np.float32), np.float32([score]), np.int64([track_id]))
            self._held[i] = p.with_(tracks=_concat(p.tracks, extra))


def _concat(a: Tracks, b: Tracks) -> Tracks:
    return Tracks(*(np.concatenate([x, y]) for x, y in
                    zip((a.xyxy, a.score, a.track_id), (b.xyxy, b.score, b.track_id))))  # fmt: skip
