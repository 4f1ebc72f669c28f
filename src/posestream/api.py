"""The Python API: ``posestream.track`` over a source, ``posestream.PoseTracker`` over your own frames.

::

    import posestream
    for r in posestream.track("clip.mp4", pose="vitpose-s.onnx", detector="yolox_nano_coco.onnx"):
        for person in r.people:
            print(r.index, r.pts, person.track_id, person.keypoints[0])   # nose (x, y), pixels

``track`` builds the same graph as ``posestream run`` (``app.build_pipeline``: every stage on its
own thread) and yields one :class:`Result` per frame. Leaving the loop early (``break``, an
exception, ``close()``) stops the graph: its threads finish and every output is finalised before
the loop statement returns. Errors in your input (a missing file, a bad setting) raise at the
call; a failure inside the graph raises ``StageError`` from the loop.

``PoseTracker`` is for capture loops you own: ``tracker(frame_bgr, t=seconds)`` runs the same
stages (``app.build_processing``) in line on your thread and keeps their state (tracker, smoother,
rep counters) from call to call.

Settings (both): ``pose`` (an exported ONNX file, a known name such as ``"vitpose-s-coco"``,
``"torch:vitpose-s"`` for random weights, or ``"none"``), ``detector`` (a YOLOX / Ultralytics ONNX, a
known name, or ``"none"``); naming neither uses the defaults of ``posestream run``
(``app.with_default_models``, fetched once into the cache). ``config`` (a preset name, a YAML file or
a ``Config``), the shortcuts of :data:`SHORTCUTS` (the ``posestream run`` flags: ``smooth="kalman"``,
``max_frames=100``, ``exercise="squat"``, ``keypoints_from="earlier.jsonl"``, ``serve="127.0.0.1:8080"``,
...), ``conf`` and ``device`` (as ``--conf``/``--device``), and whole sections as dicts
(``tracker={"lost_track_buffer": 60}``). Every value is checked like a config file: an unknown
name or a wrong type raises ``ConfigError`` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from posestream.config import Config, apply_overrides, load_config
from posestream.errors import ConfigError, InputError
from posestream.pipeline.graph import Many, Parallel, StageContext
from posestream.types import COCO_KEYPOINTS, ExerciseFrame, Frame, Packet, Poses

__all__ = ["track", "PoseTracker", "TrackStream", "Result", "Person", "make_config", "SHORTCUTS"]

log = logging.getLogger(__name__)

# Setting name (as in `posestream run --flag-name`) -> config key. The CLI maps its flags through
# this table too, so the two never disagree.
SHORTCUTS: dict[str, str] = {
    "pose": "pose.model",
    "detector": "detector.model",
    "variant": "pose.variant",
    "weights": "pose.weights",
    "keypoints": "pose.keypoints",  # the keypoint set the model must predict (coco, wholebody, ...)
    "expert": "pose.expert",  # ViTPose+ expert
    "precision": "pose.precision",
    "calibration": "pose.calibration",  # int8 calibration pictures
    "keypoints_from": "pose.keypoints_from",
    "smooth": "smooth.filter",
    "exercise": "exercise.name",
    "max_frames": "source.max_frames",
    "realtime": "source.realtime",
    "strict": "source.strict",  # run --strict: a damaged packet stops the run
    "track_images": "source.track_images",  # run --track: an image folder is a frame sequence
    "out_video": "output.video",
    "out_dir": "output.image_dir",
    "out_json": "output.json",
    "out_csv": "output.csv",
    "out_reps": "output.reps",
    "serve": "output.serve",
    "show": "output.show",
}
# Settings that set several config keys at once (conf_keys, device_keys), as `run --conf/--device` do.
COMPOUND = ("conf", "device")
_STOP_POLL_S = 0.1
# Leaving the loop waits for calls in flight (a model call cannot be interrupted) up to this long,
# so no thread of the graph outlives the loop; the CLI's Ctrl-C waits less (pipeline.shutdown_timeout_s).
STOP_WAIT_S = 60.0


def make_config(config: Config | str | None = None, overrides: list[str] | tuple[str, ...] = (),
                **settings: Any) -> Config:  # fmt: skip
    """A checked ``Config``: ``config`` (preset, YAML file, Config or None), then ``--set``-style
    ``overrides`` (``"section.key=value"``), then ``settings`` (module docstring). None values are
    ignored, so unset CLI flags can be passed straight through."""
    if isinstance(config, Config):
        if overrides:
            raise ConfigError("'section.key=value' overrides apply to a preset or a YAML file, not to a Config")
        cfg = config
    else:
        cfg = load_config(None if config is None else str(config), overrides)
    sections = {f.name for f in dataclasses.fields(Config)}
    flat: dict[str, Any] = {}
    for name, value in settings.items():
        if value is None:
            continue
        if name == "conf":
            flat |= conf_keys(value, cfg)
        elif name == "device":
            flat |= device_keys(value)
        elif name in SHORTCUTS and not (name in sections and isinstance(value, dict)):  # pose= / detector=: both
            flat[SHORTCUTS[name]] = value
        elif name in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"setting '{name}': expected a dict of {name} keys, got {type(value).__name__}")
            flat.update({f"{name}.{key}": v for key, v in value.items()})
        else:
            raise ConfigError(f"unknown setting '{name}' (known: {', '.join(sorted([*SHORTCUTS, *COMPOUND]))}; "
                              f"or a section as a dict: {', '.join(sorted(sections))})")  # fmt: skip
    return apply_overrides(cfg, {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in flat.items()})


def conf_keys(conf: float, config: Config) -> dict[str, Any]:
    """``conf`` (run --conf): the score a box needs to become a person, in every place that decides it."""
    if not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
        raise InputError(f"--conf {conf}: expected a detector score in [0, 1]")
    t, d = config.tracker, config.detector
    return {
        "detector.conf": conf,
        "tracker.new_track_threshold": conf,
        # a track starts only from a box of the first association: keep those reachable
        "tracker.track_activation_threshold": min(t.track_activation_threshold, conf),
        "detector.score_threshold": min(d.score_threshold, conf),
    }


def device_keys(device: str) -> dict[str, Any]:
    """``device`` (run --device cpu|cuda|cuda:N): the torch device and the onnxruntime providers of both models."""
    device = str(device).strip().lower()
    if device == "cpu":
        providers = ["cpu"]
    elif device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        providers = ["cuda", "cpu"]
    else:
        raise InputError(f"--device {device}: expected cpu, cuda or cuda:N")
    return {"pose.device": device, "pose.providers": providers, "detector.providers": providers}


def resolve_models(config: Config) -> Config:
    """``config`` with the default models where it names none (``app.with_default_models``, as
    ``posestream run``), saying so in the log."""
    from posestream.app import with_default_models

    config, chosen = with_default_models(config)
    if chosen:
        log.info("posestream: %s", chosen)
    return config


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class Person:
    """One person in one frame.

    track_id: stable across frames (-1 when not tracked). box_xyxy: (4,) pixels. score: the
    detector's score for the box when the run has it, else None. keypoints: (K, 2) (x, y) pixels of
    the source frame; scores: (K,) in [0, 1].
    """

    track_id: int
    box_xyxy: np.ndarray
    score: float | None
    keypoints: np.ndarray
    scores: np.ndarray

    def to_dict(self, keypoint_names: tuple[str, ...] | None = None) -> dict:
        out = {"track_id": self.track_id, "box_xyxy": [_num(v) for v in self.box_xyxy], "score": _num(self.score),
               "keypoints": [[_num(x), _num(y), _num(s)] for (x, y), s in zip(self.keypoints, self.scores)]}
        if keypoint_names is not None:
            out["keypoint_names"] = list(keypoint_names)
        return out


@dataclass(frozen=True, slots=True)
class Result:
    """Everything found in one frame.

    index: 0-based frame number; pts: media time in seconds; people: one Person each;
    keypoint_names: the K names of the model's keypoint set, in order; exercise: rep counts, phases
    and cues when an exercise is set (else None); image: the frame, (H, W, 3) uint8 BGR (not copied).
    """

    index: int
    pts: float
    people: tuple[Person, ...]
    keypoint_names: tuple[str, ...]
    exercise: ExerciseFrame | None
    image: np.ndarray | None = None

    @classmethod
    def from_packet(cls, packet: Packet, keypoint_names: tuple[str, ...]) -> Result:
        people: list[Person] = []
        poses = packet.people
        if poses is not None:
            for i in range(len(poses)):
                score = float(poses.box_score[i])
                people.append(Person(int(poses.track_id[i]), poses.xyxy[i], score if math.isfinite(score) else None,
                                     poses.keypoints[i], poses.scores[i]))  # fmt: skip
        return cls(packet.index, packet.frame.pts, tuple(people), tuple(keypoint_names), packet.exercise,
                   packet.frame.image)  # fmt: skip

    def poses(self) -> Poses:
        """The people as one ``Poses`` (struct of arrays)."""
        k = len(self.keypoint_names)
        if not self.people:
            return Poses.empty(k)
        return Poses(np.stack([p.keypoints for p in self.people]).astype(np.float32),
                     np.stack([p.scores for p in self.people]).astype(np.float32),
                     np.stack([p.box_xyxy for p in self.people]).astype(np.float32),
                     np.array([p.track_id for p in self.people], np.int64),
                     np.array([np.nan if p.score is None else p.score for p in self.people], np.float32))  # fmt: skip

    def to_dict(self) -> dict:
        """Plain JSON types; the people in the keypoints JSON Lines' form, NaN as None."""
        out = {"frame": self.index, "pts": self.pts, "keypoint_names": list(self.keypoint_names),
               "people": [p.to_dict() for p in self.people]}  # fmt: skip
        if self.exercise is not None:
            out["exercise"] = self.exercise.as_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def draw(self, image: np.ndarray | None = None, *, keypoint_threshold: float = 0.3,
             draw_boxes: bool = True) -> np.ndarray:  # fmt: skip
        """Skeletons, boxes, ids (and reps and cues) drawn on a copy of ``image`` (default: the frame)."""
        from posestream.visual.draw import draw_exercise, draw_poses

        if image is None:
            if self.image is None:
                raise ValueError("Result.draw: this result holds no image; pass one")
            image = self.image
        canvas = np.array(image, dtype=np.uint8, copy=True)
        poses = self.poses()
        draw_poses(canvas, poses, keypoint_threshold=keypoint_threshold, draw_boxes=draw_boxes)
        if self.exercise is not None:
            draw_exercise(canvas, poses, self.exercise)
        return canvas


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), 3)


