"""`posestream angles KEYPOINTS.jsonl --out-dir DIR`: joint-angle CSV and one PNG plot per track.

Also used by `posestream run --out-angles DIR` once the run has written its keypoints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from posestream.errors import InputError

__all__ = ["add_arguments", "run", "write_angle_report"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keypoints", help="JSON Lines written by `posestream run --out-json`")
    parser.add_argument("--out-dir", required=True, help="folder for angles.csv and angles_track_<id>.png")
    add_angle_options(parser)


def add_angle_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--angle-threshold", type=float, default=0.3,
                        help="keypoint score below which an angle is NaN (default 0.3)")  # fmt: skip
    parser.add_argument("--zero-phase-hz", type=float, default=None,
                        help="offline forward-backward Butterworth low-pass at this cutoff in Hz (recorded "
                             "footage only: it uses future frames, which a live filter cannot); angles: off by "
                             "default; biomech: 6 Hz by default, 0 = off")  # fmt: skip


def write_angle_report(keypoints: str | Path, out_dir: str | Path, *, threshold: float = 0.3,
                       zero_phase_hz: float | None = None) -> tuple[Path, list[Path], int]:  # fmt: skip
    """Read the keypoints file; write ``angles.csv`` and the plots. Returns (csv, plots, rows)."""
    from posestream.analytics.report import (  # scipy: lazy
        has_keypoints, keypoint_set_of_jsonl, plot_angles, read_keypoints_jsonl, write_angles_csv,
    )

    if zero_phase_hz is not None and zero_phase_hz <= 0:
        raise InputError(f"--zero-phase-hz must be > 0 Hz, got {zero_phase_hz}")
    records = read_keypoints_jsonl(keypoints)
    kset = keypoint_set_of_jsonl(keypoints)
    if records and not has_keypoints(records):
        print(f"posestream: note: {keypoints} holds boxes and track ids only (a tracking-only run, no pose "
              "model): the angle columns stay empty; run with a pose model for joint angles", file=sys.stderr)
    elif not any(r.track_id >= 0 for r in records):
        print(f"posestream: note: {keypoints} has no tracked person (track_id >= 0): no angles to report",
              file=sys.stderr)  # fmt: skip
    out_dir = Path(out_dir)
    csv_path = out_dir / "angles.csv"
    rows = write_angles_csv(records, csv_path, threshold=threshold, smooth_cutoff_hz=zero_phase_hz,
                            keypoint_set=kset)  # fmt: skip
    plots = plot_angles(records, out_dir, threshold=threshold, smooth_cutoff_hz=zero_phase_hz, keypoint_set=kset)
    return csv_path, plots, rows


def run(args: argparse.Namespace) -> int:
    csv_path, plots, rows = write_angle_report(
        args.keypoints, args.out_dir, threshold=args.angle_threshold, zero_phase_hz=args.zero_phase_hz
    )
    print(f"{csv_path} ({rows} rows) and {len(plots)} plot(s) in {args.out_dir}")
    return 0
