"""End-to-end timing: a real clip through the real stage graph, and the same stages run in a loop.

Three passes per (model, backend), each on a freshly built pipeline (``posestream.app.build_pipeline``
with the ``bench`` preset: no smoothing, no HUD) over the first ``frames`` frames of the clip:

1. **sequential** (the peers' loop, easy_ViTPose / rtmlib style): one thread; for each frame decode,
   detect, track, then *one model call per person* (batch 1), render, encode. It runs the very
   stage objects the graph runs, called in turn, with the estimator's batch buckets set to ``(1,)``.
   Only two things differ from the graph: no threads (nothing overlaps) and no batching.
2. **graph**: ``Graph.run()``, every stage on its own thread, lossless edges (file mode: every
   frame is processed), all people of a frame in one batched model call.
3. **stage-alone**: the graph's stages with the graph's batching, run one at a time in a loop, so
   each stage's per-frame time is measured with nothing running beside it. The slowest of them
   bounds what any schedule of these stages can reach: ``1 / slowest mean`` fps. Its video is a
   timing artefact and is deleted.

Before each pass the detector and the estimator are run once on the first frame, untimed (first
calls allocate arenas and plan kernels; a long-running app has paid that long ago). Each pass's
wall time runs from the first read to the last output finalised (the MP4 index rewrite included).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.bench.backends import BackendSpec
from posestream.bench.models import PoseModelSource

__all__ = ["E2ESettings", "run_end_to_end", "first_frame", "pose_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class E2ESettings:
    clip: Path
    detector: Path
    frames: int
    threads: int | None  # None: the run's own CPU thread budget
    video_dir: Path | None  # None: no render, no video (--no-video)
    pose_overrides: tuple[tuple[str, object], ...] = ()  # e.g. (("pose.cross_frame", "true"),)


class BackendNotGranted(Exception):
    """ONNX Runtime fell back to another execution provider than the one asked for."""


def first_frame(clip: Path) -> np.ndarray:
    from posestream.io.video import open_source

    with open_source(str(clip), max_frames=1) as reader:
        frame = reader.read()
    if frame is None:
        from posestream.errors import InputError

        raise InputError(f"--clip {clip}: no frame could be decoded")
    return frame.image


def pose_config(spec: BackendSpec, source: PoseModelSource, settings: E2ESettings, video: Path | None):
    """The ``bench`` preset with this run's detector, pose model, backend, frames and video."""
    from posestream.config import apply_overrides, load_config

    overrides: dict[str, object] = {
        "source.max_frames": settings.frames,
        "detector.model": str(settings.detector),
        # Full EP name: the detector loader takes onnxruntime names, not the config's short 'cpu'.
        "detector.providers": ["CPUExecutionProvider"],
    }
    if settings.threads:  # else the run's own CPU thread budget decides, as in `posestream run`
        overrides |= {"detector.threads": settings.threads, "pose.threads": settings.threads}
    if spec.engine in ("onnxruntime", "openvino"):
        overrides |= {"pose.model": str(source.onnx_file()), "pose.providers": list(spec.providers),
                      "pose.engine": spec.engine, "pose.precision": spec.dtype}  # fmt: skip
    else:
        if source.weights is None:
            overrides["pose.model"] = f"torch:{source.variant}"  # random weights, in PyTorch
        else:
            overrides |= {"pose.variant": source.variant, "pose.weights": str(source.weights)}
        overrides |= {"pose.device": spec.device, "pose.precision": spec.dtype}
    if video is not None:
        overrides["output.video"] = str(video)
    overrides |= dict(settings.pose_overrides)
    return apply_overrides(load_config("bench"), overrides)


