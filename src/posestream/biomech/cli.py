"""`posestream biomech KEYPOINTS.jsonl --out-dir DIR`: TRC, MOT, CSV and plots per track.

Also used by `posestream run --out-biomech DIR` once the run has written its keypoints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "add_biomech_options", "run", "write_from_args", "DEFAULT_CUTOFF_HZ"]

DEFAULT_CUTOFF_HZ = 6.0  # Sports2D's and Pose2Sim's default Butterworth cutoff for human movement


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from posestream.analytics.cli import add_angle_options

    parser.add_argument("keypoints", help="JSON Lines written by `posestream run --out-json`")
    parser.add_argument("--out-dir", required=True, help="folder for track_<id>.trc/.mot/.csv/.png, biomech.json")
    add_angle_options(parser)
    add_biomech_options(parser)


def add_biomech_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--person-height", type=float, metavar="M",
                        help="height of the measured person in metres: outputs in metres (median segment "
                             "lengths over the clip, as Sports2D); default: pixels")  # fmt: skip
    parser.add_argument("--height-track", type=int, metavar="ID",
                        help="track id measured by --person-height (default: the track seen most)")  # fmt: skip
    parser.add_argument("--scale-points", metavar="X1,Y1,X2,Y2,M",
                        help="two image points (pixels) and their distance in metres: outputs in metres")
    parser.add_argument("--max-gap", type=int, default=10, metavar="N",
                        help="interpolate gaps of up to N frames, flagged in the CSV (default 10; 0 = none)")


def write_from_args(keypoints: str | Path, out_dir: str | Path, args: argparse.Namespace) -> dict:
    """Run the biomechanics report with the options of add_biomech_options / add_angle_options."""
    from posestream.biomech.report import write_biomech_report  # scipy, matplotlib: lazy
    from posestream.biomech.scaling import parse_scale_points
    from posestream.errors import InputError

    if args.max_gap < 0:
        raise InputError(f"--max-gap must be >= 0 frames, got {args.max_gap}")
    cutoff = DEFAULT_CUTOFF_HZ if args.zero_phase_hz is None else args.zero_phase_hz
    return write_biomech_report(
        keypoints, out_dir, threshold=args.angle_threshold, max_gap=args.max_gap, cutoff_hz=cutoff or None,
        person_height_m=args.person_height, height_track=args.height_track,
        scale_points=parse_scale_points(args.scale_points) if args.scale_points else None,
    )


def run(args: argparse.Namespace) -> int:
    summary = write_from_args(args.keypoints, args.out_dir, args)
    print(f"{len(summary['tracks'])} track(s) in {args.out_dir} (units: {summary['units']})")
    return 0