# --------------------------------------------------------------------------- track()
class _ResultSink:
    """Last stage of the graph: hands each packet to the consumer through a bounded queue, waiting
    (never dropping: the graph's own edges decide drops for live sources) until the consumer takes
    it or the stream is closed."""

    name = "api"

    def __init__(self, keypoint_names: tuple[str, ...], capacity: int = 2) -> None:
        self.keypoint_names = keypoint_names
        self.queue: queue.Queue = queue.Queue(maxsize=capacity)
        self.closed = threading.Event()

    def open(self, ctx: StageContext) -> None:
        pass

    def process(self, packet: Packet) -> Packet:
        result = Result.from_packet(packet, self.keypoint_names)
        while not self.closed.is_set():
            try:
                self.queue.put(result, timeout=_STOP_POLL_S)
                break
            except queue.Full:
                continue
        return packet

    def close(self) -> None:
        pass


_DONE = object()


class _Runner:
    """Runs the graph on its own thread and ends the result queue with _DONE. Kept apart from
    TrackStream so the thread holds no reference to the stream: when the user drops the stream
    (``break`` out of a ``for`` loop), it is finalised at once and stops the graph."""

    def __init__(self, pipeline, sink: _ResultSink) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.error: BaseException | None = None
        self.outcome = None
        self.thread = threading.Thread(target=self._run, name="ps-api", daemon=True)

    def _run(self) -> None:
        try:
            self.outcome = self.pipeline.graph.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            self.error = exc
        finally:
            while not self.sink.closed.is_set():
                try:
                    self.sink.queue.put(_DONE, timeout=_STOP_POLL_S)
                    break
                except queue.Full:
                    continue