def run_end_to_end(
    spec: BackendSpec, source: PoseModelSource, settings: E2ESettings, frame0: np.ndarray
) -> dict:
    """The three passes for one (model, backend); figures as a JSON-ready dict."""
    stem = f"{source.label}-{spec.name}"
    videos = settings.video_dir
    if videos is not None:
        videos.mkdir(parents=True, exist_ok=True)

    sequential = _loop_pass(spec, source, settings, frame0, videos and videos / f"{stem}-sequential.mp4",
                            batch_buckets=(1,))  # fmt: skip
    graph = _graph_pass(spec, source, settings, frame0, videos and videos / f"{stem}-graph.mp4")
    alone_video = videos and videos / f"{stem}-stagealone.mp4"
    alone = _loop_pass(spec, source, settings, frame0, alone_video, batch_buckets=None)
    if alone_video is not None:
        alone_video.unlink(missing_ok=True)

    if not graph["frames"] == sequential["frames"] == alone["frames"]:
        log.warning("%s: passes processed different frame counts (%d, %d, %d)",
                    stem, graph["frames"], sequential["frames"], alone["frames"])  # fmt: skip
    slowest = max(alone["stages"], key=lambda s: s["mean_ms"])
    ideal_fps = 1e3 / slowest["mean_ms"] if slowest["mean_ms"] > 0 else float("inf")
    return {
        "model": source.label,
        "variant": source.variant,
        "backend": spec.name,
        "granted": graph.pop("granted"),
        "random_weights": graph.pop("random_weights"),
        "thread_budget": graph.pop("thread_budget"),
        "frames": graph["frames"],
        "people_per_frame": sequential["people_per_frame"],
        "graph": graph,
        "sequential": sequential,
        "stage_alone": alone,
        "slowest_stage": {"name": slowest["name"], "mean_ms": slowest["mean_ms"], "fps": round(ideal_fps, 3)},
        "efficiency": round(graph["fps"] / ideal_fps, 4),
        "speedup_vs_sequential": round(graph["fps"] / sequential["fps"], 3),
        "speedup_batching_only": round(alone["fps"] / sequential["fps"], 3),
        "speedup_threads_only": round(graph["fps"] / alone["fps"], 3),
    }


# ------------------------------------------------------------------------------------------ passes
def _build(spec, source, settings, video):
    from posestream.app import build_pipeline

    pipeline = build_pipeline(str(settings.clip), pose_config(spec, source, settings, video))
    estimator = pipeline.extras["estimator"]
    granted = list(getattr(estimator.backend, "providers", ()) or [estimator.backend.name])
    if spec.provider is not None and granted[0] != spec.provider:
        pipeline.graph.source.close()
        for stage in pipeline.graph.stages:
            stage.close()
        raise BackendNotGranted(f"requested {spec.provider}, onnxruntime granted {', '.join(granted)}")
    return pipeline, granted


def _warm_up(pipeline, estimator, frame0: np.ndarray) -> None:
    detect = next(s for s in pipeline.graph.stages if s.name == "detect")
    boxes = detect.detector.detect(frame0).xyxy
    estimator.estimate(frame0, boxes if len(boxes) else np.array([[0, 0, 64, 128]], np.float32))


def _graph_pass(spec, source, settings, frame0, video) -> dict:
    pipeline, granted = _build(spec, source, settings, video)
    estimator = pipeline.extras["estimator"]
    _warm_up(pipeline, estimator, frame0)
    calls_before = estimator.model_calls
    result = pipeline.graph.run()
    if result.interrupted:
        raise KeyboardInterrupt
    frames = result.stages[-1].frames_out
    return {
        "fps": round(frames / result.wall_s, 3),
        "wall_s": round(result.wall_s, 3),
        "frames": frames,
        "model_calls": estimator.model_calls - calls_before,
        "batch_buckets": _buckets(estimator),
        "pose_path": _pose_path(pipeline),
        "stages": [s.as_dict() for s in result.stages],
        "video": str(video) if video is not None else None,
        "granted": granted,
        "random_weights": bool(pipeline.random_weights),
        "thread_budget": pipeline.resources.get("threads"),
    }


def _buckets(estimator) -> list[int] | None:
    buckets = getattr(estimator, "batch_buckets", None)
    return None if buckets is None else list(buckets)


