"""Labels that never overlap, and text in a strip above the picture (never over a person)."""

import numpy as np

from posestream.stages.render import RenderStage
from posestream.types import Frame, Packet, Poses
from posestream.visual.draw import add_strip, draw_poses, place_labels, strip_height


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
