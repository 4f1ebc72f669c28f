"""Skeletons are drawn from the keypoint set: its limbs, in its limb colours."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.keypoints import get_keypoint_set
from posestream.types import Poses
from posestream.visual.draw import draw_poses


def one_person(keypoints: np.ndarray, scores: np.ndarray | None = None) -> Poses:
    k = len(keypoints)
    scores = np.ones(k, np.float32) if scores is None else scores
    return Poses(keypoints[None].astype(np.float32), scores[None].astype(np.float32),
                 np.float32([[0, 0, 799, 799]]), np.int64([3]))  # fmt: skip


@pytest.mark.parametrize("name", ["wholebody", "ap10k", "mpii"])
def test_every_limb_of_the_set_is_drawn_in_its_colour(name):
    kset = get_keypoint_set(name)
    # keypoints on a circle, so every limb is a chord of its own; one limb visible at a time
    angle = np.linspace(0, 2 * np.pi, kset.num_keypoints, endpoint=False)
    kp = np.stack([400 + 380 * np.cos(angle), 400 + 380 * np.sin(angle)], axis=1)
    for (a, b), color in zip(kset.skeleton, kset.limb_colors):
        scores = np.zeros(kset.num_keypoints)
        scores[[a, b]] = 1.0
        image = draw_poses(np.zeros((800, 800, 3), np.uint8), one_person(kp, scores), draw_boxes=False,
                           keypoint_set=kset)  # fmt: skip
        x, y = np.round((kp[a] + kp[b]) / 2).astype(int)
        assert tuple(int(v) for v in image[y, x]) == color, (kset.keypoints[a], kset.keypoints[b])
    full = draw_poses(np.zeros((800, 800, 3), np.uint8), one_person(kp), keypoint_set=kset)
    assert np.count_nonzero(full.any(axis=2)) > 0


def test_another_set_draws_another_skeleton():
    kp = np.random.default_rng(0).uniform(20, 780, size=(17, 2))
    coco = draw_poses(
        np.zeros((800, 800, 3), np.uint8), one_person(kp), keypoint_set=get_keypoint_set("coco")
    )
    ap10k = draw_poses(
        np.zeros((800, 800, 3), np.uint8), one_person(kp), keypoint_set=get_keypoint_set("ap10k")
    )
    assert not np.array_equal(coco, ap10k)
    with pytest.raises(ValueError, match="poses have 17 keypoints, keypoint set wholebody"):
        draw_poses(
            np.zeros((40, 40, 3), np.uint8), one_person(kp), keypoint_set=get_keypoint_set("wholebody")
        )
