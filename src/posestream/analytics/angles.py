"""Joint angles of a keypoint set, their unwrapping, angular velocity and offline smoothing.

Which angles exist is the ``KeypointSet``'s business (``KeypointSet.angles``: joint and segment
angle definitions over its keypoint names); a set without angle definitions (the animal sets) has
none. Conventions (all angles in degrees, image coordinates: x to the right, y *down*):

* Joint angles (``JointAngle``) are *interior* angles at the middle keypoint of three, in [0, 180]:
  180 = the three points in a straight line (straight leg, straight arm), 90 = a right angle, smaller
  = more flexed. They are unsigned, so they do not depend on which way the person faces, whether the
  image is mirrored, or whether the person is seen from the front or the back. The human body sets
  define (see ``posestream.keypoints.body.body_angles``):

  - ``left_knee``, ``right_knee``: hip - knee - ankle (vertex in the middle), same side
  - ``left_hip``, ``right_hip``: shoulder - hip - knee
  - ``left_elbow``, ``right_elbow``: shoulder - elbow - wrist
  - ``left_shoulder``, ``right_shoulder``: hip - shoulder - elbow

* Segment angles (``SegmentAngle``) are signed. ``trunk_lean`` is the signed angle of the segment from the hip midpoint to the shoulder midpoint,
  measured from the image's upward vertical (-y): 0 = upright, positive = shoulders toward the
  image's +x (leaning to the right of the picture), negative = toward -x, +-180 = upside down; range
  (-180, 180]. The sign is defined in *image* terms, whatever the person's facing: a mirrored image
  of the same pose gives the opposite sign and the same magnitude. Computed as
  ``atan2(dx, -dy)`` with ``(dx, dy) = shoulder_mid - hip_mid``.

* An angle is NaN in a frame when any keypoint it uses (3 for joints, 4 for trunk lean) has a score
  below ``threshold``, or when a segment has zero length. Segment angles are the *signed* ones
  (:func:`signed_angle_names`): unwrap them before differentiating.

Time series. A signed angle such as ``trunk_lean`` jumps by 360 when it crosses +-180 (a gymnast's
rotation); :func:`unwrap_deg` removes those jumps, NaN-aware, so derivatives and filters see a
continuous series, and :func:`wrap_deg` brings the result back into (-180, 180] for reporting.
:func:`angular_velocity` differentiates against the real ``pts`` (dropped frames, variable frame
rate). :func:`smooth_zero_phase` is an
*offline* forward-backward Butterworth filter (``scipy.signal.filtfilt``): zero phase means no lag,
but each output sample depends on future samples, so a causal live filter (``posestream.filters``)
cannot do this; use it on recorded footage only.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.signal import butter, filtfilt

from posestream.keypoints import DEFAULT_KEYPOINT_SET, JointAngle, KeypointSet, SegmentAngle

__all__ = [
    "angle_names", "joint_angle_names", "signed_angle_names", "JOINT_ANGLES", "ANGLE_NAMES", "SIGNED_ANGLES",
    "interior_angle", "segment_angle", "joint_angles", "unwrap_deg", "wrap_deg", "angular_velocity",
    "time_derivative", "smooth_zero_phase", "finite_runs",
]

logger = logging.getLogger(__name__)


def angle_names(keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> tuple[str, ...]:
    """Every angle the set defines, in its order (joint and segment angles)."""
    return keypoint_set.angle_names


def joint_angle_names(keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> tuple[str, ...]:
    """The unsigned interior angles of the set, [0, 180]."""
    return tuple(a.name for a in keypoint_set.angles if isinstance(a, JointAngle))


def signed_angle_names(keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET) -> tuple[str, ...]:
    """The signed segment angles of the set, (-180, 180] (unwrap before differentiating)."""
    return tuple(a.name for a in keypoint_set.angles if isinstance(a, SegmentAngle))


# The default (COCO) set's angles, for the features defined on COCO keypoints only (exercises,
# biomechanics); everything that follows the model's set calls the functions above.
JOINT_ANGLES: tuple[str, ...] = joint_angle_names()
SIGNED_ANGLES: tuple[str, ...] = signed_angle_names()
ANGLE_NAMES: tuple[str, ...] = angle_names()


def interior_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle ABC at vertex ``b`` in degrees, [0, 180]; NaN where BA or BC has zero length.

    a, b, c: (..., 2) points. Returns (...,). Uses atan2(|cross|, dot), accurate near 0 and 180.
    """
    u, v = np.asarray(a, np.float64) - b, np.asarray(c, np.float64) - b
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    dot = np.sum(u * v, axis=-1)
    out = np.degrees(np.arctan2(np.abs(cross), dot))
    degenerate = (np.hypot(u[..., 0], u[..., 1]) == 0) | (np.hypot(v[..., 0], v[..., 1]) == 0)
    return np.where(degenerate, np.nan, out)


