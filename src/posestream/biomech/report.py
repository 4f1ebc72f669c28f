"""Biomechanics outputs per track from a keypoints file: TRC, MOT, a CSV and a plot, plus a summary.

Steps, per track (``track_id >= 0``; untracked people cannot be followed and are skipped):

1. The track's frames, from its first to its last appearance, on the file's own frames and pts
   (a frame where the track is absent is a gap, as is a keypoint scoring below ``threshold``).
2. Scale (``scaling``): ``person_height_m`` measures the track seen in the most frames, unless
   ``height_track`` names another, and that one scale serves every track (one camera, one plane);
   or two image points a known distance apart (``scale_points``); else pixels. Units are said in every file.
3. Gaps of at most ``max_gap`` frames are interpolated in time (``gaps``) and flagged.
4. Zero-phase low-pass at ``cutoff_hz`` (Butterworth forward-backward, ``smooth_zero_phase``:
   defined in Hz, resampled on the real pts, so 30 and 240 fps footage get the same filter);
   ``cutoff_hz=None`` keeps the raw values.
5. Velocities and accelerations: derivatives against pts (``time_derivative``) of the filtered
   series, run by run (a gap longer than ``max_gap`` breaks a run instead of being bridged).
6. Joint angles (``posestream.analytics.angles`` conventions) from the gap-filled keypoints in
   image coordinates (scaling does not change an angle), signed ones unwrapped, then filtered and
   differentiated the same way.

Files in ``out_dir`` (``<id>`` = track id): ``track_<id>.trc`` (filtered marker positions, X right,
Y up, Z = 0), ``track_<id>.mot`` (angles, degrees), ``track_<id>.csv`` (every series: positions with
their ``filled`` flags, velocities, speeds, accelerations, angles and their derivatives; NaN is an
empty cell), ``track_<id>.png`` (angles, angular velocities and wrist/ankle speeds against pts) and
``biomech.json`` (scale, its method and segment medians, settings, tracks, files).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posestream.analytics.angles import (
    ANGLE_NAMES, JOINT_ANGLES, SIGNED_ANGLES, joint_angles, smooth_zero_phase, time_derivative, unwrap_deg,
)  # fmt: skip
from posestream.biomech.gaps import fill_gaps
from posestream.biomech.opensim import rate_from_pts, write_mot, write_trc
from posestream.biomech.scaling import scale_from_height, scale_from_points, to_world
from posestream.errors import InputError
from posestream.io.keypoints import KeypointFrame, read_keypoint_frames
from posestream.types import COCO_KEYPOINTS

__all__ = ["Scale", "TrackSeries", "TrackKinematics", "track_series", "choose_scale", "kinematics",
           "write_biomech_report"]  # fmt: skip

log = logging.getLogger(__name__)

PLOTTED_MARKERS = ("left_wrist", "right_wrist", "left_ankle", "right_ankle")


@dataclass(frozen=True, slots=True)
class Scale:
    """How pixels become output units: ``m_per_px`` (1.0 for pixels) and how it was found."""

    m_per_px: float = 1.0
    units: str = "px"
    method: str = "none"  # none | person_height | scale_points
    details: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrackSeries:
    """One track over its span of frames. keypoints (T, K, 2) px, NaN where absent; scores (T, K), 0 there."""

    track_id: int
    frame: np.ndarray
    pts: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, slots=True)
class TrackKinematics:
    """Everything written for one track. position, velocity, acceleration: (T, K, 3) in units, /s, /s^2;
    filled: (T, K) bool (interpolated); angles & derivatives: name -> (T,) deg, deg/s, deg/s^2."""

    track_id: int
    frame: np.ndarray
    pts: np.ndarray
    names: tuple[str, ...]
    units: str
    position: np.ndarray
    filled: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    angles: dict[str, np.ndarray]
    angular_velocity: dict[str, np.ndarray]
    angular_acceleration: dict[str, np.ndarray]


def track_series(frames: list[KeypointFrame]) -> dict[int, TrackSeries]:
    """Per track id (increasing): its series over the file's frames from first to last appearance."""
    spans: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        for tid in f.poses.track_id.tolist():
            if tid >= 0:
                spans.setdefault(tid, [i, i])[1] = i
    out = {}
    for tid in sorted(spans):
        lo, hi = spans[tid]
        span = frames[lo : hi + 1]
        k = span[0].poses.keypoints.shape[1]
        kp = np.full((len(span), k, 2), np.nan)
        sc = np.zeros((len(span), k))
        for j, f in enumerate(span):
            rows = np.flatnonzero(f.poses.track_id == tid)
            if rows.size > 1:
                raise InputError(f"keypoints file: track {tid} appears twice in frame {f.frame}")
            if rows.size:
                kp[j], sc[j] = f.poses.keypoints[rows[0]], f.poses.scores[rows[0]]
        frame = np.array([f.frame for f in span], np.int64)
        pts = np.array([f.pts for f in span], np.float64)
        out[tid] = TrackSeries(tid, frame, pts, kp, sc)
    return out