class TrackStream:
    """The iterator ``track`` returns: one :class:`Result` per frame. ``close()``, leaving a
    ``with`` block, or dropping the last reference (``break`` out of ``for r in track(...)``)
    stops the graph, finalises its outputs and waits for its threads."""

    def __init__(self, pipeline, sink: _ResultSink, join_timeout_s: float = STOP_WAIT_S) -> None:
        self.pipeline = pipeline
        self._runner = _Runner(pipeline, sink)
        self._join_timeout_s = join_timeout_s
        self._started = False
        self._closed = False

    @property
    def source(self):
        """The source's facts (size, fps, frame count, time base)."""
        return self.pipeline.source

    @property
    def result(self):
        """The graph's ``GraphResult`` (per-stage metrics) once the stream has ended, else None."""
        return self._runner.outcome

    def __iter__(self) -> Iterator[Result]:
        return self

    def __next__(self) -> Result:
        if self._closed:
            raise StopIteration
        if not self._started:
            self._started = True
            self._runner.thread.start()
        item = self._runner.sink.queue.get()
        if item is _DONE:
            self.close()
            if self._runner.error is not None:
                raise self._runner.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the graph (if running), finalise its outputs and wait for its threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._started:  # never started: only the source is open
            self.pipeline.graph.source.close()
            return
        graph = self.pipeline.graph
        graph.shutdown_timeout = max(graph.shutdown_timeout, self._join_timeout_s)  # wait out calls in flight
        graph.request_stop()
        self._runner.sink.closed.set()  # unblocks a sink waiting on a full queue
        self._runner.thread.join(timeout=self._join_timeout_s + 5.0)
        if self._runner.thread.is_alive():
            log.error("posestream.track: the graph did not stop within %.1f s", self._join_timeout_s)

    def __enter__(self) -> TrackStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def track(source: str | int, pose: str | None = None, detector: str | None = None, *,
          config: Config | str | None = None, **settings: Any) -> TrackStream:  # fmt: skip
    """Run ``source`` (file, image folder, camera index, URL) through the graph; iterate the results.

    See the module docstring for the settings. Raises InputError / ConfigError here for bad input;
    the returned stream raises StageError while iterating if a stage fails.
    """
    from posestream.app import build_pipeline

    cfg = resolve_models(make_config(config, pose=pose, detector=detector, **settings))
    probe = _ResultSink(COCO_KEYPOINTS)
    pipeline = build_pipeline(str(source), cfg, extra_stages=[probe])
    probe.keypoint_names = pipeline.keypoint_names
    return TrackStream(pipeline, probe, max(STOP_WAIT_S, cfg.pipeline.shutdown_timeout_s))


