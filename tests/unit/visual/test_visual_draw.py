"""Skeletons drawn from the keypoint set (its limbs, in its limb colours); labels that never overlap;
text in a strip above the picture (never over a person)."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.keypoints import get_keypoint_set
from posestream.stages.render import RenderStage
from posestream.types import Frame, Packet, Poses
from posestream.visual.draw import add_strip, draw_poses, place_labels, strip_height


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


def _overlaps(rects):
    hits = []
    for i, (ax, ay, aw, ah) in enumerate(rects):
        for j, (bx, by, bw, bh) in enumerate(rects[:i]):
            if min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by):
                hits.append((j, i))
    return hits


def test_labels_of_a_crowd_do_not_overlap_and_stay_in_the_picture():
    rng = np.random.default_rng(0)
    # 12 people side by side, boxes overlapping heavily (a crowd), some at the top edge
    x = np.sort(rng.uniform(0, 560, 12))
    y = rng.uniform(0, 60, 12)
    boxes = np.stack([x, y, x + 60, y + 200], axis=1)
    sizes = [(40, 18)] * 12
    corners = place_labels(boxes, sizes, (640, 360))
    rects = [(cx, cy, w, h) for (cx, cy), (w, h) in zip(corners, sizes)]
    assert _overlaps(rects) == []
    assert all(0 <= cx <= 640 - w and 0 <= cy <= 360 - h for cx, cy, w, h in rects)
    # the naive spot (above each box's top-left corner) would have overlapped
    naive = [(int(b[0]), int(b[1]) - 18, 40, 18) for b in boxes]
    assert _overlaps(naive)


def test_a_label_goes_above_its_box_when_there_is_room():
    assert place_labels(np.array([[100.0, 50, 200, 300]]), [(30, 20)], (640, 480)) == [(100, 30)]


def test_strip_goes_above_the_picture_and_leaves_it_untouched():
    image = np.full((120, 160, 3), 77, np.uint8)
    out = add_strip(image, ["RANDOM WEIGHTS", "12 fps"])
    h = strip_height((160, 120), 2)
    assert out.shape == (120 + h, 160, 3) and h % 2 == 0 and h > 0
    assert np.array_equal(out[h:], image)  # the picture (and whoever is in it) is not covered
    assert (out[:h] != 24).any()  # text was drawn in the strip
    assert add_strip(image, []) is image and strip_height((160, 120), 0) == 0


def test_render_puts_banner_and_hud_in_the_strip_and_draws_people_below_it():
    img = np.zeros((240, 320, 3), np.uint8)
    kp = np.tile(np.float32([[100, 100]]), (1, 17, 1))
    poses = Poses(kp, np.ones((1, 17), np.float32), np.float32([[50, 10, 150, 200]]), np.int64([3]))
    packet = Packet(frame=Frame(0, 0.0, 0.0, img), poses=poses)
    plain = RenderStage().process(packet).annotated
    assert plain.shape == img.shape  # no banner, no HUD: same size (the HUD is off by default)
    stage = RenderStage(hud=True, banner="RANDOM WEIGHTS")
    out = stage.process(packet).annotated
    h = strip_height((320, 240), stage.strip_lines)
    assert stage.strip_lines == 2 and out.shape == (240 + h, 320, 3)
    assert np.array_equal(out[h:], plain)  # exactly the plain rendering below the strip
    assert draw_poses(img.copy(), poses).any()
