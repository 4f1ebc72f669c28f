"""`posestream batch INPUTS... --out-dir DIR`: the `run` pipeline over many videos, on Ray."""

from __future__ import annotations

import argparse
import os
import sys

from posestream.errors import InputError

__all__ = ["add_arguments", "run"]

OUTPUT_KINDS = ("video", "json", "csv", "angles")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from posestream.analytics.cli import add_angle_options
    from posestream.cli import add_pipeline_options

    parser.add_argument("inputs", nargs="+",
                        help="video files, folders (the videos inside), globs ('clips/**/*.mp4') or a "
                             "manifest (.csv / .jsonl: path, name, per-video config keys)")  # fmt: skip
    parser.add_argument("--out-dir", required=True, help="one folder per video: DIR/<name>/ (+ summary.json/csv)")
    add_pipeline_options(parser)
    parser.add_argument("--outputs", default=",".join(OUTPUT_KINDS),
                        help=f"what to write per video, comma-separated from {','.join(OUTPUT_KINDS)} "
                             "(default: all)")  # fmt: skip
    parser.add_argument("--address", help="join a running Ray cluster (host:port or ray://host:10001); "
                                          "default: start Ray on this machine")  # fmt: skip
    parser.add_argument("--workers", type=int, help="local Ray: videos at once (default: CPUs / --cpus-per-task)")
    parser.add_argument("--cpus-per-task", type=float, default=1.0,
                        help="CPUs each video's task declares; its threads are fitted to it (default 1)")  # fmt: skip
    parser.add_argument("--gpus-per-task", type=float, default=0.0,
                        help="GPUs each task declares, fractional to share one (0.25 = 4 per GPU)")  # fmt: skip
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a video whose worker died (default 2)")
    parser.add_argument("--force", action="store_true", help="redo videos that are already finished")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_angle_options(parser)


def run(args: argparse.Namespace) -> int:
    from posestream.batch.driver import BatchOptions, run_batch
    from posestream.batch.inputs import collect_jobs
    from posestream.cli import config_from_args

    outputs = tuple(k.strip() for k in args.outputs.split(",") if k.strip())
    unknown = [k for k in outputs if k not in OUTPUT_KINDS]
    if unknown or not outputs:
        raise InputError(f"--outputs '{args.outputs}': expected a comma-separated subset of {','.join(OUTPUT_KINDS)}")
    if args.cpus_per_task <= 0 or args.gpus_per_task < 0:
        raise InputError("--cpus-per-task must be > 0 and --gpus-per-task >= 0")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.address:
        raise InputError("--workers sizes a local Ray; with --address the cluster's resources decide")
    if args.retries < 0:
        raise InputError(f"--retries must be >= 0, got {args.retries}")
    if args.zero_phase_hz is not None and args.zero_phase_hz <= 0:
        raise InputError(f"--zero-phase-hz must be > 0 Hz, got {args.zero_phase_hz}")
    config = _absolute_model_paths(config_from_args(args))
    jobs = collect_jobs(args.inputs)
    progress = not args.no_progress and (sys.stderr.isatty() or os.environ.get("POSESTREAM_PROGRESS") == "1")
    options = BatchOptions(
        out_dir=args.out_dir,
        address=args.address,
        workers=args.workers,
        cpus_per_task=args.cpus_per_task,
        gpus_per_task=args.gpus_per_task,
        retries=args.retries,
        force=args.force,
        outputs=outputs,
        progress=progress,
        angle_threshold=args.angle_threshold,
        zero_phase_hz=args.zero_phase_hz,
    )
    return run_batch(jobs, config, options)


def _absolute_model_paths(config):
    """Model files named relative to here, made absolute: Ray workers may run in another folder."""
    from pathlib import Path

    from posestream.config import apply_overrides

    paths = {"detector.model": config.detector.model, "pose.model": config.pose.model,
             "pose.weights": config.pose.weights}  # fmt: skip
    fixed = {key: str(Path(value).absolute()) for key, value in paths.items() if value and Path(value).is_file()}
    return apply_overrides(config, fixed) if fixed else config
