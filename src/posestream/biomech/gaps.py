"""Gap filling: short runs of missing samples interpolated in time, and flagged.

A gap is a run of NaN samples with a valid sample on both sides. Gaps of at most ``max_gap``
samples are filled by linear interpolation against ``pts`` (so a dropped frame or a variable frame
rate does not bend the line); longer gaps, and NaN at the start or end (nothing to interpolate
from), stay NaN. Linear rather than cubic: over a few frames the difference is below keypoint
noise, and linear never overshoots between two good samples. Sports2D fills the same way (it
offers cubic too).
"""

from __future__ import annotations

import numpy as np

from posestream.analytics.angles import finite_runs

__all__ = ["fill_gaps"]


def fill_gaps(values: np.ndarray, pts: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill each column of ``values`` (T,) or (T, ...) along time.

    Returns (filled, interpolated): filled has the shape of ``values`` (float64); interpolated is
    a bool array of that shape, True exactly where a value was filled in.
    """
    v = np.asarray(values, np.float64)
    p = np.asarray(pts, np.float64)
    if v.shape[:1] != p.shape or p.ndim != 1:
        raise ValueError(f"fill_gaps: values {v.shape} and pts {p.shape} must share their first axis")
    if max_gap < 0:
        raise ValueError(f"fill_gaps: max_gap must be >= 0 frames, got {max_gap}")
    flat = v.reshape(len(p), -1).copy()
    filled = np.zeros(flat.shape, bool)
    if max_gap > 0:
        for j in range(flat.shape[1]):
            col = flat[:, j]
            runs = finite_runs(col)
            for (_, stop), (start, _) in zip(runs, runs[1:]):  # the gap [stop, start) between two runs
                if start - stop <= max_gap:
                    lo, hi = stop - 1, start
                    col[stop:start] = np.interp(p[stop:start], p[[lo, hi]], col[[lo, hi]])
                    filled[stop:start, j] = True
    return flat.reshape(v.shape), filled.reshape(v.shape)
