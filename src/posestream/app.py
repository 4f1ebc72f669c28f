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
from posestream.io.outputs import OutputClaim, check_outputs, claim_outputs
from posestream.io.video import SourceInfo, open_source, source_files
from posestream.io.writers import VideoWriter
from posestream.pipeline.budget import ThreadBudget, plan_threads, usable_cores
from posestream.pipeline.channel import Overflow
from posestream.pipeline.graph import Graph
from posestream.stages.decode import DecodeSource
from posestream.stages.render import RenderStage
from posestream.stages.sinks import KeypointSink, VideoSink

__all__ = ["Pipeline", "Models", "build_pipeline", "build_pose_backend", "load_models", "thread_budget",
           "RANDOM_BANNER"]

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
    sinks: list = field(default_factory=list)  # stages that write files; each can describe() them
    outputs: OutputClaim | None = None  # the claimed output files; release() when not run

    def describe_outputs(self) -> list[str]:
        """Damage found in the source, then one line per output file: what it holds, finalised or not."""
        parts = [self.graph.source, *self.sinks]
        return [line for part in parts if hasattr(part, "describe") for line in part.describe()]

    def release(self) -> None:
        """Give back the outputs a pipeline holds (a no-op once its sinks have closed them)."""
        if self.outputs is not None:
            self.outputs.release()


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
    )  # fmt: skip


def build_pipeline(
    source_spec: str,
    config: Config,
    *,
    extra_stages: list | None = None,
    models: Models | None = None,
) -> Pipeline:
    """Check and claim the outputs, open the source, build every stage, wire the graph.

    Raises InputError subclasses. The preflight (``io.outputs``) comes first: a refused run has
    loaded no model and touched no file. Outputs are claimed (locked, nothing truncated) here and
    replaced only when the graph starts (the sinks open their writers in ``open()``).

    ``models``: already loaded models (``load_models(config)``) to reuse across videos, e.g. one
    load per batch worker; they must come from the same ``pose``/``detector``/``tracker`` config.
    """
    src_cfg = config.source
    out = config.output
    paths = check_outputs({"video": out.video, "JSON": out.json, "CSV": out.csv}, source_files(source_spec))
    claim = claim_outputs(paths)
    budget = thread_budget(config)  # planned before opening: the decoder gets its share
    try:
        reader = open_source(source_spec, image_fps=src_cfg.image_fps, max_frames=src_cfg.max_frames,
                             threads=budget["decode"], strict=src_cfg.strict)  # fmt: skip
    except BaseException:
        claim.release()
        raise
    video_writer = None
    try:
        info = reader.info
        live = {"auto": info.live, "true": True, "false": False}[src_cfg.live] or src_cfg.realtime
        stages: list = []
        workers = pose_workers(config, live)
        if workers == 1 and "pose.0" in budget.threads:  # live only found on opening: one worker
            budget = thread_budget(config, workers=1)
        video_args = dict(fps=info.fps, time_base=info.time_base, crf=out.crf, preset=out.preset,
                          threads=budget.threads.get("encode", 0),
                          audio_from=info.uri if info.kind == "file" and not live else None)  # fmt: skip
        video_file = claim.take("video")
        if video_file is not None and video_file.created:
            # A new file protects nothing: its header goes out now, before models load, so a run
            # killed at any moment from here on leaves a video that opens (an existing file is
            # only replaced once the graph starts: a refused run must not touch it).
            video_writer = VideoWriter(video_file, info.size_wh, **video_args)
        models = models if models is not None else load_models(config, budget)
        backend, detector = models.pose, models.detector
        random_weights = bool(getattr(backend, "random_weights", False))
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
        extras: dict[str, Any] = {}
        if backend is not None:
            from posestream.estimation.topdown import TopDownEstimator
            from posestream.stages.pose import PoseStage

            buckets = _batch_buckets(config, backend)
            extras["estimator"] = TopDownEstimator(backend, batch_buckets=buckets)
            if workers > 1:  # one backend each, each with its own share of the budget
                from posestream.pipeline.graph import Parallel

                estimators = [extras["estimator"]] + [
                    TopDownEstimator(build_pose_backend(config, threads=budget[f"pose.{i}"]), batch_buckets=buckets)
                    for i in range(1, workers)
                ]
                copies = iter(estimators)
                stages.append(Parallel(lambda: PoseStage(next(copies)), workers=workers, name="pose"))
            else:
                stages.append(PoseStage(extras["estimator"], keypoint_boxes=keypoint_boxes))
                extras["keypoint_boxes"] = keypoint_boxes
            if config.smooth.filter != "none":
                from posestream.stages.smooth import SmoothStage

                stages.append(SmoothStage(_build_smoother(config)))
        if config.render.enabled and (out.video or extra_stages):
            r = config.render
            banner = RANDOM_BANNER if random_weights else None
            stages.append(RenderStage(keypoint_threshold=r.keypoint_threshold, draw_boxes=r.draw_boxes,
                                      hud=r.hud, banner=banner))  # fmt: skip
        sinks: list = []
        if out.video:
            sinks.append(VideoSink(video_file, info.size_wh, writer=video_writer, **video_args))
        if out.json or out.csv:
            sinks.append(KeypointSink(claim.take("JSON"), claim.take("CSV"), random_weights=random_weights))
        stages += sinks
        stages += extra_stages or []
        if not stages:  # nothing configured: still decode, so `run` measures the source
            stages.append(RenderStage(hud=False))
        p = config.pipeline
        policy = {"auto": Overflow.DROP_OLDEST if live else Overflow.BLOCK, "block": Overflow.BLOCK,
                  "drop_oldest": Overflow.DROP_OLDEST}[p.overflow]  # fmt: skip
        capacity = p.live_queue_size if policy is Overflow.DROP_OLDEST else p.queue_size
        source = DecodeSource(reader, live=live, realtime=src_cfg.realtime)
        graph = Graph(source, stages, capacity=capacity, overflow=policy, shutdown_timeout=p.shutdown_timeout_s)
        model_name = backend.name if backend is not None else None
        resources = _describe_resources(backend, detector, config)
        resources["threads"] = budget.describe()
        extras["budget"] = budget
        return Pipeline(graph, info, live, model_name, random_weights, extras, resources, sinks=sinks,
                        outputs=claim)  # fmt: skip
    except BaseException:
        reader.close()
        if video_writer is not None:
            video_writer.discard()
        claim.release()
        raise


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