# --------------------------------------------------------------------------- PoseTracker
class PoseTracker:
    """Pose estimation for frames you read yourself, with the graph's stages run in line.

    ``tracker(frame_bgr, t=seconds)`` -> Result. ``t`` is the frame's time (pts or capture time, in
    seconds, increasing); it drives the tracker's lost buffer and the smoother, so pass real times
    when frames are irregular. Default: seconds since the first call, from ``time.monotonic()``.
    ``fps``: the camera's frame rate, the tracker's lost buffer counts frames at it (default: 30,
    or ``tracker.frame_rate``), as the graph uses the source's rate.
    The detector, tracker, smoother and rep counters keep their state between calls; ``reset()``
    forgets it (a new clip). Not thread-safe: call it from one thread. ``close()`` (or ``with``)
    releases the stages.
    """

    def __init__(self, pose: str | None = None, detector: str | None = None, *, fps: float | None = None,
                 config: Config | str | None = None, **settings: Any) -> None:  # fmt: skip
        self.config = resolve_models(make_config(config, pose=pose, detector=detector, **settings))
        self.fps = fps
        if self.config.pose.keypoints_from:
            raise ConfigError("PoseTracker estimates poses on your frames; keypoints_from is for track()/run")
        self._processing = self._build()
        self.keypoint_names = self._processing.keypoint_names
        self.random_weights = self._processing.random_weights
        self._opened = False
        self._index = 0
        self._t0: float | None = None
        self._last_t: float | None = None
        self.stop_requested = False  # a stage asked to stop (as a closed window would in the graph)

    @property
    def stages(self) -> list:
        """The stages run in line (of a ``Parallel`` stage, one copy: frames come one at a time)."""
        return [s.replicas[0] if isinstance(s, Parallel) else s for s in self._processing.stages]

    def __call__(self, frame_bgr: np.ndarray, t: float | None = None) -> Result:
        image = np.asarray(frame_bgr)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"PoseTracker: expected an (H, W, 3) uint8 BGR frame, got {image.shape} {image.dtype}")
        now = time.monotonic()
        if t is None:
            self._t0 = now if self._t0 is None else self._t0
            t = now - self._t0
        t = float(t)
        if not math.isfinite(t) or (self._last_t is not None and t <= self._last_t):
            raise ValueError(f"PoseTracker: t must increase from call to call (seconds), got {t} after "
                             f"{self._last_t}")  # fmt: skip
        if not self._opened:
            ctx = StageContext(request_stop=self._request_stop, snapshot=lambda: [], live=True)
            for stage in self.stages:
                stage.open(ctx)
            self._opened = True
        self._last_t = t
        index = self._index
        self._index += 1
        packets = [Packet(Frame(index, t, now, image))]
        for stage in self.stages:  # as the graph would: None drops, Many fans out
            out: list[Packet] = []
            for packet in packets:
                produced = stage.process(packet)
                out += list(produced) if isinstance(produced, Many) else [] if produced is None else [produced]
            packets = out
        mine = [p for p in packets if p.index == index]
        if not mine:  # dropped on purpose, or held back by a stage that batches across frames
            return Result(index, t, (), self.keypoint_names, None, image)
        return Result.from_packet(mine[-1], self.keypoint_names)

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _build(self):
        from posestream.app import build_processing

        return build_processing(self.config, source_fps=self.fps)

    def reset(self) -> None:
        """Forget every track (a new clip or camera): rebuild the stages' state."""
        self.close()
        self._processing = self._build()
        self._index, self._t0, self._last_t = 0, None, None

    def close(self) -> None:
        if self._opened:
            for stage in self.stages:
                stage.close()
            self._opened = False

    def __enter__(self) -> PoseTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

