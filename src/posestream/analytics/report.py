"""Per-track joint-angle reports from recorded keypoints: a CSV and one PNG plot per track.

Input is one :class:`PoseRecord` per person per frame, e.g. from :func:`read_keypoints_jsonl`, which
reads the pipeline's JSON Lines output (one line per frame)::

    {"frame": 0, "pts": 0.0, "keypoint_set": "coco", "keypoint_names": [...first line only...],
     "people": [{"track_id": 3, "box_xyxy": [x1, y1, x2, y2], "keypoints": [[x, y, score], ... K]}]}

Unknown keys are ignored. :func:`keypoint_set_of_jsonl` finds the file's ``KeypointSet`` (the named
registered set, else one built from the first line's names, else the registered set for K), which
decides which angles exist. A tracking-only run (detector, no pose model) writes ``"keypoints": []``:
such records are read with K = 0 keypoints and every angle of them is NaN (``has_keypoints`` tells
a caller to say so). Records are grouped per track id (untracked people, ``track_id == -1``,
are skipped: they are not the same person from frame to frame) and sorted by frame. Per track and
angle (see ``angles.py`` for the conventions): compute the angle per frame; unwrap the signed ones
so they are continuous; optionally smooth with the offline zero-phase filter
(``smooth_zero_phase_hz``); then the angular velocity against ``pts``, from the smoothed angles when
smoothing is on. Signed angles are reported wrapped back into (-180, 180] (a rotating athlete's
``trunk_lean`` stays readable); their velocity is that of the continuous series, so a wrap is no
spike.

CSV (:func:`write_angles_csv`): one row per frame and track, sorted by frame then track id; columns
``frame, pts, track_id``, then ``<angle>_deg`` for each angle, then ``<angle>_deg_s`` (degrees per
second) for each angle. NaN (keypoint below threshold) is written as an empty cell.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from posestream.analytics.angles import (
    angle_names, angular_velocity, joint_angle_names, joint_angles, signed_angle_names, smooth_zero_phase,
    unwrap_deg, wrap_deg,
)
from posestream.errors import InputError
from posestream.io.keypoints import read_keypoint_frames
from posestream.keypoints import DEFAULT_KEYPOINT_SET, KeypointSet, get_keypoint_set, keypoint_set_for

__all__ = ["PoseRecord", "TrackAngles", "read_keypoints_jsonl", "keypoint_set_of_jsonl", "records_by_track",
           "track_angles", "write_angles_csv", "plot_angles", "track_figure", "csv_columns", "has_keypoints",
           "NO_DATA_NOTE"]

NO_DATA_NOTE = "no keypoints above threshold {threshold:g}"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoseRecord:
    """One person in one frame. keypoints: (K, 2) pixels; scores: (K,)."""

    frame: int
    pts: float
    track_id: int
    keypoints: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, slots=True)
class TrackAngles:
    """Angle time series of one track. frame, pts: (T,); angles, velocities: name -> (T,) deg, deg/s."""

    track_id: int
    frame: np.ndarray
    pts: np.ndarray
    angles: dict[str, np.ndarray]
    velocities: dict[str, np.ndarray]


def read_keypoints_jsonl(path: str | Path) -> list[PoseRecord]:
    """Read the pipeline's keypoints JSON Lines file into one record per person per frame.

    The format and its errors (InputError naming the file and line) are those of
    :func:`posestream.io.keypoints.read_keypoint_frames`.
    """
    records: list[PoseRecord] = []
    for f in read_keypoint_frames(path):
        p = f.poses
        for i in range(len(p)):
            records.append(PoseRecord(f.frame, f.pts, int(p.track_id[i]), p.keypoints[i].astype(np.float64),
                                      p.scores[i].astype(np.float64)))  # fmt: skip
    return records


def keypoint_set_of_jsonl(path: str | Path) -> KeypointSet:
    """The keypoint set of a keypoints JSON Lines file (see the module docstring).

    The first line's ``keypoint_set`` name when it is registered and its names match
    ``keypoint_names``; else a set of those names; else the registered set for the first person's K;
    else COCO (an empty file). InputError for an unreadable first line.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        head = json.loads(first) if first else {}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read keypoints file {path}: {exc}") from exc
    names = head.get("keypoint_names")
    try:
        named = get_keypoint_set(head["keypoint_set"]) if "keypoint_set" in head else None
    except ValueError:
        named = None  # a custom set: its names are on the first line
    if named is not None and (names is None or tuple(names) == named.keypoints):
        return named
    if names:
        return keypoint_set_for(names=names)
    people = [p for p in head.get("people", []) if p.get("keypoints")]
    return keypoint_set_for(len(people[0]["keypoints"])) if people else DEFAULT_KEYPOINT_SET