def choose_scale(tracks: dict[int, TrackSeries], *, threshold: float, person_height_m: float | None = None,
                 height_track: int | None = None, scale_points=None) -> Scale:  # fmt: skip
    """The one scale of the clip (see the module docstring, step 2)."""
    if person_height_m is not None and scale_points is not None:
        raise InputError("give either --person-height or --scale-points, not both")
    if scale_points is not None:
        p1, p2, distance = scale_points
        return Scale(scale_from_points(p1, p2, distance), "m", "scale_points",
                     {"points_px": [list(p1), list(p2)], "distance_m": distance})  # fmt: skip
    if person_height_m is None:
        return Scale()
    if not tracks:
        raise InputError("--person-height: the keypoints file has no tracked person to measure")
    if height_track is None:
        height_track = max(tracks, key=lambda t: int((tracks[t].scores >= threshold).any(axis=1).sum()))
    elif height_track not in tracks:
        raise InputError(f"--height-track {height_track}: no such track (tracks: {sorted(tracks)})")
    s = tracks[height_track]
    m_per_px, segments = scale_from_height(s.keypoints, s.scores, person_height_m, threshold)
    return Scale(m_per_px, "m", "person_height", {"height_m": person_height_m, "track_id": height_track,
                 "segment_medians_px": {k: round(v, 3) for k, v in segments.items()}})  # fmt: skip


def _filtered(series: np.ndarray, pts: np.ndarray, cutoff_hz: float | None) -> np.ndarray:
    return smooth_zero_phase(series, pts, cutoff_hz) if cutoff_hz else series


