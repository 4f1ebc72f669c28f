"""Association between tracks and detections: IoU, score fusion, gated linear assignment.

All functions are vectorised and allocation-light; shapes are in the docstrings. Costs are
``1 - similarity`` so the assignment minimises cost and a threshold is a *maximum* cost.

Solver choice: ``scipy.optimize.linear_sum_assignment`` with gating rather than
``lap.lapjv(extend_cost=True, cost_limit=...)``. Filling every pair above the threshold with the
threshold itself and then discarding those pairs gives the same objective as ``lapjv``'s
``cost_limit`` (minimise the sum of ``cost - max_cost`` over kept pairs; an unmatched row or column
costs ``max_cost / 2``). scipy is already a core dependency, ships wheels everywhere, and is the
solver used by the reference we test against (``supervision``), which removes one source of
tie-breaking differences in the differential test. At tracking sizes (tens of people) both run in
microseconds, so speed does not decide.

Start-up: ``import scipy.optimize`` takes ~0.7 s on a 2-core machine, more than opening both
models from the compile cache. The first frame of a run never needs the solver (there are no
tracks yet), so it is not imported up front: the first assignment that needs no solve starts the
import on a background thread (``prewarm``), while that frame's pose inference runs in native code,
and the next frame's assignment finds it loaded or waits for it (Python's import lock). Started
earlier, while the models load, the import's Python work would slow the loading instead.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["box_iou", "fuse_score", "linear_assignment", "prewarm"]


def _solver():
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


_prewarm_lock = threading.Lock()
_prewarmed = False


def prewarm() -> None:
    """Start importing the solver on a daemon thread (once per process), so a later assignment
    finds it loaded; a concurrent import waits for this one, a failed one raises there again."""
    global _prewarmed
    with _prewarm_lock:
        if _prewarmed:
            return
        _prewarmed = True

    def load() -> None:
        try:
            _solver()
        except Exception:  # noqa: BLE001 - reported by the import that needs it
            pass

    threading.Thread(target=load, name="import-scipy-optimize", daemon=True).start()


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) ``xyxy`` boxes -> (N, M) float64 in [0, 1].

    Degenerate boxes (zero or negative width / height) have zero area; a pair whose union is
    zero has IoU 0, never NaN.
    """
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter_w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    inter_h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)  # (N, M)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)  # (N,)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)  # (M,)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.zeros_like(inter)
    np.divide(inter, union, out=iou, where=union > 0)
    return iou


def fuse_score(iou: np.ndarray, det_score: np.ndarray) -> np.ndarray:
    """ByteTrack's score fusion: similarity ``iou * det_score``.

    iou: (N, M) tracks x detections; det_score: (M,). Returns (N, M). A confident detection
    needs less overlap to be matched than a doubtful one with the same IoU.
    """
    return np.asarray(iou) * np.asarray(det_score, dtype=np.float64)[None, :]


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows to columns, keeping pairs with ``cost <= max_cost``.

    cost: (N, M). Returns ``matches`` (K, 2) int64 ``(row, col)`` sorted by row,
    ``unmatched_rows`` (N - K,) int64 and ``unmatched_cols`` (M - K,) int64, both ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"linear_assignment: cost must be 2-D (N, M), got shape {cost.shape}")
    n, m = cost.shape
    if n == 0 or m == 0:
        prewarm()  # the solver is needed soon (see the module docstring)
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    allowed = cost <= max_cost  # NaN compares False: never matched
    gated = np.where(allowed, cost, max_cost)  # see module docstring: same objective as lapjv cost_limit
    rows, cols = _solver()(gated)
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    row_free = np.ones(n, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(m, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