def records_by_track(records: Iterable[PoseRecord]) -> dict[int, list[PoseRecord]]:
    """Records grouped per track id (increasing), each sorted by frame; untracked (-1) are skipped.

    Raises ValueError when a track appears twice in one frame.
    """
    by_track: dict[int, list[PoseRecord]] = defaultdict(list)
    untracked = 0
    for rec in records:
        if rec.track_id < 0:
            untracked += 1
        else:
            by_track[rec.track_id].append(rec)
    if untracked:
        logger.info("skipped %d untracked person records (track_id -1)", untracked)
    out = {}
    for tid in sorted(by_track):
        recs = sorted(by_track[tid], key=lambda r: r.frame)
        dup = [a.frame for a, b in zip(recs, recs[1:]) if a.frame == b.frame]
        if dup:
            raise ValueError(f"track {tid} appears twice in frame {dup[0]}")
        out[tid] = recs
    return out


def has_keypoints(records: Iterable[PoseRecord]) -> bool:
    """Whether any record carries keypoints (False for a tracking-only run's file)."""
    return any(len(r.scores) for r in records)


def track_angles(records: Iterable[PoseRecord], *, threshold: float = 0.3,
                 smooth_cutoff_hz: float | None = None,
                 keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> dict[int, TrackAngles]:  # fmt: skip
    """Angle and angular-velocity series per track id (see the module docstring for the steps).

    Args:
        records: one per person per frame; ``track_id == -1`` are skipped.
        threshold: angles using a keypoint scoring below this are NaN.
        smooth_cutoff_hz: None = raw angles; else the zero-phase low-pass cutoff in Hz (offline only).
        keypoint_set: the records' keypoint set; its angle definitions are computed (none: empty).

    Returns:
        track id -> TrackAngles, in increasing track id.
    """
    out: dict[int, TrackAngles] = {}
    for tid, recs in records_by_track(records).items():
        frame = np.array([r.frame for r in recs], np.int64)
        pts = np.array([r.pts for r in recs], np.float64)
        names = angle_names(keypoint_set)
        if any(len(r.scores) == 0 for r in recs):  # boxes only (tracking-only run): nothing to measure
            angles = {name: np.full(len(recs), np.nan) for name in names}
        else:
            angles = joint_angles(np.stack([r.keypoints for r in recs]), np.stack([r.scores for r in recs]),
                                  threshold, keypoint_set)  # fmt: skip
        velocities = {}
        signed_names = signed_angle_names(keypoint_set)
        for name in names:
            signed = name in signed_names
            series = unwrap_deg(angles[name]) if signed else angles[name]
            if smooth_cutoff_hz is not None:
                series = smooth_zero_phase(series, pts, smooth_cutoff_hz)
            velocities[name] = angular_velocity(series, pts)  # of the continuous series: no wrap spikes
            angles[name] = wrap_deg(series) if signed else series
        out[tid] = TrackAngles(tid, frame, pts, angles, velocities)
    return out


def csv_columns(keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> list[str]:
    """Header of the angles CSV for the set's angles."""
    names = angle_names(keypoint_set)
    return ["frame", "pts", "track_id"] + [f"{n}_deg" for n in names] + [f"{n}_deg_s" for n in names]


def write_angles_csv(records: Iterable[PoseRecord], path: str | Path, *, threshold: float = 0.3,
                     smooth_cutoff_hz: float | None = None,
                     keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> int:  # fmt: skip
    """Write the per-frame, per-track angles CSV (columns: :func:`csv_columns`). Returns the row count."""
    tracks = track_angles(records, threshold=threshold, smooth_cutoff_hz=smooth_cutoff_hz,
                          keypoint_set=keypoint_set)  # fmt: skip
    names = angle_names(keypoint_set)
    rows = []
    for ta in tracks.values():
        for i in range(ta.frame.size):
            rows.append([int(ta.frame[i]), float(ta.pts[i]), ta.track_id]
                        + [_cell(ta.angles[n][i]) for n in names]
                        + [_cell(ta.velocities[n][i]) for n in names])
    rows.sort(key=lambda r: (r[0], r[2]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_columns(keypoint_set))
        writer.writerows(rows)
    logger.info("wrote %d rows for %d tracks to %s", len(rows), len(tracks), path)
    return len(rows)


def plot_angles(records: Iterable[PoseRecord], out_dir: str | Path, *, threshold: float = 0.3,
                smooth_cutoff_hz: float | None = None,
                keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> list[Path]:  # fmt: skip
    """One PNG per track, ``angles_track_<id>.png`` (see :func:`track_figure`).

    Returns the written paths in increasing track id; none for a set without angle definitions.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not keypoint_set.angles:
        logger.info("keypoint set %r defines no angles: no plots", keypoint_set.name)
        return paths
    tracks = track_angles(records, threshold=threshold, smooth_cutoff_hz=smooth_cutoff_hz, keypoint_set=keypoint_set)
    for tid, ta in tracks.items():
        fig = track_figure(ta, threshold=threshold, smooth_cutoff_hz=smooth_cutoff_hz, keypoint_set=keypoint_set)
        path = out_dir / f"angles_track_{tid}.png"
        fig.savefig(path)
        paths.append(path)
    logger.info("wrote %d angle plots to %s", len(paths), out_dir)
    return paths


def track_figure(ta: TrackAngles, *, threshold: float = 0.3, smooth_cutoff_hz: float | None = None,
                 keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET):  # fmt: skip
    """The figure of one track over pts: joint angles, their angular velocities, signed angles (trunk lean).

    A panel with nothing to draw (every keypoint it needs below ``threshold``, or no keypoints at
    all) says so in its middle instead of showing blank axes. Trunk lean is drawn wrapped into
    (-180, 180], broken where it wraps. Uses matplotlib's object API with the Agg canvas (no
    pyplot, no global backend switch), so it is safe off the main thread.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, middle, bottom = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 1.5))
    note = NO_DATA_NOTE.format(threshold=threshold)
    joints, signed = joint_angle_names(keypoint_set), signed_angle_names(keypoint_set)
    for name in joints:
        style = "-" if name.startswith("left") else "--"
        top.plot(ta.pts, ta.angles[name], label=name, linestyle=style)
        middle.plot(ta.pts, ta.velocities[name], label=name, linestyle=style)
    top.set_ylabel("interior angle (deg)")
    top.set_ylim(-5, 185)
    middle.set_ylabel("angular velocity (deg/s)")
    middle.axhline(0.0, color="0.7", linewidth=0.8)
    smoothed = f", zero-phase smoothed at {smooth_cutoff_hz:g} Hz" if smooth_cutoff_hz else ""
    top.set_title(f"track {ta.track_id}{smoothed}")
    for name in signed:
        lean = ta.angles[name].copy()
        jumps = np.flatnonzero(np.abs(np.diff(lean)) > 180.0)  # a wrap: do not draw a vertical line
        bottom.plot(np.insert(ta.pts, jumps + 1, np.nan), np.insert(lean, jumps + 1, np.nan), label=name, color="k")
    bottom.set_ylabel("trunk lean (deg, + = toward +x)")
    bottom.set_ylim(-185, 185)
    bottom.set_xlabel("pts (s)")
    for ax, names in ((top, joints), (middle, joints), (bottom, signed)):
        series = ta.velocities if ax is middle else ta.angles
        if any(np.isfinite(series[n]).any() for n in names):
            if ax is not bottom:
                ax.legend(ncol=4, fontsize="small")
        else:
            ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="0.4")
    return fig


def _cell(value: float) -> str | float:
    return "" if not np.isfinite(value) else round(float(value), 4)
