"""Assembly: a config and a source become a ready-to-run graph.

This is the one place that knows which stage follows which; the stages stay thin and the cores
(models, tracking, filters, geometry) know nothing about threads. Everything that can fail because
of user input (source, model files, output paths) fails here, before a thread starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from posestream.config import Config
from posestream.errors import InputError
from posestream.io.video import SourceInfo, open_source
from posestream.pipeline.budget import ThreadBudget, plan_threads, usable_cores
from posestream.pipeline.channel import Overflow
from posestream.pipeline.graph import Graph
from posestream.stages.decode import DecodeSource
from posestream.stages.render import RenderStage
from posestream.stages.sinks import KeypointSink, VideoSink
from posestream.types import COCO_KEYPOINTS

__all__ = [
    "Pipeline", "Models", "Processing", "build_pipeline", "build_processing", "build_pose_backend",
    "build_pose_estimator", "load_models", "thread_budget", "RANDOM_BANNER",
]  # fmt: skip

log = logging.getLogger(__name__)

RANDOM_BANNER = "RANDOM WEIGHTS: keypoints are meaningless"


@dataclass
class Pipeline:
    graph: Graph
    source: SourceInfo
    live: bool
    model_name: str | None = None
    random_weights: bool = False
    extras: dict[str, Any] = field(default_factory=dict)  # stage objects tests/bench may inspect
    # What runs where, for the run summary: {"pose": "openvino[CPU,bf16] bf16 (default: ...), 2 threads", ...}
    resources: dict[str, str] = field(default_factory=dict)
    keypoint_names: tuple[str, ...] = COCO_KEYPOINTS


@dataclass(frozen=True)
class Models:
    """The loaded models of a config: what is worth keeping between videos (the slow part to build).

    ``pose`` is a pose backend or None; ``detector`` a person detector or None. Everything else a
    pipeline holds (tracker, smoother, sinks) is state of one video and is built per call.
    """

    pose: Any = None
    detector: Any = None


def load_models(config: Config, budget: ThreadBudget | None = None) -> Models:
    """Load the pose backend and person detector that ``config`` names (either may be None), with
    the threads of ``budget`` (default: the config's own CPU thread budget)."""
    budget = budget or thread_budget(config)
    backend = build_pose_backend(config, threads=budget.threads.get("pose", budget.threads.get("pose.0")))
    detector = None
    if backend is not None or config.detector.model:
        detector = _build_detector(config, threads=budget.threads.get("detector", 1))
    return Models(pose=backend, detector=detector)


def build_pose_backend(config: Config, threads: int | None = None):
    """The pose backend named by ``config.pose``, or None when no pose model is configured.

    threads: inference threads (default: ``pose.threads``, or the budget's share when that is 0).
    """
    pose = config.pose
    if not (pose.model or pose.variant):
        return None
    from posestream.runtime.factory import open_pose_backend

    calibration = None
    if pose.calibration:
        from posestream.evaluation.calibration import pose_calibration

        calibration = pose_calibration(pose.calibration)
    return open_pose_backend(
        pose.model or None, variant=pose.variant, weights=pose.weights, decoder=pose.decoder,
        engine=pose.engine, providers=pose.providers, device=pose.device,
        threads=threads or pose.threads or thread_budget(config)["pose"],
        precision=pose.precision, calibration=calibration,
        compile=_auto(pose.compile), cuda_graphs=_auto(pose.cuda_graphs),
    )  # fmt: skip


def _auto(flag: str) -> bool | None:
    """A config "auto" | "true" | "false" as None (let the component decide) | True | False."""
    return None if flag == "auto" else flag == "true"


def build_pose_estimator(backend, config: Config, per_frame: bool):
    """The estimator for ``backend`` and the cross-frame batcher (None when ``per_frame``: a live
    source, parallel pose workers, keypoint-driven boxes).

    device_pipeline picks ``DeviceTopDownEstimator`` (warp, normalise and decode on the torch
    device) over ``TopDownEstimator`` (OpenCV + numpy on the CPU); cross_frame picks batching
    (never for a live source). Both "auto" = on when the model runs on a GPU. The model is then
    compiled / captured for the batch sizes it will see, before the first frame (said in the log).
    """
    from posestream.errors import ConfigError
    from posestream.estimation.frame_batcher import FrameBatcher
    from posestream.estimation.topdown import TopDownEstimator

    pose = config.pose
    on_gpu = bool(getattr(backend, "on_gpu", False))
    device_side = _auto(pose.device_pipeline)
    if device_side is None:
        device_side = on_gpu and hasattr(backend, "forward")
    if device_side and not hasattr(backend, "forward"):
        raise ConfigError(f"pose.device_pipeline: true needs a PyTorch model (pose.variant or pose.model: "
                          f"torch:<variant>), not {backend.name}")  # fmt: skip
    if device_side:
        from posestream.estimation.device import DeviceTopDownEstimator

        estimator = DeviceTopDownEstimator(backend, padding=1.25)
    else:
        estimator = TopDownEstimator(backend, batch_buckets=_batch_buckets(config, backend))
    cross_frame = on_gpu if pose.cross_frame == "auto" else _auto(pose.cross_frame)
    if cross_frame and per_frame:
        if pose.cross_frame == "true":
            log.info("pose.cross_frame: off (live source, parallel pose workers or keypoint-driven boxes)")
        cross_frame = False
    batcher = None
    if cross_frame:
        if pose.cross_frame_crops < 1 or pose.cross_frame_frames < 1 or pose.cross_frame_wait_s < 0:
            raise ConfigError("pose.cross_frame_crops and cross_frame_frames: expected >= 1; "
                              "pose.cross_frame_wait_s: expected >= 0")  # fmt: skip
        limits = {"max_crops": pose.cross_frame_crops, "max_frames": pose.cross_frame_frames}
        batcher = FrameBatcher(estimator, max_wait_s=pose.cross_frame_wait_s, **limits)
    largest = pose.cross_frame_crops if batcher is not None else max(GPU_BUCKETS)
    estimator.warm_up(tuple(size for size in (*GPU_BUCKETS, 128, 256) if size <= largest) or (largest,))
    return estimator, batcher


@dataclass
class Processing:
    """The per-frame analysis stages, in order: (detect, track, pose) or replay, then smooth and
    exercise. The graph runs them on threads; ``posestream.PoseTracker`` calls them in line."""

    stages: list
    models: Models
    model_name: str | None = None
    random_weights: bool = False
    keypoint_names: tuple[str, ...] = COCO_KEYPOINTS
    extras: dict[str, Any] = field(default_factory=dict)


def build_processing(config: Config, models: Models | None = None, *, budget: ThreadBudget | None = None,
                     workers: int = 1, live: bool = True) -> Processing:  # fmt: skip
    """Build the analysis stages of ``config``. Raises InputError subclasses for bad user input.

    models: already loaded models (see ``build_pipeline``); budget: the run's CPU thread budget
    (default: the config's, for ``workers`` pose workers); workers: copies of the pose stage; live:
    frames come one at a time (no cross-frame batches), as in a live source or ``PoseTracker``.
    """
    stages: list = []
    extras: dict[str, Any] = {}
    replay = config.pose.keypoints_from
    if config.output.reps and not config.exercise.name:  # cheap checks first, before any model loads
        raise InputError("--out-reps needs --exercise (which exercise to count)")
    if config.exercise.name and not replay and not config.tracker.enabled:
        raise InputError("--exercise counts reps per tracked person: it needs tracker.enabled: true")
    if replay:
        if config.pose.model or config.pose.variant:
            raise InputError("--keypoints-from replays an earlier run's poses: give no pose model with it")
        from posestream.io.keypoints import read_keypoint_frames
        from posestream.stages.replay import ReplayStage

        frames = read_keypoint_frames(replay)
        num_k = max((f.poses.keypoints.shape[1] for f in frames), default=len(COCO_KEYPOINTS))
        stages.append(ReplayStage(frames, replay, num_k))
        models = Models()
        names = COCO_KEYPOINTS if num_k == len(COCO_KEYPOINTS) else tuple(f"keypoint_{i}" for i in range(num_k))
    else:
        budget = budget or thread_budget(config, workers=workers)
        models = models if models is not None else load_models(config, budget)
        names = tuple(models.pose.keypoint_names) if models.pose is not None else COCO_KEYPOINTS
        _model_stages(config, models, budget, workers, live, stages, extras)
    backend = models.pose
    if (backend is not None or replay) and config.smooth.filter != "none":
        from posestream.stages.smooth import SmoothStage

        stages.append(SmoothStage(_build_smoother(config)))
    if config.exercise.name:
        from posestream.exercises import ExerciseAnalyzer, load_exercise
        from posestream.stages.exercise import ExerciseStage

        e = config.exercise
        try:
            analyzer = ExerciseAnalyzer(load_exercise(e.name), score_threshold=e.score_threshold,
                                        forget_after_s=e.forget_after_s, keypoint_names=names)  # fmt: skip
        except ValueError as exc:
            raise InputError(f"--exercise {e.name}: {exc}") from None
        extras["exercise"] = ExerciseStage(analyzer, config.output.reps)
        stages.append(extras["exercise"])
    random_weights = bool(getattr(backend, "random_weights", False))
    model_name = backend.name if backend is not None else (f"replay of {replay}" if replay else None)
    return Processing(stages, models, model_name, random_weights, names, extras)


def _model_stages(config: Config, models: Models, budget: ThreadBudget, workers: int, live: bool,
                  stages: list, extras: dict[str, Any]) -> None:  # fmt: skip
    """Detect, track and pose stages of the loaded ``models``, appended to ``stages``."""
    backend, detector = models.pose, models.detector
    keypoint_boxes = None
    if detector is not None:
        from posestream.stages.detect import DetectStage

        schedule = None
        if config.detector.keypoint_boxes and backend is not None and config.tracker.enabled:
            from posestream.tracking.keypoint_boxes import DetectionSchedule, KeypointBoxes

            schedule = DetectionSchedule(config.detector.detect_every)
            keypoint_boxes = KeypointBoxes(schedule, score_threshold=config.smooth.score_threshold,
                                           min_confidence=config.detector.keypoint_min_confidence)  # fmt: skip
        stages.append(DetectStage(detector, config.detector.detect_every, schedule=schedule))
        if config.tracker.enabled:
            from posestream.stages.track import TrackStage

            stages.append(TrackStage(_build_tracker(config), coast_lost_s=config.tracker.coast_lost_s))
    if backend is not None:
        from posestream.stages.pose import PoseStage

        # Each frame alone with parallel workers or keypoint-driven boxes (they need the previous
        # frame's keypoints first) and for live sources; else cross-frame batches where configured.
        per_frame = live or workers > 1 or keypoint_boxes is not None
        extras["estimator"], batcher = build_pose_estimator(backend, config, per_frame)
        if workers > 1:  # one backend each, each with its own share of the budget
            from posestream.estimation.topdown import TopDownEstimator
            from posestream.pipeline.graph import Parallel

            buckets = _batch_buckets(config, backend)
            estimators = [extras["estimator"]] + [
                TopDownEstimator(build_pose_backend(config, threads=budget[f"pose.{i}"]), batch_buckets=buckets)
                for i in range(1, workers)
            ]
            copies = iter(estimators)
            stages.append(Parallel(lambda: PoseStage(next(copies)), workers=workers, name="pose"))
        else:
            stages.append(PoseStage(extras["estimator"], keypoint_boxes=keypoint_boxes, batcher=batcher))
            extras["keypoint_boxes"] = keypoint_boxes


def build_pipeline(
    source_spec: str,
    config: Config,
    *,
    extra_stages: list | None = None,
    models: Models | None = None,
) -> Pipeline:
    """Open the source, build every configured stage, wire the graph. Raises InputError subclasses.

    ``models``: already loaded models (``load_models(config)``) to reuse across videos, e.g. one
    load per batch worker; they must come from the same ``pose``/``detector``/``tracker`` config.
    """
    src_cfg = config.source
    _check_replay_outputs(config)
    budget = thread_budget(config)  # planned before opening: the decoder gets its share
    reader = open_source(source_spec, image_fps=src_cfg.image_fps, max_frames=src_cfg.max_frames,
                         threads=budget["decode"])  # fmt: skip
    try:
        info = reader.info
        live = {"auto": info.live, "true": True, "false": False}[src_cfg.live] or src_cfg.realtime
        workers = pose_workers(config, live)
        if workers == 1 and "pose.0" in budget.threads:  # live only found on opening: one worker
            budget = thread_budget(config, workers=1)
        processing = build_processing(config, models, budget=budget, workers=workers, live=live)
        stages = list(processing.stages)
        random_weights = processing.random_weights
        extras: dict[str, Any] = dict(processing.extras)
        out = config.output
        if config.render.enabled and (out.video or extra_stages):
            r = config.render
            banner = RANDOM_BANNER if random_weights else None
            stages.append(RenderStage(keypoint_threshold=r.keypoint_threshold, draw_boxes=r.draw_boxes,
                                      hud=r.hud, banner=banner))  # fmt: skip
        if out.video:
            stages.append(VideoSink(out.video, info.size_wh, fps=info.fps, time_base=info.time_base,
                                    crf=out.crf, preset=out.preset, threads=budget["encode"]))  # fmt: skip
        if out.json or out.csv:
            stages.append(KeypointSink(out.json, out.csv, random_weights=random_weights))
        stages += extra_stages or []
        if not stages:  # nothing configured: still decode, so `run` measures the source
            stages.append(RenderStage(hud=False))
        p = config.pipeline
        policy = {"auto": Overflow.DROP_OLDEST if live else Overflow.BLOCK, "block": Overflow.BLOCK,
                  "drop_oldest": Overflow.DROP_OLDEST}[p.overflow]  # fmt: skip
        capacity = p.live_queue_size if policy is Overflow.DROP_OLDEST else p.queue_size
        source = DecodeSource(reader, live=live, realtime=src_cfg.realtime)
        graph = Graph(source, stages, capacity=capacity, overflow=policy, shutdown_timeout=p.shutdown_timeout_s)
        resources = _describe_resources(processing.models.pose, processing.models.detector, config)
        resources["threads"] = budget.describe()
        extras["budget"] = budget
        return Pipeline(graph, info, live, processing.model_name, random_weights, extras, resources,
                        processing.keypoint_names)  # fmt: skip
    except BaseException:
        reader.close()
        raise


def _check_replay_outputs(config: Config) -> None:
    """A replay must not write over the file it reads (it would be truncated before it is read)."""
    replay = config.pose.keypoints_from
    if not replay:
        return
    from pathlib import Path

    out = config.output
    for flag, path in (("--out-json", out.json), ("--out-csv", out.csv), ("--out-video", out.video),
                       ("--out-reps", out.reps)):  # fmt: skip
        if path and Path(path).resolve() == Path(replay).resolve():
            raise InputError(f"--keypoints-from {replay} is also the {flag} output: it would be overwritten "
                             "while it is read; choose another output path")


def _describe_resources(backend, detector, config: Config) -> dict[str, str]:
    out: dict[str, str] = {}
    if backend is not None:
        reason = getattr(backend, "precision_reason", "")
        precision = getattr(backend, "precision", "")
        session = getattr(backend, "session", None)
        threads = f", {session.threads} threads" if session is not None and not backend.on_gpu else ""
        out["pose"] = f"{backend.name} {precision}" + (f" ({reason})" if reason else "") + threads
    if detector is not None:
        session = getattr(detector, "session", None)
        out["detector"] = detector.name + (f" on {session.name}, {session.threads} threads" if session else "")
    return out


GPU_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def _batch_buckets(config: Config, backend) -> tuple[int, ...] | None:
    """Configured buckets, else GPU_BUCKETS on a GPU backend and no padding on CPU (see PoseConfig)."""
    if config.pose.batch_buckets:
        return config.pose.batch_buckets
    return GPU_BUCKETS if backend.on_gpu else None


def pose_workers(config: Config, live: bool) -> int:
    """Pose stage copies: ``pose.workers`` for lossless sources; 1 for live ones (fresh frames
    matter more than throughput there) and with keypoint-driven boxes (they need the previous
    frame's keypoints before the next frame is posed)."""
    if live or (config.detector.keypoint_boxes and config.detector.model):
        return 1
    return max(1, config.pose.workers)


def thread_budget(config: Config, workers: int | None = None) -> ThreadBudget:
    """The CPU thread budget of a run (see ``posestream.pipeline.budget``): decode always; pose when
    a pose model runs on the CPU (one consumer per pose worker: ``pose.0``, ``pose.1``, ...); the
    detector when a detector file is configured; encode when a video is written. Counts set in the
    config are kept; 0 means a share of ``pipeline.cores``."""
    p, pose = config.pipeline, config.pose
    requested = {"decode": p.decode_threads}
    weights = dict(BUDGET_WEIGHTS)
    workers = pose_workers(config, config.source.live == "true" or config.source.realtime) if workers is None else workers
    if (pose.model or pose.variant) and workers > 1:
        for i in range(workers):
            requested[f"pose.{i}"] = pose.threads
            weights[f"pose.{i}"] = BUDGET_WEIGHTS["pose"] / workers
    elif pose.model or pose.variant:
        requested["pose"] = pose.threads
    if config.detector.model:
        requested["detector"] = config.detector.threads
    if config.output.video:
        requested["encode"] = p.encode_threads
    return plan_threads(p.cores or usable_cores(), requested, weights)


# Spare cores go to the model stages: pose (most of the work per frame) before the detector.
BUDGET_WEIGHTS = {"pose": 3.0, "detector": 1.0}


def _build_detector(config: Config, threads: int = 1):
    from posestream.detection import FullFrameDetector, load_person_detector

    d = config.detector
    if not d.model:
        return FullFrameDetector()
    threshold = d.score_threshold
    if not config.tracker.enabled:  # no second association: low-score boxes would become people
        threshold = max(threshold, config.tracker.track_activation_threshold)
    return load_person_detector(
        d.model,
        score_threshold=threshold,
        nms_iou_threshold=d.nms_iou_threshold,
        max_people=d.max_people,
        intra_op_threads=d.threads or threads,
        providers=d.providers,
        engine=d.engine,
        precision=d.precision,
    )


def _build_tracker(config: Config):
    from posestream.tracking.bytetrack import ByteTrack

    t = config.tracker
    return ByteTrack(
        track_activation_threshold=t.track_activation_threshold,
        low_score_threshold=t.low_score_threshold,
        new_track_threshold=t.new_track_threshold,
        minimum_matching_threshold=t.minimum_matching_threshold,
        second_match_threshold=t.second_match_threshold,
        lost_track_buffer=t.lost_track_buffer,
        frame_rate=t.frame_rate,
        minimum_consecutive_frames=t.minimum_consecutive_frames,
    )


def _build_smoother(config: Config):
    from posestream.filters.smoother import PoseSmoother

    s = config.smooth
    params: dict[str, float] = {}
    if s.filter == "one_euro":
        params = {"min_cutoff": s.min_cutoff, "beta": s.beta, "d_cutoff": s.d_cutoff}
    elif s.filter == "kalman":
        params = {"process_var": s.process_var, "r0": s.measurement_var}
    return PoseSmoother(kind=s.filter, score_threshold=s.score_threshold, forget_after_s=s.forget_after_s, **params)
