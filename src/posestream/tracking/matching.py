"""Association between tracks and detections: IoU, score fusion, gated linear assignment.

All functions are vectorised and allocation-light; shapes are in the docstrings. Costs are
``1 - similarity`` so the assignment minimises cost and a threshold is a *maximum* cost.

Solver choice: ``lap.lapjv(extend_cost=True, cost_limit=max_cost)`` (Jonker-Volgenant, as in
the ByteTrack reference): a pair above ``max_cost`` costs more than leaving its row and column
unmatched (``max_cost / 2`` each), so it is never kept. ``scipy.optimize.linear_sum_assignment``
on the gated matrix (every pair above the threshold filled with the threshold, then discarded)
has the same optimum and was used before (``test_lapjv_cost_limit_equals_scipy_on_the_gated_matrix``
holds the two to the same matches), but ``import scipy.optimize`` takes ~0.7 s on a 2-core
machine, more than opening both models from the compile cache, and a tracked run imported it
before its first frame was out: ``lap`` imports in milliseconds. At tracking sizes (tens of
people) both solve in microseconds.
"""

from __future__ import annotations

import lap
import numpy as np

__all__ = ["box_iou", "fuse_score", "linear_assignment"]


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
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    allowed = cost <= max_cost  # NaN compares False: never matched
    above = np.where(allowed, cost, float(max_cost) + 1.0)  # finite, and never worth matching
    _, row_to_col, _ = lap.lapjv(above, extend_cost=True, cost_limit=float(max_cost))
    rows = np.flatnonzero(row_to_col >= 0)
    cols = row_to_col[rows]
    keep = allowed[rows, cols]  # a pair at exactly max_cost ties with leaving both unmatched
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    row_free = np.ones(n, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(m, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
