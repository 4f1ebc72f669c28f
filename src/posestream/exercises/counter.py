"""Rep counting and form cues per tracked person, frame by frame (live-safe: causal, O(1) per frame).

``compute_measures`` turns keypoints into the measures of ``definition.MEASURES``.
``RepCounter`` is one person's state machine over the exercise's drive measure::

    waiting --in start--> start --left start--> leaving --in turn--> turn --left turn--> returning
                            ^                      |                   ^                    |
                            |                      +--back in start----+----back in turn----+
                            +------------------------ back in start: one rep ---------------+

"In a zone" uses the zone's threshold; "left a zone" the threshold moved ``hysteresis_deg``
further out, so noise around a threshold cannot flip the phase back and forth. A NaN value (a
keypoint below the score threshold) changes nothing: it never enters or leaves a zone, so it can
never complete a rep. ``leaving`` back into ``start`` without reaching the turn is a partial
movement, not a rep. A person first seen mid-movement is ``waiting`` until they reach the start
position, so half a rep is never counted.

``ExerciseAnalyzer`` keeps one counter per track id (untracked people, id -1, are skipped: they
cannot be followed from frame to frame) and forgets a track unseen for ``forget_after_s``.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from posestream.analytics.angles import ANGLE_NAMES, joint_angles
from posestream.exercises.definition import SIDED_JOINTS, Exercise
from posestream.types import COCO_KEYPOINTS, ExerciseFrame, ExerciseStatus, Poses, RepEvent

__all__ = ["compute_measures", "RepCounter", "ExerciseAnalyzer"]

log = logging.getLogger(__name__)


def compute_measures(keypoints: np.ndarray, scores: np.ndarray, names: tuple[str, ...],
                     threshold: float) -> dict[str, np.ndarray]:  # fmt: skip
    """The named measures (degrees) for each person.

    keypoints: (..., 17, 2) COCO-17 pixels; scores: (..., 17). Returns name -> (...,) float64,
    NaN where a keypoint the measure needs scores below ``threshold``.
    """
    angles = joint_angles(keypoints, scores, threshold)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in ANGLE_NAMES:
            out[name] = angles[name]
        elif name == "trunk_lean_abs":
            out[name] = np.abs(angles["trunk_lean"])
        else:
            joint, _, kind = name.partition("_")
            assert joint in SIDED_JOINTS, name  # definition.MEASURES is the vocabulary
            left, right = angles[f"left_{joint}"], angles[f"right_{joint}"]
            both = np.stack([left, right])
            with warnings.catch_warnings():  # an all-NaN slice warns; NaN is the answer wanted
                warnings.simplefilter("ignore", RuntimeWarning)
                if kind == "":
                    out[name] = np.nanmean(both, axis=0)
                elif kind == "min":
                    out[name] = np.nanmin(both, axis=0)
                elif kind == "max":
                    out[name] = np.nanmax(both, axis=0)
                else:  # asymmetry: only where both sides are seen
                    out[name] = np.abs(left - right)
    return out


class RepCounter:
    """One person's phase and rep count for one exercise (see the module docstring).

    ``update(pts, values)`` takes the frame's measures (name -> degrees, NaN when unknown; the
    exercise's ``measures``) and returns the RepEvent completed by this frame, if any.
    """

    def __init__(self, exercise: Exercise, track_id: int = -1) -> None:
        self.exercise = exercise
        self.track_id = track_id
        self.phase = "waiting"
        self.reps = 0
        self.last_cues: tuple[str, ...] = ()
        self.value = math.nan
        # The rep in progress: from the last frame in the start position to now.
        self._pts: list[float] = []
        self._rows: list[dict[str, float]] = []
        self._last_start: tuple[float, dict[str, float]] | None = None

    def update(self, pts: float, values: dict[str, float]) -> RepEvent | None:
        ex, h = self.exercise, self.exercise.hysteresis_deg
        v = float(values[ex.drive])
        self.value = v
        if self.phase in ("leaving", "turn", "returning"):
            self._pts.append(pts)
            self._rows.append(values)
        if not math.isfinite(v):
            return None  # below the score threshold: no phase change, ever
        event = None
        if self.phase == "waiting":
            if ex.start.contains(v):
                self.phase = "start"
        elif self.phase == "start":
            if not ex.start.contains(v, margin=h):
                self.phase = "leaving"
                self._begin(pts, values)
        elif self.phase == "leaving":
            if ex.turn.contains(v):
                self.phase = "turn"
            elif ex.start.contains(v):
                self.phase = "start"  # a partial movement: back without reaching the turn
        elif self.phase == "turn":
            if not ex.turn.contains(v, margin=h):
                self.phase = "returning"
        elif self.phase == "returning":
            if ex.turn.contains(v):
                self.phase = "turn"
            elif ex.start.contains(v):
                self.phase = "start"
                event = self._finish(pts)
        if self.phase == "start":
            self._last_start = (pts, values)
        return event

    @property
    def label(self) -> str:
        return self.exercise.phases[self.phase]

    def status(self) -> ExerciseStatus:
        value = round(self.value, 2) if math.isfinite(self.value) else None
        return ExerciseStatus(self.track_id, self.reps, self.label, value, self.last_cues)

    def _begin(self, pts: float, values: dict[str, float]) -> None:
        first = self._last_start or (pts, values)
        self._pts = [first[0], pts] if first[0] != pts else [pts]
        self._rows = [first[1], values] if first[0] != pts else [values]

    def _finish(self, pts: float) -> RepEvent:
        ex = self.exercise
        table = {m: np.array([row[m] for row in self._rows], np.float64) for m in ex.measures}
        drive = table[ex.drive]
        extreme = np.nanargmin(drive) if ex.turn.below is not None else np.nanargmax(drive)
        minimum = {m: _stat(np.nanmin, col) for m, col in table.items()}
        maximum = {m: _stat(np.nanmax, col) for m, col in table.items()}
        cues = []
        for rule in ex.rules:
            col = table[rule.measure]
            value = {"min": minimum[rule.measure], "max": maximum[rule.measure],
                     "at_turn": float(col[extreme])}[rule.stat]  # fmt: skip
            if rule.fires(value):
                cues.append(rule.cue)
        self.reps += 1
        self.last_cues = tuple(cues)
        event = RepEvent(ex.name, self.track_id, self.reps, self._pts[0], self._pts[int(extreme)], pts,
                         {m: v for m, v in minimum.items() if math.isfinite(v)},
                         {m: v for m, v in maximum.items() if math.isfinite(v)}, self.last_cues)  # fmt: skip
        self._pts, self._rows = [], []
        return event


def _stat(fn, col: np.ndarray) -> float:
    if not np.isfinite(col).any():
        return math.nan
    return round(float(fn(col)), 2)


class ExerciseAnalyzer:
    """Rep counters for every tracked person of a stream.

    exercise: the definition (``load_exercise``).
    score_threshold: keypoints below this make every measure using them NaN (no count, no cue).
    forget_after_s: a track unseen this long loses its count (bounded memory for long live runs);
        if the tracker gives the id back later it starts from zero.
    keypoint_names: the model's keypoints; the measures need COCO-17 (checked here, at construction).
    """

    def __init__(self, exercise: Exercise, *, score_threshold: float = 0.3, forget_after_s: float = 5.0,
                 keypoint_names: tuple[str, ...] = COCO_KEYPOINTS) -> None:  # fmt: skip
        if tuple(keypoint_names[: len(COCO_KEYPOINTS)]) != COCO_KEYPOINTS:
            raise ValueError(f"exercise '{exercise.name}' needs the COCO-17 keypoints (first 17 in COCO order); "
                             f"the model gives {len(keypoint_names)}: {', '.join(keypoint_names[:5])}, ...")
        self.exercise = exercise
        self.score_threshold = float(score_threshold)
        self.forget_after_s = float(forget_after_s)
        self.counters: dict[int, RepCounter] = {}
        self._last_seen: dict[int, float] = {}

    def update(self, poses: Poses | None, pts: float) -> ExerciseFrame:
        """Feed one frame (``pts`` seconds); returns every tracked person's status and new reps."""
        stale = [tid for tid, t in self._last_seen.items() if pts - t > self.forget_after_s or pts < t]
        for tid in stale:
            del self.counters[tid], self._last_seen[tid]
        if poses is None or len(poses) == 0 or poses.keypoints.shape[1] == 0:
            return ExerciseFrame(self.exercise.name)
        k = len(COCO_KEYPOINTS)
        measures = compute_measures(poses.keypoints[:, :k], poses.scores[:, :k], self.exercise.measures,
                                    self.score_threshold)  # fmt: skip
        people, events = [], []
        for i, tid in enumerate(poses.track_id.tolist()):
            if tid < 0 or tid in self._last_seen and self._last_seen[tid] == pts:
                continue  # untracked, or the same id twice in a frame
            counter = self.counters.get(tid)
            if counter is None:
                counter = self.counters[tid] = RepCounter(self.exercise, tid)
            self._last_seen[tid] = pts
            event = counter.update(pts, {m: float(col[i]) for m, col in measures.items()})
            if event is not None:
                events.append(event)
            people.append(counter.status())
        return ExerciseFrame(self.exercise.name, tuple(people), tuple(events))
