"""Data that flows through the graph.

Everything here is a small frozen dataclass over numpy arrays (struct of arrays, one row per
person). Shapes are validated on construction so a wrong array fails where it is made, not three
stages later. Conventions: boxes are ``xyxy`` in pixels of the source frame, keypoints ``(x, y)`` in
pixels of the source frame, ``pts`` is media time in seconds from the container, ``t_*`` are
``time.monotonic()`` seconds. What the K keypoints are is the pose model's ``KeypointSet``
(``posestream.keypoints``), handed to the stages that need it; it is not carried per packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from posestream.keypoints import get_keypoint_set

_COCO = get_keypoint_set("coco")

__all__ = ["Frame", "Detections", "Tracks", "Poses", "Packet", "RepEvent", "ExerciseStatus", "ExerciseFrame",
           "COCO_KEYPOINTS", "COCO_SKELETON"]

# The COCO-17 names and skeleton, for the features defined on COCO keypoints only (exercises,
# biomechanics, the API's default); they are the registry's ``coco`` set (``posestream.keypoints``),
# which everything that follows the model's own set uses instead.
COCO_KEYPOINTS: tuple[str, ...] = _COCO.keypoints
COCO_SKELETON: tuple[tuple[int, int], ...] = _COCO.skeleton


def _check(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise ValueError unless ``array`` has ``len(shape)`` dims matching ``shape`` (None = any)."""
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture.

    image: (H, W, 3) uint8, BGR (OpenCV order).
    index: 0-based position in the stream (counts decoded frames, not dropped ones).
    pts: presentation time in seconds from the container (variable frame rate stays correct).
    t_capture: ``time.monotonic()`` when the frame left the decoder (for capture-to-render latency).
    name: for image sources, the picture's file name (relative to the folder, or to the glob's base);
        None for video.
    """

    index: int
    pts: float
    t_capture: float
    image: np.ndarray
    name: str | None = None

    def __post_init__(self) -> None:
        _check("Frame.image", self.image, (None, None, 3))

    @property
    def size_wh(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """Person boxes from a detector.

    xyxy: (N, 4) float32 pixels; score: (N,) float32 in [0, 1].
    """

    xyxy: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        _check("Detections.score", self.score, (None,))
        _check("Detections.xyxy", self.xyxy, (len(self.score), 4))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True, slots=True)
class Tracks:
    """Tracked people of one frame.

    xyxy: (N, 4) float32 pixels; score: (N,) float32; track_id: (N,) int64, stable across frames.
    """

    xyxy: np.ndarray
    score: np.ndarray
    track_id: np.ndarray

    def __post_init__(self) -> None:
        _check("Tracks.score", self.score, (None,))
        _check("Tracks.xyxy", self.xyxy, (len(self.score), 4))
        _check("Tracks.track_id", self.track_id, (len(self.score),))

    @classmethod
    def empty(cls) -> Tracks:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True, slots=True)
class Poses:
    """Keypoints of the people of one frame.

    keypoints: (N, K, 2) float32, (x, y) pixels of the source frame.
    scores: (N, K) float32 in [0, 1] (heatmap peak values).
    xyxy: (N, 4) float32, the box each pose was estimated in.
    track_id: (N,) int64; -1 where the person is not tracked.
    box_score: (N,) float32, the detector's score of the person's box (tracked: the score of the
        detection last matched to the track). Omitted: all NaN (unknown).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    xyxy: np.ndarray
    track_id: np.ndarray
    box_score: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check("Poses.keypoints", self.keypoints, (None, None, 2))
        n, k = self.keypoints.shape[:2]
        _check("Poses.scores", self.scores, (n, k))
        _check("Poses.xyxy", self.xyxy, (n, 4))
        _check("Poses.track_id", self.track_id, (n,))
        if self.box_score is None:
            object.__setattr__(self, "box_score", np.full((n,), np.nan, np.float32))
        _check("Poses.box_score", self.box_score, (n,))

    @classmethod
    def empty(cls, num_keypoints: int = 17) -> Poses:
        return cls(
            np.zeros((0, num_keypoints, 2), np.float32),
            np.zeros((0, num_keypoints), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.int64),
        )

    @classmethod
    def from_tracks(cls, tracks: Tracks) -> Poses:
        """People with boxes and ids but no keypoints (K = 0): a run without a pose model."""
        n = len(tracks)
        return cls(np.zeros((n, 0, 2), np.float32), np.zeros((n, 0), np.float32), tracks.xyxy, tracks.track_id,
                   tracks.score.astype(np.float32))

    @classmethod
    def from_detections(cls, detections: Detections) -> Poses:
        """Untracked people with boxes but no keypoints (K = 0): detection only (photos, no pose model)."""
        n = len(detections)
        return cls(np.zeros((n, 0, 2), np.float32), np.zeros((n, 0), np.float32), detections.xyxy,
                   np.full((n,), -1, np.int64), detections.score.astype(np.float32))  # fmt: skip

    def __len__(self) -> int:
        return len(self.track_id)


