"""One video of a batch, as a Ray task: the same pipeline as ``posestream run``, into a hidden folder.

This module runs inside Ray worker processes. A worker runs many tasks one after another; the
models it loaded for the first stay loaded for the next (``_MODEL_CACHE``), so a batch of a
thousand videos on two workers loads its models twice, not a thousand times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posestream.batch.inputs import VideoJob
from posestream.batch.layout import OutputLayout
from posestream.config import Config, apply_overrides
from posestream.errors import PosestreamError

__all__ = ["TaskOptions", "run_video", "video_config", "config_digest"]

log = logging.getLogger(__name__)

OUTPUT_FILES = {"video": "video.mp4", "json": "keypoints.jsonl", "csv": "keypoints.csv"}
ANGLES_DIR = "angles"
PROGRESS_EVERY_S = 0.5  # how often a task reports its frame count to the progress board

# Loaded models of this worker process, by the config they were built from (few distinct ones).
_MODEL_CACHE: OrderedDict[str, Any] = OrderedDict()
_MODEL_CACHE_SIZE = 2
_model_loads = 0  # how many times this process loaded models: the proof of "once per worker"


@dataclass(frozen=True)
class TaskOptions:
    out_dir: str
    threads: int  # CPU threads of this task: its share of the machine (num_cpus per task)
    outputs: tuple[str, ...] = ("video", "json", "csv", "angles")
    angle_threshold: float = 0.3
    zero_phase_hz: float | None = None


def video_config(config: Config, job: VideoJob, threads: int) -> Config:
    """The run's config for one video: its manifest options, then the task's CPU share as the
    pipeline's thread budget (``pipeline.cores``: shared out among pose, detector, decoder, encoder)."""
    return apply_overrides(config, {**job.options(), "pipeline.cores": threads})


def config_digest(config: Config) -> str:
    """A fingerprint of what decides a video's results (outputs and thread counts left out)."""
    neutral = apply_overrides(config, {"output.video": None, "output.json": None, "output.csv": None,
                                       "pipeline.cores": 0, "pipeline.decode_threads": 0,
                                       "pipeline.encode_threads": 0, "pose.threads": 0,
                                       "detector.threads": 0})  # fmt: skip
    return hashlib.sha1(repr(dataclasses.asdict(neutral)).encode()).hexdigest()[:12]


def _models_for(config: Config):
    global _model_loads
    from posestream.app import load_models

    key = repr((config.pose, config.detector, config.tracker, config.pipeline.cores))
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    models = load_models(config)
    _model_loads += 1
    _MODEL_CACHE[key] = models
    while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return models


def _limit_threads(threads: int) -> None:
    import cv2

    cv2.setNumThreads(threads)
    import sys

    if "torch" in sys.modules:  # a PyTorch backend: intra-op threads to the task's share
        sys.modules["torch"].set_num_threads(threads)


def run_video(job: VideoJob, config: Config, options: TaskOptions, board: Any = None) -> dict[str, Any]:
    """Run one video into ``OUT_DIR/<name>/``; return its summary record.

    A bad video (unreadable, truncated, a failing stage) is not an exception here: it comes back
    as ``status: failed`` with the one-line error ``posestream run`` would print, and nothing is
    left in OUT_DIR. A dying worker process is Ray's to retry; the next attempt starts afresh.
    """
    from posestream.cli import execute

    t0 = time.monotonic()
    pid = os.getpid()
    layout = OutputLayout(options.out_dir)
    record: dict[str, Any] = {"name": job.name, "source": str(job.source), "status": "failed", "frames": 0,
                              "fps": None, "people": None, "wall_s": None, "error": None,
                              "worker_pid": pid}  # fmt: skip
    if board is not None:
        board.started.remote(job.name, pid)
    folder = layout.begin(job.name)
    try:
        cfg = video_config(config, job, options.threads)
        files = {k: folder / v for k, v in OUTPUT_FILES.items() if k in options.outputs}
        if "angles" in options.outputs:
            files.setdefault("json", folder / OUTPUT_FILES["json"])  # the angle report reads it
        cfg = apply_overrides(cfg, {f"output.{k}": str(files.get(k)) if k in files else None
                                    for k in ("video", "json", "csv")})  # fmt: skip
        record["config"] = config_digest(cfg)
        _limit_threads(options.threads)
        from posestream.app import build_pipeline

        pipeline = build_pipeline(str(job.source), cfg, models=_models_for(cfg))
        reporter = _Reporter(board, job.name, pipeline.source.frame_count)
        code = execute(pipeline, on_frames=reporter)
        if code != 0:  # stopped early (SIGTERM / interrupt): not a result
            layout.discard(job.name)
            record.update(status="cancelled", error="stopped before the end of the video")
            return record
        result_frames = reporter.last
        graph_s = max(1e-9, time.monotonic() - reporter.t_start)
        if "angles" in options.outputs:
            from posestream.analytics.cli import write_angle_report

            write_angle_report(files["json"], folder / ANGLES_DIR, threshold=options.angle_threshold,
                               zero_phase_hz=options.zero_phase_hz)  # fmt: skip
        frames = result_frames
        if "json" in files:
            frames, record["people"] = _count_people(files["json"])
            if "json" not in options.outputs:  # written only for the angle report
                files["json"].unlink()
        wall = time.monotonic() - t0
        record.update(status="done", frames=frames, fps=round(frames / graph_s, 2), wall_s=round(wall, 3),
                      outputs=sorted(p.name for p in folder.iterdir()), model_loads=_model_loads)  # fmt: skip
        if board is not None:
            board.frames.remote(job.name, frames, frames)
        layout.commit(job.name, record)
        return record
    except (PosestreamError, OSError, ValueError) as exc:
        # Bad input and failures inside the graph end this video only; the message is the CLI's.
        layout.discard(job.name)
        record.update(error=_one_line(exc), wall_s=round(time.monotonic() - t0, 3))
        return record
    except BaseException:
        layout.discard(job.name)
        raise


class _Reporter:
    """``on_frames`` for execute(): frame counts to the progress board, at most every PROGRESS_EVERY_S."""

    def __init__(self, board: Any, name: str, total: int | None) -> None:
        self.board, self.name, self.total = board, name, total
        self.t_start = time.monotonic()
        self.last = 0
        self._t_sent = 0.0

    def __call__(self, frames: int) -> None:
        self.last = frames
        now = time.monotonic()
        if self.board is not None and now - self._t_sent >= PROGRESS_EVERY_S:
            self._t_sent = now
            self.board.frames.remote(self.name, frames, self.total)


def _count_people(jsonl: Path) -> tuple[int, int]:
    """(frames, distinct track ids) in a keypoints file written by the run."""
    frames, ids = 0, set()
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            frames += 1
            ids.update(p["track_id"] for p in json.loads(line)["people"])
    return frames, len(ids)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, PosestreamError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
