"""Per-track temporal smoothing of poses: one causal filter per track id.

``PoseSmoother`` keeps one filter (one-euro or Kalman, see their modules) per track id, fed with
that person's ``(K, 2)`` keypoints, their ``(K,)`` scores and the frame's timestamp. Life cycle:

* born: a track id not held yet gets a fresh filter; its first keypoints pass through.
* lost: a track not seen for more than ``forget_after_s`` seconds is dropped (its state is freed,
  so memory is bounded by the tracks seen in the last ``forget_after_s`` seconds); if the id comes
  back later it starts fresh. Pruning runs at the start of every call, even on frames with nobody.
* untracked people (``track_id == -1``) pass through unfiltered: there is nothing to smooth against.
* time going backwards (a seek, a new stream) drops every track.

Only keypoints change; scores, boxes and track ids are passed through.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Callable

import numpy as np

from posestream.filters.kalman import KalmanSmoother
from posestream.filters.one_euro import OneEuroFilter
from posestream.types import Poses

__all__ = ["PoseSmoother", "KINDS"]

logger = logging.getLogger(__name__)

_FACTORIES: dict[str, type] = {"one_euro": OneEuroFilter, "kalman": KalmanSmoother}
KINDS: tuple[str, ...] = ("one_euro", "kalman", "none")


class PoseSmoother:
    """Smooth each tracked person's keypoints over time.

    Args:
        kind: ``'one_euro'`` (adaptive low-pass, cheapest, lag falls with speed), ``'kalman'``
            (constant-velocity model, uses the score as measurement noise) or ``'none'`` (pass through).
        score_threshold: keypoints scoring below this do not move the estimate: the filter holds that
            keypoint's previous value and outputs it. Higher = fewer glitches from bad detections, more
            keypoints frozen during partial occlusion.
        forget_after_s: a track unseen for longer than this many seconds is dropped and restarts fresh
            if its id returns. Longer = survives longer occlusions with its state; the tracker usually
            retires an id much sooner anyway.
        **params: passed to the filter: ``min_cutoff``, ``beta``, ``d_cutoff`` for one-euro;
            ``process_var``, ``r0``, ``score_eps``, ``init_velocity_var`` for Kalman. Defaults are the
            filters' (chosen by ``benchmarks/smoothing_tuning.py``).
    """

    def __init__(self, kind: str = "one_euro", score_threshold: float = 0.3, forget_after_s: float = 1.0,
                 **params: float) -> None:
        if kind not in KINDS:
            raise ValueError(f"PoseSmoother: kind must be one of {KINDS}, got {kind!r}")
        if not (math.isfinite(forget_after_s) and forget_after_s >= 0):
            raise ValueError(f"PoseSmoother: forget_after_s must be a finite number >= 0 s, "
                             f"got {forget_after_s}")
        if kind == "none":
            if params:
                raise ValueError(f"PoseSmoother: kind 'none' takes no filter parameters, "
                                 f"got {sorted(params)}")
            self._factory: Callable[[], object] | None = None
        else:
            cls = _FACTORIES[kind]
            allowed = set(inspect.signature(cls).parameters) - {"score_threshold"}
            unknown = sorted(set(params) - allowed)
            if unknown:
                raise ValueError(f"PoseSmoother: unknown parameter(s) {unknown} for kind {kind!r}; "
                                 f"expected some of {sorted(allowed)}")
            self._factory = lambda: cls(score_threshold=score_threshold, **params)
            self._factory()  # validate the parameters now, not on the first person
        self.kind = kind
        self.score_threshold = float(score_threshold)
        self.forget_after_s = float(forget_after_s)
        self._filters: dict[int, object] = {}
        self._last_seen: dict[int, float] = {}
        self._t_last: float | None = None

    @property
    def num_tracks(self) -> int:
        """Number of track ids currently holding filter state."""
        return len(self._filters)

    def reset(self) -> None:
        """Drop every track's state."""
        self._filters.clear()
        self._last_seen.clear()
        self._t_last = None

    def __call__(self, poses: Poses, t: float) -> Poses:
        """Smooth one frame's poses.

        Args:
            poses: keypoints (N, K, 2), scores (N, K), xyxy (N, 4), track_id (N,).
            t: the frame's timestamp in seconds (``pts``; real time, so dropped frames are handled).

        Returns:
            Poses with keypoints (N, K, 2) float32 smoothed for tracked people, everything else as given.
        """
        if self._factory is None:
            return poses
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"PoseSmoother: t must be a finite number of seconds, got {t}")
        if self._t_last is not None and t < self._t_last:
            logger.info("PoseSmoother: time went back from %.3f to %.3f s, dropping %d tracks",
                        self._t_last, t, len(self._filters))
            self.reset()
        self._t_last = t
        self._forget(t)

        keypoints = np.array(poses.keypoints, dtype=np.float32, copy=True)  # (N, K, 2)
        seen: set[int] = set()
        for i, tid in enumerate(poses.track_id.tolist()):
            if tid < 0:
                continue
            if tid in seen:
                logger.warning("PoseSmoother: track id %d twice in one frame, passing the second through",
                               tid)
                continue
            seen.add(tid)
            filt = self._filters.get(tid)
            if filt is None:
                filt = self._filters[tid] = self._factory()
            keypoints[i] = filt(poses.keypoints[i], t, poses.scores[i])
            self._last_seen[tid] = t
        return Poses(keypoints, poses.scores, poses.xyxy, poses.track_id, poses.box_score)

    def _forget(self, t: float) -> None:
        stale = [tid for tid, seen in self._last_seen.items() if t - seen > self.forget_after_s]
        for tid in stale:
            del self._filters[tid], self._last_seen[tid]
        if stale:
            logger.debug("PoseSmoother: forgot tracks %s", stale)