def _pose_path(pipeline) -> dict:
    """How the pose stage ran: which estimator, and cross-frame batching (its limits) or not."""
    pose = next(s for s in pipeline.graph.stages if s.name == "pose")
    batcher = pose.batcher
    limits = None
    if batcher is not None:
        limits = {"max_crops": batcher.max_crops, "max_frames": batcher.max_frames}
        limits["max_wait_s"] = batcher.max_wait_s
    return {"estimator": type(pose.estimator).__name__, "cross_frame": limits}


def _loop_pass(spec, source, settings, frame0, video, *, batch_buckets: tuple[int, ...] | None) -> dict:
    """Source and stages called in turn on this thread; per-step wall times.

    batch_buckets: the peers' loop (e.g. ``(1,)``: one model call per person, OpenCV warp and numpy
    decode on the CPU, no cross-frame batching); None = the pose path the app built for the graph.
    """
    from posestream.estimation.topdown import TopDownEstimator
    from posestream.pipeline import Many

    pipeline, _ = _build(spec, source, settings, video)
    graph = pipeline.graph
    pose = next(s for s in graph.stages if s.name == "pose")
    if batch_buckets is not None:
        pose.estimator = TopDownEstimator(pose.estimator.backend, batch_buckets=batch_buckets)
        pose.batcher = None
    estimator = pose.estimator
    pose_path = _pose_path(pipeline)
    _warm_up(pipeline, estimator, frame0)
    calls_before = estimator.model_calls

    steps = [graph.source.name] + [s.name for s in graph.stages]
    times: dict[str, list[float]] = {name: [] for name in steps}
    people: list[int] = []
    frames = 0
    opened: list = []

    def run_from(first: int, items: list) -> None:  # items through stages[first:], as the graph would
        nonlocal frames
        for packet in items:
            for i in range(first, len(graph.stages)):
                stage = graph.stages[i]
                t0 = time.perf_counter()
                packet = stage.process(packet)
                times[stage.name].append(time.perf_counter() - t0)
                if isinstance(packet, Many):  # a batching stage: what it released goes on from here
                    run_from(i + 1, list(packet))
                    break
                if packet is None:
                    break
            else:
                frames += 1
                people.append(len(packet.poses) if packet.poses is not None else 0)

    t_start = time.monotonic()
    try:
        graph.source.open()
        for stage in graph.stages:
            stage.open(graph.context())
            opened.append(stage)
        while True:
            t0 = time.perf_counter()
            packet = graph.source.read()
            if packet is None:
                break
            times[graph.source.name].append(time.perf_counter() - t0)
            run_from(0, [packet])
        for i, stage in enumerate(graph.stages):  # end of stream: what batching stages still hold
            flush = getattr(stage, "flush", None)
            if flush is not None:
                t0 = time.perf_counter()
                held = list(flush() or ())
                if times[stage.name]:  # added to the stage's last call, so its mean stays per frame
                    times[stage.name][-1] += time.perf_counter() - t0
                run_from(i + 1, held)
    finally:
        for stage in reversed(opened):
            stage.close()
        graph.source.close()
    wall = time.monotonic() - t_start
    return {
        "fps": round(frames / wall, 3),
        "wall_s": round(wall, 3),
        "frames": frames,
        "model_calls": estimator.model_calls - calls_before,
        "batch_buckets": _buckets(estimator),
        "pose_path": pose_path,
        "people_per_frame": round(float(np.mean(people)), 3) if people else 0.0,
        "stages": [_step_stats(name, times[name]) for name in steps],
        "video": str(video) if video is not None and batch_buckets is not None else None,
    }


def _step_stats(name: str, seconds: list[float]) -> dict:
    s = np.asarray(seconds, dtype=np.float64) * 1e3
    if s.size == 0:
        return {"name": name, "calls": 0, "mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0}
    return {
        "name": name,
        "calls": int(s.size),
        "mean_ms": round(float(s.mean()), 3),
        "p50_ms": round(float(np.percentile(s, 50)), 3),
        "p95_ms": round(float(np.percentile(s, 95)), 3),
    }
