"""IoU, score fusion and gated linear assignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from posestream.tracking.matching import box_iou, fuse_score, linear_assignment


def test_iou_known_values_and_shape():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [50 / 150, 1.0, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])


def test_iou_degenerate_and_empty_boxes_give_no_nan():
    a = np.array([[5, 5, 5, 5], [0, 0, 0, 10], [0, 0, 10, 10]], np.float64)  # point, line, square
    iou = box_iou(a, a)
    assert np.isfinite(iou).all()
    np.testing.assert_allclose(iou, np.diag([0.0, 0.0, 1.0]))
    assert box_iou(np.zeros((0, 4)), a).shape == (0, 3)
    assert box_iou(a, np.zeros((0, 4))).shape == (3, 0)


def test_fuse_score_scales_columns_by_detection_score():
    iou = np.array([[1.0, 0.5], [0.2, 0.0]])
    np.testing.assert_allclose(fuse_score(iou, np.array([0.5, 0.9])), [[0.5, 0.45], [0.1, 0.0]])


def test_assignment_respects_the_threshold():
    cost = np.array([[0.1, 0.9], [0.95, 0.85]])
    matches, rows, cols = linear_assignment(cost, max_cost=0.8)
    np.testing.assert_array_equal(matches, [[0, 0]])
    np.testing.assert_array_equal(rows, [1])
    np.testing.assert_array_equal(cols, [1])


def test_assignment_handles_empty_and_nan():
    m, r, c = linear_assignment(np.zeros((0, 3)), 0.5)
    assert m.shape == (0, 2) and len(r) == 0 and list(c) == [0, 1, 2]
    m, r, c = linear_assignment(np.array([[np.nan, 0.2]]), 0.5)
    np.testing.assert_array_equal(m, [[0, 1]])
    with pytest.raises(ValueError, match="cost"):
        linear_assignment(np.zeros(3), 0.5)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (8, 4)])
def test_lapjv_cost_limit_equals_scipy_on_the_gated_matrix(shape):
    """The module's claim: lapjv(extend_cost, cost_limit) has the optimum of scipy's assignment on
    the matrix gated at max_cost (pairs above it filled with it, then discarded), and the same pairs."""
    rng = np.random.default_rng(sum(shape))
    for _ in range(30):
        cost = rng.uniform(0, 1, shape)
        matches, _, _ = linear_assignment(cost, 0.6)
        rows, cols = linear_sum_assignment(np.minimum(cost, 0.6))
        keep = cost[rows, cols] <= 0.6
        scipy_matches = np.stack([rows[keep], cols[keep]], axis=1)
        ours_total = (cost[matches[:, 0], matches[:, 1]] - 0.6).sum()
        scipy_total = (cost[scipy_matches[:, 0], scipy_matches[:, 1]] - 0.6).sum()
        assert ours_total == pytest.approx(scipy_total, abs=1e-9)
        np.testing.assert_array_equal(matches, scipy_matches)