@dataclass(frozen=True, slots=True)
class RepEvent:
    """One completed repetition of one tracked person (see ``posestream.exercises``).

    pts_start: the last frame in the start position before the rep; pts_turn: the frame where the
    driving angle was most extreme; pts: the frame the start position was reached again (the event's
    time). minimum / maximum: measure name -> degrees over the rep (valid frames only; the driving
    measure and every measure a form rule reads). cues: the form rules that fired, in definition order.
    """

    exercise: str
    track_id: int
    rep: int  # 1-based count for this track
    pts_start: float
    pts_turn: float
    pts: float
    minimum: dict[str, float]
    maximum: dict[str, float]
    cues: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"exercise": self.exercise, "track_id": self.track_id, "rep": self.rep, "pts": self.pts,
                "pts_start": self.pts_start, "pts_turn": self.pts_turn, "min_deg": dict(self.minimum),
                "max_deg": dict(self.maximum), "cues": list(self.cues)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExerciseStatus:
    """Where one tracked person is in the exercise in this frame.

    phase: the exercise's label for the current phase (e.g. "standing", "lowering", "bottom").
    value_deg: the driving measure this frame; None when a keypoint it needs is below threshold.
    cues: those of the last completed rep (shown until the next rep completes).
    """

    track_id: int
    reps: int
    phase: str
    value_deg: float | None
    cues: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"track_id": self.track_id, "reps": self.reps, "phase": self.phase,
                "value_deg": self.value_deg, "cues": list(self.cues)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExerciseFrame:
    """The exercise analysis of one frame: every tracked person's status, the reps completed in this
    frame (``events``), and the last few reps up to it (``recent``, oldest first): a live view that
    misses frames (drop-oldest edges) still lists every recent rep."""

    exercise: str
    people: tuple[ExerciseStatus, ...] = ()
    events: tuple[RepEvent, ...] = ()
    recent: tuple[RepEvent, ...] = ()

    def as_dict(self) -> dict:
        return {"exercise": self.exercise, "people": [p.as_dict() for p in self.people],
                "events": [e.as_dict() for e in self.events],
                "recent_reps": [e.as_dict() for e in self.recent]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Packet:
    """What travels between stages: one frame and everything found in it so far.

    Stages return ``packet.with_(...)`` rather than mutating. ``timings`` maps stage name to the
    seconds that stage spent on this packet (filled by the graph runtime); ``annotated`` is the
    rendered picture, (H, W, 3) uint8 BGR, once the render stage has run; ``exercise`` the rep
    counting and form cues, once the exercise stage has run.
    """

    frame: Frame
    detections: Detections | None = None
    tracks: Tracks | None = None
    poses: Poses | None = None
    annotated: np.ndarray | None = None
    exercise: ExerciseFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.frame.index

    @property
    def people(self) -> Poses | None:
        """The poses, else the tracked boxes, else the detected boxes (as keypoint-less poses), else None."""
        if self.poses is not None:
            return self.poses
        if self.tracks is not None:
            return Poses.from_tracks(self.tracks)
        return Poses.from_detections(self.detections) if self.detections is not None else None

    def with_(self, **changes: object) -> Packet:
        """A copy with ``changes`` applied (timings dict is shared on purpose: the runtime fills it)."""
        return replace(self, **changes)