def _derivatives(series: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    velocity = time_derivative(series, pts)
    return velocity, time_derivative(velocity, pts)


def kinematics(series: TrackSeries, scale: Scale, *, threshold: float = 0.3, max_gap: int = 10,
               cutoff_hz: float | None = 6.0, names: tuple[str, ...] = COCO_KEYPOINTS) -> TrackKinematics:  # fmt: skip
    """Steps 3-6 of the module docstring for one track."""
    pts = series.pts
    kp = np.where((series.scores >= threshold)[..., None], series.keypoints, np.nan)  # (T, K, 2)
    kp, filled = fill_gaps(kp, pts, max_gap)
    filled = filled.any(axis=-1)  # (T, K)
    world = to_world(kp, scale.m_per_px)  # (T, K, 3)
    t, k = world.shape[:2]
    position, velocity, acceleration = (np.zeros_like(world) for _ in range(3))
    for j in range(k):
        for c in range(2):  # Z stays 0
            position[:, j, c] = _filtered(world[:, j, c], pts, cutoff_hz)
            velocity[:, j, c], acceleration[:, j, c] = _derivatives(position[:, j, c], pts)
    nan = ~np.isfinite(world[..., 0])
    position[nan], velocity[nan], acceleration[nan] = np.nan, np.nan, np.nan

    angles, vel, acc = {}, {}, {}
    if k >= len(COCO_KEYPOINTS):
        raw = joint_angles(kp[:, : len(COCO_KEYPOINTS)], np.isfinite(kp[:, : len(COCO_KEYPOINTS), 0]).astype(float),
                           threshold=0.5)  # valid = finite after gap filling  # fmt: skip
        for name in ANGLE_NAMES:
            a = unwrap_deg(raw[name]) if name in SIGNED_ANGLES else raw[name]
            angles[name] = _filtered(a, pts, cutoff_hz)
            vel[name], acc[name] = _derivatives(angles[name], pts)
    return TrackKinematics(series.track_id, series.frame, pts, tuple(names[:k]), scale.units, position, filled,
                           velocity, acceleration, angles, vel, acc)  # fmt: skip


def _cell(value: float) -> str | float:
    return "" if not math.isfinite(value) else float(f"{value:.7g}")


def write_track_csv(kin: TrackKinematics, path: Path) -> Path:
    u = kin.units
    head = ["frame", "pts"]
    for n in kin.names:
        head += [f"{n}_x_{u}", f"{n}_y_{u}", f"{n}_filled", f"{n}_vx_{u}_s", f"{n}_vy_{u}_s", f"{n}_speed_{u}_s",
                 f"{n}_ax_{u}_s2", f"{n}_ay_{u}_s2"]  # fmt: skip
    for n in kin.angles:
        head += [f"{n}_deg", f"{n}_deg_s", f"{n}_deg_s2"]
    speed = np.hypot(kin.velocity[..., 0], kin.velocity[..., 1])
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for i in range(len(kin.pts)):
            row: list = [int(kin.frame[i]), repr(float(kin.pts[i]))]
            for j in range(len(kin.names)):
                p, v, a = kin.position[i, j], kin.velocity[i, j], kin.acceleration[i, j]
                row += [_cell(p[0]), _cell(p[1]), int(kin.filled[i, j]), _cell(v[0]), _cell(v[1]),
                        _cell(speed[i, j]), _cell(a[0]), _cell(a[1])]  # fmt: skip
            for n in kin.angles:
                row += [_cell(kin.angles[n][i]), _cell(kin.angular_velocity[n][i]),
                        _cell(kin.angular_acceleration[n][i])]  # fmt: skip
            w.writerow(row)
    tmp.replace(path)
    return path


def plot_track(kin: TrackKinematics, path: Path, cutoff_hz: float | None) -> Path:
    """Angles, angular velocities and wrist/ankle speeds against pts (seconds), one PNG.

    Thin lines and a time axis in seconds keep 240 fps clips readable (thousands of samples);
    interpolated stretches are shaded so nobody reads filled data as measured.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, mid, bottom = fig.subplots(3, 1, sharex=True)
    lw = 0.9
    joints = sorted({name.split("_", 1)[1] for name in JOINT_ANGLES})
    for name in JOINT_ANGLES:  # one colour per joint: left solid, right dashed
        style = dict(ls="-" if name.startswith("left") else "--", lw=lw, color=f"C{joints.index(name.split('_', 1)[1])}")
        top.plot(kin.pts, kin.angles.get(name, np.full(len(kin.pts), np.nan)), label=name, **style)
        mid.plot(kin.pts, kin.angular_velocity.get(name, np.full(len(kin.pts), np.nan)), **style)
    for name in SIGNED_ANGLES:
        if name in kin.angles:
            top.plot(kin.pts, kin.angles[name], color="k", lw=lw, label=name)
    top.set_ylabel("angle (deg)")
    top.legend(ncol=5, fontsize="small")
    mid.set_ylabel("angular velocity (deg/s)")
    for name in PLOTTED_MARKERS:
        if name in kin.names:
            j = kin.names.index(name)
            bottom.plot(kin.pts, np.hypot(kin.velocity[:, j, 0], kin.velocity[:, j, 1]), lw=lw, label=name)
    bottom.set_ylabel(f"speed ({kin.units}/s)")
    bottom.set_xlabel("time (s, from the frames' pts)")
    bottom.legend(ncol=4, fontsize="small")
    any_filled = kin.filled.any(axis=1)
    for start, stop in _runs(any_filled):
        for ax in (top, mid, bottom):
            ax.axvspan(kin.pts[start], kin.pts[stop - 1], color="0.85", lw=0, zorder=0)
    rate = rate_from_pts(kin.pts)
    filt = f"zero-phase low-pass {cutoff_hz:g} Hz" if cutoff_hz else "unfiltered"
    top.set_title(f"track {kin.track_id}: {len(kin.pts)} frames at {rate:.4g} fps, {filt}, units {kin.units}"
                  + (" (grey: interpolated)" if any_filled.any() else ""))  # fmt: skip
    fig.savefig(path)
    return path


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def write_biomech_report(keypoints: str | Path, out_dir: str | Path, *, threshold: float = 0.3,
                         max_gap: int = 10, cutoff_hz: float | None = 6.0, person_height_m: float | None = None,
                         height_track: int | None = None, scale_points=None,
                         names: tuple[str, ...] = COCO_KEYPOINTS) -> dict:  # fmt: skip
    """Read a keypoints file and write every track's files (module docstring). Returns the summary."""
    frames = read_keypoint_frames(keypoints)
    if frames and all(f.poses.keypoints.shape[1] == 0 for f in frames):
        raise InputError(f"{keypoints}: boxes only (a run without a pose model): no keypoints to measure")
    tracks = track_series(frames)
    if cutoff_hz is not None:
        pts = np.array([f.pts for f in frames])
        fs = rate_from_pts(pts) if len(pts) >= 2 else math.nan
        if not (cutoff_hz > 0 and (not math.isfinite(fs) or cutoff_hz < fs / 2)):
            raise InputError(f"--zero-phase-hz {cutoff_hz:g}: must be > 0 and below half the frame rate "
                             f"({fs / 2:.4g} Hz for this {fs:.4g} fps clip)")  # fmt: skip
    scale = choose_scale(tracks, threshold=threshold, person_height_m=person_height_m,
                         height_track=height_track, scale_points=scale_points)  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"keypoints": str(keypoints), "units": scale.units, "m_per_px": scale.m_per_px,
                     "scale_method": scale.method, "scale": scale.details, "threshold": threshold,
                     "max_gap_frames": max_gap, "zero_phase_hz": cutoff_hz, "tracks": {}}  # fmt: skip
    for tid, series in tracks.items():
        kin = kinematics(series, scale, threshold=threshold, max_gap=max_gap, cutoff_hz=cutoff_hz, names=names)
        stem = out_dir / f"track_{tid}"
        files = [
            write_trc(stem.with_suffix(".trc"), kin.names, kin.frame, kin.pts, kin.position, kin.units),
            write_mot(stem.with_suffix(".mot"), kin.pts, kin.angles, name=f"track_{tid}_angles"),
            write_track_csv(kin, stem.with_suffix(".csv")),
            plot_track(kin, stem.with_suffix(".png"), cutoff_hz),
        ]
        summary["tracks"][str(tid)] = {"frames": len(kin.pts), "first_pts": float(kin.pts[0]),
                                       "last_pts": float(kin.pts[-1]), "filled_samples": int(kin.filled.sum()),
                                       "files": [p.name for p in files]}  # fmt: skip
    (out_dir / "biomech.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("biomechanics: %d track(s) in %s (%s)", len(tracks), out_dir, scale.units)
    return summary