def segment_angle(p_from: np.ndarray, p_to: np.ndarray) -> np.ndarray:
    """Signed angle (degrees, (-180, 180]) of the segment ``p_from -> p_to`` from the image's upward vertical.

    p_from, p_to: (..., 2) image points (y down). 0 = pointing up, +90 = pointing to +x, -90 = to -x,
    180 = pointing down. Returns (...,); NaN for a zero-length segment.
    """
    d = np.asarray(p_to, np.float64) - p_from
    out = np.degrees(np.arctan2(d[..., 0], -d[..., 1]))
    out = np.where(out == -180.0, 180.0, out)  # keep the range half-open: (-180, 180]
    return np.where((d[..., 0] == 0) & (d[..., 1] == 0), np.nan, out)


def joint_angles(
    keypoints: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.3,
    keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET,
) -> dict[str, np.ndarray]:
    """Every angle ``keypoint_set`` defines, for every frame.

    Args:
        keypoints: (T, K, 2) keypoints (x, y) in pixels, K of the set; any leading shape works.
        scores: (T, K) keypoint scores.
        threshold: an angle is NaN where any of its keypoints scores below this.
        keypoint_set: whose angle definitions to compute (default COCO-17); a set without angles
            gives an empty dict.

    Returns:
        name -> (T,) float64 degrees (see the module docstring for ranges and signs).
    """
    kp = np.asarray(keypoints, np.float64)
    sc = np.asarray(scores, np.float64)
    k = keypoint_set.num_keypoints
    if kp.ndim < 2 or kp.shape[-2:] != (k, 2):
        raise ValueError(
            f"joint_angles: keypoints must be (T, {k}, 2) for keypoint set {keypoint_set.name!r}, got {kp.shape}"
        )
    if sc.shape != kp.shape[:-1]:
        raise ValueError(f"joint_angles: scores must be {kp.shape[:-1]} to match keypoints, got {sc.shape}")
    if not math.isfinite(threshold):
        raise ValueError(f"joint_angles: threshold must be a finite number, got {threshold}")
    ok = sc >= threshold  # (T, K)
    index = keypoint_set.index

    out: dict[str, np.ndarray] = {}
    for angle in keypoint_set.angles:
        if isinstance(angle, JointAngle):
            ia, ib, ic = (index(n) for n in angle.points)
            value = interior_angle(kp[..., ia, :], kp[..., ib, :], kp[..., ic, :])
            used = [ia, ib, ic]
        else:
            start = [index(n) for n in angle.start]
            end = [index(n) for n in angle.end]
            value = segment_angle(kp[..., start, :].mean(axis=-2), kp[..., end, :].mean(axis=-2))
            used = start + end
        out[angle.name] = np.where(ok[..., used].all(axis=-1), value, np.nan)
    return out


