"""PoseSmoother: one filter per track, reset on birth, forget lost tracks, untracked pass through."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.filters.smoother import PoseSmoother
from posestream.types import Poses

FPS = 30.0
K = 17


def make_poses(track_ids: list[int], offsets: list[float], score: float = 0.9) -> Poses:
    """One person per id, every keypoint at (offset, offset)."""
    n = len(track_ids)
    keypoints = np.repeat(np.asarray(offsets, np.float32)[:, None, None], K, axis=1).repeat(2, axis=2)
    return Poses(keypoints, np.full((n, K), score, np.float32), np.zeros((n, 4), np.float32),
                 np.asarray(track_ids, np.int64))


@pytest.mark.parametrize("kind", ["one_euro", "kalman"])
def test_new_track_passes_through_then_is_smoothed(kind):
    sm = PoseSmoother(kind)
    out = sm(make_poses([7], [0.0]), 0.0)
    assert out.keypoints.dtype == np.float32 and out.keypoints.shape == (1, K, 2)
    out = sm(make_poses([7, 8], [10.0, 100.0]), 1 / FPS)
    assert 0.0 < out.keypoints[0, 0, 0] < 10.0  # track 7 smoothed toward its past
    assert out.keypoints[1, 0, 0] == 100.0  # track 8 is born: passes through
    assert sm.num_tracks == 2


def test_tracks_do_not_interfere():
    both, alone = PoseSmoother(), PoseSmoother()
    rng = np.random.default_rng(4)
    for i in range(10):
        a, b = rng.normal(0, 3, size=2)
        out_both = both(make_poses([1, 2], [a, b]), i / FPS)
        out_alone = alone(make_poses([1], [a]), i / FPS)
        np.testing.assert_array_equal(out_both.keypoints[0], out_alone.keypoints[0])


def test_lost_track_is_forgotten_and_restarts_fresh():
    sm = PoseSmoother(forget_after_s=0.5)
    sm(make_poses([3], [0.0]), 0.0)
    sm(make_poses([3], [0.0]), 0.1)
    # unseen for 0.4 s: kept, so its next sample is smoothed
    sm(make_poses([], []), 0.3)
    assert sm.num_tracks == 1
    assert sm(make_poses([3], [10.0]), 0.5).keypoints[0, 0, 0] < 10.0
    # unseen for 0.6 s > forget_after_s: dropped even on an empty frame, and restarts fresh
    sm(make_poses([], []), 1.1)
    assert sm.num_tracks == 0
    assert sm(make_poses([3], [50.0]), 1.2).keypoints[0, 0, 0] == 50.0


def test_memory_is_bounded_by_recent_tracks():
    sm = PoseSmoother(forget_after_s=0.2)
    for i in range(300):  # a new id every frame, each seen once
        sm(make_poses([i], [0.0]), i / FPS)
        assert sm.num_tracks <= 0.2 * FPS + 1


def test_untracked_people_pass_through():
    sm = PoseSmoother()
    sm(make_poses([-1, 1], [0.0, 0.0]), 0.0)
    out = sm(make_poses([-1, 1], [20.0, 20.0]), 1 / FPS)
    assert out.keypoints[0, 0, 0] == 20.0 and out.keypoints[1, 0, 0] < 20.0
    assert sm.num_tracks == 1


def test_low_score_keypoints_are_held():
    sm = PoseSmoother(score_threshold=0.5)
    sm(make_poses([1], [0.0]), 0.0)
    first = sm(make_poses([1], [10.0]), 1 / FPS).keypoints[0, 0, 0]
    held = sm(make_poses([1], [300.0], score=0.2), 2 / FPS)
    np.testing.assert_array_equal(held.keypoints[0], np.full((K, 2), first, np.float32))
    assert held.scores[0, 0] == np.float32(0.2)  # scores, boxes, ids unchanged


def test_time_going_back_resets():
    sm = PoseSmoother()
    sm(make_poses([1], [0.0]), 5.0)
    assert sm(make_poses([1], [40.0]), 1.0).keypoints[0, 0, 0] == 40.0  # fresh after a seek back


def test_none_passes_through_and_bad_arguments_raise():
    poses = make_poses([1], [3.0])
    assert PoseSmoother("none")(poses, 0.0) is poses
    with pytest.raises(ValueError, match="kind"):
        PoseSmoother("median")
    with pytest.raises(ValueError, match="min_cutof"):
        PoseSmoother("kalman", min_cutof=1.0)
    with pytest.raises(ValueError, match="beta"):
        PoseSmoother("one_euro", beta=-1.0)
    with pytest.raises(ValueError, match="forget_after_s"):
        PoseSmoother(forget_after_s=-1.0)
    with pytest.raises(ValueError, match="'none'"):
        PoseSmoother("none", beta=0.1)
