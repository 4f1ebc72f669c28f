"""Assembly: a config and a source become a ready-to-run graph.

This is the one place that knows which stage follows which; the stages stay thin and the cores
(models, tracking, filters, geometry) know nothing about threads. Everything that can fail because
of user input (source, model files, output paths) fails here, before a thread starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posestream.config import Config
from posestream.errors import ConfigError, InputError
from posestream.io.outputs import OutputClaim, check_outputs, claim_outputs
from posestream.io.video import IMAGE_EXTENSIONS, SourceInfo, open_source, source_files
from posestream.io.writers import VideoWriter
from posestream.pipeline.budget import ThreadBudget, plan_threads, usable_cores
from posestream.pipeline.channel import Overflow
from posestream.pipeline.graph import Graph
from posestream.stages.decode import DecodeSource
from posestream.stages.render import RenderStage
from posestream.stages.serve import ServeSink, parse_hostport
from posestream.stages.sinks import ImageSink, KeypointSink, VideoSink
from posestream.keypoints import DEFAULT_KEYPOINT_SET, KeypointSet, keypoint_set_for
from posestream.visual.draw import strip_height

__all__ = [
    "Pipeline", "Models", "Processing", "build_pipeline", "build_processing", "build_pose_backend",
    "build_pose_estimator", "load_models", "thread_budget", "with_default_models", "RANDOM_BANNER",
    "NOTHING_TO_WRITE", "NONE",
]  # fmt: skip

log = logging.getLogger(__name__)

RANDOM_BANNER = "RANDOM WEIGHTS: keypoints are meaningless"
NOTHING_TO_WRITE = (
    "this run would write nothing: add --out-video, --out-json, --out-csv, --out-dir (pictures), --out-angles, "
    "--out-biomech or --out-reps (or --serve / --show to watch it); to time the pipeline without outputs use "
    "`posestream bench`"
)
NONE = "none"  # pose.model / detector.model: no pose model / one box = the whole frame


def _named(model: str | None) -> str | None:
    """A model setting with 'none' read as not set."""
    return model if model and model.strip().lower() != NONE else None


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
    keypoint_names: tuple[str, ...] = DEFAULT_KEYPOINT_SET.keypoints
    outputs: list[Path] = field(default_factory=list)  # files (or folders) the run writes
    live_url: str | None = None  # the live view page (output.serve), serving from now on
    sinks: list = field(default_factory=list)  # stages that write files; each can describe() them
    claim: OutputClaim | None = None  # the claimed output files; release() when not run
    live_sinks: list = field(default_factory=list)  # serve/show: release() closes them when not run

    def describe_outputs(self) -> list[str]:
        """Damage found in the source, then one line per output file: what it holds, finalised or not."""
        parts = [self.graph.source, *self.sinks]
        return [line for part in parts if hasattr(part, "describe") for line in part.describe()]

    def release(self) -> None:
        """Give back the outputs and the live server a pipeline holds (a no-op once its sinks closed them)."""
        if self.claim is not None:
            self.claim.release()
        _stop_live(self.live_sinks)


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
    if backend is not None or _named(config.detector.model):
        detector = _build_detector(config, threads=budget.threads.get("detector", 1))
    return Models(pose=backend, detector=detector)


def with_default_models(config: Config) -> tuple[Config, str | None]:
    """``config`` with the default pose model and detector where it names none.

    Returns (config, a sentence saying what was chosen) or (config unchanged, None). Naming a pose
    model (a file, a known name, or 'none') keeps the detector as configured (unset: the whole
    frame); naming a detector file or name alone is a tracking-only run; ``detector.model: none``
    alone still gets the default pose model (one person filling the frame).
    """
    from posestream.config import apply_overrides
    from posestream.models.catalog import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL

    p, d = config.pose, config.detector
    if p.model or p.variant or p.weights or _named(d.model) or p.keypoints_from:  # a replay runs no model
        return config, None
    if d.model:  # 'none': the whole frame, posed by the default model
        chosen = apply_overrides(config, {"pose.model": DEFAULT_POSE_MODEL})
        return chosen, f"no pose model named: using {DEFAULT_POSE_MODEL} on the whole frame (--detector none)"
    chosen = apply_overrides(config, {"pose.model": DEFAULT_POSE_MODEL, "detector.model": DEFAULT_DETECTOR})
    return chosen, (
        f"no model named: using {DEFAULT_POSE_MODEL} (pose) and {DEFAULT_DETECTOR} (person detector); "
        "--pose-model / --detector choose others, 'none' skips one"
    )


def build_pose_backend(config: Config, threads: int | None = None):
    """The pose backend named by ``config.pose``, or None when no pose model is configured.

    threads: inference threads (default: ``pose.threads``, or the budget's share when that is 0).
    pose.model: an ONNX file, a known name (``posestream models``: fetched and exported once into
    the cache), or 'none'. ``pose.keypoints`` (a set name) is what the model must predict: a model of
    another set is a ModelFileError naming both. ``pose.expert`` picks a ViTPose+ expert. See
    ``open_pose_backend``.
    """
    from posestream.keypoints import get_keypoint_set

    pose = config.pose
    model, precision = _named(pose.model), pose.precision
    if not (model or pose.variant or pose.weights):
        return None
    from posestream.export.on_demand import pose_model_file
    from posestream.models.catalog import is_model_name
    from posestream.runtime.factory import open_pose_backend

    try:
        expected = get_keypoint_set(pose.keypoints) if pose.keypoints else None
    except ValueError as exc:
        raise ConfigError(f"pose.keypoints: {exc}") from None
    if model and is_model_name(model):
        model = pose_model_file(model, precision)  # a known name: fetched and exported once into the cache
        precision = "fp32" if precision == "fp16" else precision  # an fp16 export runs as it is

    calibration = None
    if pose.calibration:
        from posestream.evaluation.calibration import pose_calibration

        calibration = pose_calibration(pose.calibration)
    return open_pose_backend(
        model, variant=pose.variant, weights=pose.weights, decoder=pose.decoder,
        expert=pose.expert, keypoint_set=expected,
        engine=pose.engine, providers=pose.providers, device=pose.device,
        threads=threads or pose.threads or thread_budget(config)["pose"],
        precision=precision, calibration=calibration,
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
    keypoint_names: tuple[str, ...] = DEFAULT_KEYPOINT_SET.keypoints
    extras: dict[str, Any] = field(default_factory=dict)
    keypoint_set: KeypointSet | None = None  # what the poses' K keypoints are (None: no keypoints)


def build_processing(config: Config, models: Models | None = None, *, budget: ThreadBudget | None = None,
                     workers: int = 1, live: bool = True, photos: bool = False,
                     source_fps: float | None = None, reps_target=None) -> Processing:  # fmt: skip
    """Build the analysis stages of ``config``. Raises InputError subclasses for bad user input.

    models: already loaded models (see ``build_pipeline``); budget: the run's CPU thread budget
    (default: the config's, for ``workers`` pose workers); workers: copies of the pose stage; live:
    frames come one at a time (no cross-frame batches, no backfilled tracks), as in a live source or
    ``PoseTracker``; photos: independent pictures (no tracking, no smoothing, every box scoring
    ``detector.conf`` posed); source_fps: the source's rate, the tracker's unless ``tracker.frame_rate``;
    reps_target: the claimed ``output.reps`` file (``io.outputs``; default: the path, claimed on open).
    """
    stages: list = []
    extras: dict[str, Any] = {}
    replay = config.pose.keypoints_from
    if config.output.reps and not config.exercise.name:  # cheap checks first, before any model loads
        raise InputError("--out-reps needs --exercise (which exercise to count)")
    if config.exercise.name and not replay and not config.tracker.enabled:
        raise InputError("--exercise counts reps per tracked person: it needs tracker.enabled: true")
    if config.exercise.name and photos:
        raise InputError("--exercise counts reps per tracked person: independent photos have none "
                         "(--track reads an image folder as a frame sequence)")  # fmt: skip
    if replay:
        if _named(config.pose.model) or config.pose.variant:
            raise InputError("--keypoints-from replays an earlier run's poses: give no pose model with it")
        from posestream.io.keypoints import read_keypoint_frames
        from posestream.stages.replay import ReplayStage

        from posestream.analytics.report import keypoint_set_of_jsonl

        frames = read_keypoint_frames(replay)
        kset = keypoint_set_of_jsonl(replay)  # the set the file names, else the registered one for its K
        num_k = max((f.poses.keypoints.shape[1] for f in frames), default=kset.num_keypoints)
        stages.append(ReplayStage(frames, replay, num_k))
        models = Models()
        if num_k != kset.num_keypoints:
            kset = None if num_k == 0 else keypoint_set_for(num_k)
        names = kset.keypoints if kset is not None else ()
    else:
        budget = budget or thread_budget(config, workers=workers)
        models = models if models is not None else load_models(config, budget)
        kset = models.pose.keypoint_set if models.pose is not None else None
        names = kset.keypoints if kset is not None else DEFAULT_KEYPOINT_SET.keypoints
        _model_stages(config, models, budget, workers, live, photos, source_fps, stages, extras)
    backend = models.pose
    if (backend is not None or replay) and config.smooth.filter != "none" and not photos:
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
        extras["exercise"] = ExerciseStage(analyzer, reps_target or config.output.reps)
        stages.append(extras["exercise"])
    random_weights = bool(getattr(backend, "random_weights", False))
    model_name = backend.name if backend is not None else (f"replay of {replay}" if replay else None)
    return Processing(stages, models, model_name, random_weights, names, extras, kset)


def _model_stages(config: Config, models: Models, budget: ThreadBudget, workers: int, live: bool, photos: bool,
                  source_fps: float | None, stages: list, extras: dict[str, Any]) -> None:  # fmt: skip
    """Detect, track and pose stages of the loaded ``models``, appended to ``stages``."""
    backend, detector = models.pose, models.detector
    tracking = config.tracker.enabled and not photos
    keypoint_boxes = None
    if detector is not None:
        from posestream.stages.detect import DetectStage

        schedule = None
        if config.detector.keypoint_boxes and backend is not None and tracking:
            from posestream.tracking.keypoint_boxes import DetectionSchedule, KeypointBoxes

            schedule = DetectionSchedule(config.detector.detect_every)
            keypoint_boxes = KeypointBoxes(schedule, score_threshold=config.smooth.score_threshold,
                                           min_confidence=config.detector.keypoint_min_confidence)  # fmt: skip
        # Untracked (photos, tracker.enabled false): every box left is a person, so only those
        # scoring detector.conf; tracked: all of them (ByteTrack's second association needs the low ones).
        min_score = None if tracking else config.detector.conf
        every = 1 if photos else config.detector.detect_every
        stages.append(DetectStage(detector, every, schedule=schedule, min_score=min_score))
        if tracking:
            from posestream.stages.track import TrackStage

            tracker = _build_tracker(config, source_fps)
            backfill_s = config.tracker.backfill_s if not live else 0.0  # live: no delay, no guessing
            stages.append(TrackStage(tracker, coast_lost_s=config.tracker.coast_lost_s, backfill_s=backfill_s))
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
    require_output: bool = False,
) -> Pipeline:
    """Check and claim the outputs, open the source, build every stage, wire the graph.

    Raises InputError subclasses. The preflight (``io.outputs``) comes first: a refused run has
    loaded no model and touched no file. Outputs are claimed (locked, nothing truncated) here and
    replaced only when the graph starts (the sinks open their writers in ``open()``).

    ``models``: already loaded models (``load_models(config)``) to reuse across videos, e.g. one
    load per batch worker; they must come from the same ``pose``/``detector``/``tracker`` config.
    require_output: raise InputError (NOTHING_TO_WRITE) when no sink is configured, once the source
    has been opened and before any model is loaded (the CLI asks for this; benchmarks time runs
    without sinks).
    """
    src_cfg = config.source
    _check_replay_outputs(config)
    out = config.output
    image_file = out.video if out.video and Path(out.video).suffix.lower() in IMAGE_EXTENSIONS else None
    video_file = out.video if not image_file else None
    about: dict[str, Any] = {"source": source_spec}  # live stats; the model is added once it is open
    live_sinks = _build_live_sinks(config, about)  # first: a bad flag fails fast
    # The live view's port is bound now, before any output is claimed or model loaded: a port in
    # use refuses the run while it has touched nothing.
    live_url = next((s.server.start().url for s in live_sinks if isinstance(s, ServeSink)), None)
    try:
        paths = check_outputs({"video": video_file, "picture": image_file, "JSON": out.json, "CSV": out.csv,
                               "rep events": out.reps}, source_files(source_spec))  # fmt: skip
        paths.pop("picture", None)  # written to a temporary name and renamed (write_image): checked, not claimed
        claim = claim_outputs(paths)
    except BaseException:
        _stop_live(live_sinks)
        raise
    budget = thread_budget(config)  # planned before opening: the decoder gets its share
    try:
        reader = open_source(source_spec, image_fps=src_cfg.image_fps, max_frames=src_cfg.max_frames,
                             threads=budget["decode"], strict=src_cfg.strict)  # fmt: skip
    except BaseException:
        claim.release()
        _stop_live(live_sinks)
        raise
    video_writer = None
    try:
        info = reader.info
        about["source"] = info.uri
        realtime = src_cfg.realtime
        if src_cfg.live == "true" and not info.live and not realtime:
            realtime = True  # a "live" file read as fast as it decodes would only drop frames
            log.warning("source.live is true (the webcam preset?) but %s '%s' is recorded: playing it at its "
                        "native rate as a camera would (--realtime); --set source.live=false processes every "
                        "frame", info.kind, info.uri)  # fmt: skip
        live = {"auto": info.live, "true": True, "false": False}[src_cfg.live] or realtime
        # Photos: pictures that have nothing to do with each other; nothing to track or smooth.
        photos = info.kind == "images" and not src_cfg.track_images
        tracking = config.tracker.enabled and not photos
        _check_image_outputs(info, image_file, out.image_dir)
        if require_output and not (any((out.video, out.json, out.csv, out.image_dir, out.reps)) or live_sinks
                                   or extra_stages):  # fmt: skip
            raise InputError(NOTHING_TO_WRITE)
        workers = pose_workers(config, live)
        if workers == 1 and "pose.0" in budget.threads:  # live only found on opening: one worker
            budget = thread_budget(config, workers=1)
        video_args = dict(fps=info.fps, time_base=info.time_base, crf=out.crf, preset=out.preset,
                          threads=budget.threads.get("encode", 0),
                          audio_from=info.uri if info.kind == "file" and not live else None)  # fmt: skip
        video_out = claim.take("video")
        if video_out is not None and video_out.created:
            # A new file protects nothing: its header goes out now, before models load, so a run
            # killed at any moment from here on leaves a video that opens (an existing file is
            # only replaced once the graph starts: a refused run must not touch it). The size
            # assumes no banner strip; a random-weights run's banner makes it start again below.
            w, h = info.size_wh
            size_wh = (w, h + strip_height(info.size_wh, int(config.render.enabled and config.render.hud is True)))
            video_writer = VideoWriter(video_out, size_wh, **video_args)
        processing = build_processing(config, models, budget=budget, workers=workers, live=live, photos=photos,
                                      source_fps=info.fps, reps_target=claim.take("rep events"))  # fmt: skip
        keypoint_set = processing.keypoint_set  # handed to every stage below
        if photos:
            log.info("%s: %d independent photo(s): no tracking; every box scoring >= %g is a person "
                     "(--track for a frame sequence)", info.uri, info.frame_count or 0, config.detector.conf)  # fmt: skip
        stages = list(processing.stages)
        random_weights = processing.random_weights
        extras: dict[str, Any] = dict(processing.extras)
        about.update(model=processing.model_name, random_weights=random_weights)
        r = config.render
        strip_lines = 0
        if r.enabled and (out.video or out.image_dir or live_sinks or extra_stages):
            banner = RANDOM_BANNER if random_weights else None
            render = RenderStage(keypoint_threshold=r.keypoint_threshold, draw_boxes=r.draw_boxes,
                                 hud=r.hud is True, banner=banner, exercise="exercise" in extras,
                                 keypoint_set=keypoint_set)  # fmt: skip
            strip_lines = render.strip_lines
            stages.append(render)
        sinks: list = []
        if video_out is not None:
            w, h = info.size_wh
            size_wh = (w, h + strip_height(info.size_wh, strip_lines))  # banner/HUD strip above the picture
            if video_writer is not None and video_writer.size_wh != size_wh:  # the strip is known only now
                video_writer.discard()
                video_writer = VideoWriter(video_out, size_wh, **video_args)
            sinks.append(VideoSink(video_out, size_wh, writer=video_writer, **video_args))
        if image_file or out.image_dir:
            sinks.append(ImageSink(folder=out.image_dir, file=image_file))
        if out.json or out.csv:
            with_file = info.kind == "images"
            sinks.append(KeypointSink(claim.take("JSON"), claim.take("CSV"), random_weights=random_weights,
                                      with_file=with_file, keypoint_set=keypoint_set))  # fmt: skip
        stages += sinks + live_sinks + list(extra_stages or [])
        if not stages:  # nothing configured: still decode, so `run` measures the source
            stages.append(RenderStage())
        p = config.pipeline
        policy = {"auto": Overflow.DROP_OLDEST if live else Overflow.BLOCK, "block": Overflow.BLOCK,
                  "drop_oldest": Overflow.DROP_OLDEST}[p.overflow]  # fmt: skip
        capacity = p.live_queue_size if policy is Overflow.DROP_OLDEST else p.queue_size
        source = DecodeSource(reader, live=live, realtime=realtime)
        graph = Graph(source, stages, capacity=capacity, overflow=policy, shutdown_timeout=p.shutdown_timeout_s)
        resources = _describe_resources(processing.models.pose, processing.models.detector, config)
        resources["threads"] = budget.describe()
        extras["budget"] = budget
        outputs = [Path(p) for p in (out.video, out.json, out.csv, out.image_dir, out.reps) if p]
        described = [extras["exercise"]] if "exercise" in extras else []  # its rep events file
        return Pipeline(graph, info, live, processing.model_name, random_weights, extras, resources,
                        processing.keypoint_names, outputs, live_url, sinks=described + sinks, claim=claim,
                        live_sinks=live_sinks)  # fmt: skip
    except BaseException:
        reader.close()
        if video_writer is not None:
            video_writer.discard()
        claim.release()
        _stop_live(live_sinks)
        raise


def _stop_live(live_sinks: list) -> None:
    """Stop the live server of a pipeline that will not run (its sink stops it after a run)."""
    for sink in live_sinks:
        if isinstance(sink, ServeSink):
            sink.server.stop()


def _check_replay_outputs(config: Config) -> None:
    """A replay must not write over the file it reads (it would be truncated before it is read)."""
    replay = config.pose.keypoints_from
    if not replay:
        return
    out = config.output
    for flag, path in (("--out-json", out.json), ("--out-csv", out.csv), ("--out-video", out.video),
                       ("--out-reps", out.reps)):  # fmt: skip
        if path and Path(path).resolve() == Path(replay).resolve():
            raise InputError(f"--keypoints-from {replay} is also the {flag} output: it would be overwritten "
                             "while it is read; choose another output path")


def _build_live_sinks(config: Config, about: dict[str, Any]) -> list:
    """The live views the config asks for (output.serve, output.show), HUD on unless render.hud is set.

    With ``render.hud`` true the render stage already drew it (into saved outputs too); false: none.
    ``about`` is shared with the serve sink (filled in further as the pipeline is built).
    """
    out, hud = config.output, config.render.hud is None
    sinks: list = []
    if out.show:
        from posestream.stages.show import ShowSink

        sinks.append(ShowSink(hud=hud))
    if out.serve:
        from posestream.serve.server import LiveServer

        try:
            host, port = parse_hostport(out.serve)
            server = LiveServer(host=host, port=port)
        except ValueError as exc:
            raise InputError(f"--serve (output.serve) {exc}") from None
        sinks.append(ServeSink(server, hud=hud, about=about))
    return sinks


def _check_image_outputs(info: SourceInfo, image_file: str | None, image_dir: str | None) -> None:
    """Annotated pictures need an image source, one picture per image file, and never the source's place."""
    if image_file and not (info.kind == "images" and info.frame_count == 1):
        what = f"{info.frame_count} pictures" if info.kind == "images" else f"a {info.kind}"
        raise InputError(f"--out-video {image_file}: an image file holds one annotated picture, and the source "
                         f"is {what}: use --out-dir for annotated pictures, or an .mp4 file for a video")  # fmt: skip
    if image_dir and info.kind != "images":
        raise InputError(f"--out-dir {image_dir}: annotated pictures are for image sources; "
                         f"this {info.kind} takes --out-video FILE.mp4")  # fmt: skip
    source = Path(info.uri)
    folder = source if source.is_dir() else source.parent
    if image_dir and Path(image_dir).resolve() == folder.resolve():
        raise InputError(f"--out-dir {image_dir} is the source's own folder: the annotated pictures would "
                         "replace the originals; choose another folder")  # fmt: skip
    if image_file and source.is_file() and Path(image_file).resolve() == source.resolve():
        raise InputError(f"--out-video {image_file} is the source picture itself; choose another file")


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
    if live or (config.detector.keypoint_boxes and _named(config.detector.model)):
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
    posing = _named(pose.model) or pose.variant or pose.weights
    if posing and workers > 1:
        for i in range(workers):
            requested[f"pose.{i}"] = pose.threads
            weights[f"pose.{i}"] = BUDGET_WEIGHTS["pose"] / workers
    elif posing:
        requested["pose"] = pose.threads
    if _named(config.detector.model):
        requested["detector"] = config.detector.threads
    if config.output.video:
        requested["encode"] = p.encode_threads
    return plan_threads(p.cores or usable_cores(), requested, weights)


# Spare cores go to the model stages: pose (most of the work per frame) before the detector.
BUDGET_WEIGHTS = {"pose": 3.0, "detector": 1.0}


def _build_detector(config: Config, threads: int = 1):
    from posestream.detection import FullFrameDetector, load_person_detector

    d = config.detector
    if not _named(d.model):
        return FullFrameDetector()
    from posestream.models.catalog import detector_file, is_model_name

    model = detector_file(d.model) if is_model_name(d.model) else d.model
    # Low on purpose (ByteTrack's second association); untracked runs keep only boxes scoring
    # detector.conf, a filter of the detect stage, so loaded models serve tracked and photo runs alike.
    return load_person_detector(
        model,
        score_threshold=min(d.score_threshold, d.conf),
        nms_iou_threshold=d.nms_iou_threshold,
        max_people=d.max_people,
        intra_op_threads=d.threads or threads,
        providers=d.providers,
        engine=d.engine,
        precision=d.precision,
    )


DEFAULT_FRAME_RATE = 30.0  # for sources that state no rate


def _build_tracker(config: Config, source_fps: float | None):
    from posestream.tracking.bytetrack import ByteTrack

    t = config.tracker
    frame_rate = t.frame_rate if t.frame_rate is not None else (source_fps or DEFAULT_FRAME_RATE)
    log.info("tracker: %.4g fps (%s), lost tracks kept %.2f s", frame_rate,
             "tracker.frame_rate" if t.frame_rate is not None else "the source's rate", t.lost_track_buffer / frame_rate)  # fmt: skip
    return ByteTrack(
        track_activation_threshold=t.track_activation_threshold,
        low_score_threshold=t.low_score_threshold,
        new_track_threshold=t.new_track_threshold,
        minimum_matching_threshold=t.minimum_matching_threshold,
        second_match_threshold=t.second_match_threshold,
        lost_track_buffer=t.lost_track_buffer,
        frame_rate=frame_rate,
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