def finite_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index pairs of the maximal runs of finite values of a (T,) array."""
    finite = np.concatenate([[False], np.isfinite(values), [False]])
    edges = np.flatnonzero(np.diff(finite.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def unwrap_deg(angles: np.ndarray, period: float = 360.0) -> np.ndarray:
    """Remove jumps of ``period`` degrees from a (T,) series of angles; NaN stays NaN.

    ``np.unwrap`` alone turns everything after the first NaN into NaN. Here the finite samples are
    unwrapped as one sequence, so a run after a NaN gap continues from the run before it: across a
    gap the angle is assumed to have changed by less than ``period / 2``. The first finite sample
    keeps its value.
    """
    a = np.asarray(angles, np.float64)
    if a.ndim != 1:
        raise ValueError(f"unwrap_deg: angles must be (T,), got {a.shape}")
    out = np.full_like(a, np.nan)
    finite = np.isfinite(a)
    out[finite] = np.unwrap(a[finite], period=period)
    return out


def wrap_deg(angles: np.ndarray) -> np.ndarray:
    """Angles in degrees mapped into (-180, 180] (any shape); NaN stays NaN."""
    a = np.asarray(angles, np.float64)
    out = 180.0 - np.mod(180.0 - a, 360.0)  # 180 -> 180, -180 -> 180, 190 -> -170
    return out


def _check_series(name: str, values: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v, p = np.asarray(values, np.float64), np.asarray(pts, np.float64)
    if v.ndim != 1 or p.shape != v.shape:
        raise ValueError(f"{name}: angles and pts must both be (T,), got {v.shape} and {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(np.diff(p) <= 0):
        raise ValueError(f"{name}: pts must be finite and strictly increasing")
    return v, p


def angular_velocity(angles: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """d(angle)/dt in degrees per second, from (T,) angles at (T,) times ``pts`` (seconds).

    Pass unwrapped angles (:func:`unwrap_deg`) for signed ones, or a wrap shows as a huge speed.
    See :func:`time_derivative` for the method.
    """
    return time_derivative(angles, pts, name="angular_velocity")


def time_derivative(values: np.ndarray, pts: np.ndarray, *, name: str = "time_derivative") -> np.ndarray:
    """d(values)/dt per second, from a (T,) series (any unit: degrees, metres, pixels) at (T,) ``pts``.

    ``np.gradient`` with the real times (second-order central differences on uneven spacing,
    one-sided at the ends) on each run of finite values separately; a run of one sample gives NaN.
    Apply twice for an acceleration.
    """
    a, p = _check_series(name, values, pts)
    out = np.full_like(a, np.nan)
    for start, stop in finite_runs(a):
        if stop - start >= 2:
            out[start:stop] = np.gradient(a[start:stop], p[start:stop])
    return out


def smooth_zero_phase(angles: np.ndarray, pts: np.ndarray, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Offline zero-phase low-pass of a (T,) angle series: Butterworth forward and backward (filtfilt).

    The sample rate is ``1 / median(diff(pts))``. Each run of finite samples is filtered on its own:
    resampled linearly onto a uniform grid at that rate (dropped frames, variable frame rate),
    filtered, and read back at the original ``pts``. Runs too short for filtfilt's padding (grid
    length <= ``3 * (order + 1)``) are left as they are; NaN stays NaN. Because the filter runs twice,
    the magnitude response is squared: ``cutoff_hz`` is the -6 dB point and the effective order doubles.
    Non-causal: needs the whole recording, not for live use. Pass unwrapped angles for signed ones.

    Returns (T,) float64 degrees.
    """
    a, p = _check_series("smooth_zero_phase", angles, pts)
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"smooth_zero_phase: order must be an int >= 1, got {order!r}")
    out = a.copy()
    if a.size < 2:
        return out
    fs = 1.0 / float(np.median(np.diff(p)))
    if not (math.isfinite(cutoff_hz) and 0 < cutoff_hz < fs / 2):
        raise ValueError(f"smooth_zero_phase: cutoff_hz must be in (0, {fs / 2:g}) Hz (half the {fs:g} Hz "
                         f"sample rate), got {cutoff_hz}")
    b, a_coef = butter(order, cutoff_hz, btype="low", fs=fs)
    padlen = 3 * max(len(a_coef), len(b))  # filtfilt's default
    for start, stop in finite_runs(a):
        p_run, v_run = p[start:stop], a[start:stop]
        n_grid = int(round((p_run[-1] - p_run[0]) * fs)) + 1
        if n_grid <= padlen or stop - start < 2:
            logger.debug("smooth_zero_phase: run of %d samples too short to filter, left as is", stop - start)
            continue
        grid = np.linspace(p_run[0], p_run[-1], n_grid)
        smoothed = filtfilt(b, a_coef, np.interp(grid, p_run, v_run))
        out[start:stop] = np.interp(p_run, grid, smoothed)
    return out
