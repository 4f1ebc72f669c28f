"""Box encoding: (center, scale) in pixels, checked by hand and against Hugging Face."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.geometry.boxes import MIN_SCALE_PX, area_xyxy, clip_xyxy, xywh_to_xyxy, xyxy_to_center_scale


def test_tall_box_grows_width_to_aspect_then_pads():
    # 60 x 160 box: too narrow for 3:4, width becomes 160 * 0.75 = 120, then x 1.25.
    center, scale = xyxy_to_center_scale(np.array([[10.0, 20.0, 70.0, 180.0]]))
    np.testing.assert_allclose(center, [[40.0, 100.0]])
    np.testing.assert_allclose(scale, [[150.0, 200.0]])


def test_wide_box_grows_height_to_aspect_then_pads():
    # 300 x 100 box: height becomes 300 / 0.75 = 400, then x 1.25.
    center, scale = xyxy_to_center_scale(np.array([[0.0, 0.0, 300.0, 100.0]]), padding=1.0)
    np.testing.assert_allclose(center, [[150.0, 50.0]])
    np.testing.assert_allclose(scale, [[300.0, 400.0]])


def test_matches_hugging_face_box_to_center_and_scale():
    """HF stores scale / 200 ("pixel std"); ours is in pixels. Boxes there are COCO xywh."""
    hf = pytest.importorskip("transformers.models.vitpose.image_processing_pil_vitpose")
    rng = np.random.default_rng(0)
    xywh = np.concatenate([rng.uniform(0, 1000, (20, 2)), rng.uniform(5, 500, (20, 2))], axis=1)
    center, scale = xyxy_to_center_scale(xywh_to_xyxy(xywh))
    for i, box in enumerate(xywh):
        hf_center, hf_scale = hf.box_to_center_and_scale(box, image_width=192, image_height=256)
        np.testing.assert_allclose(center[i], hf_center, rtol=1e-6)
        np.testing.assert_allclose(scale[i], hf_scale * 200.0, rtol=1e-6)


def test_degenerate_box_is_clamped_not_zero():
    _, scale = xyxy_to_center_scale(np.array([[5.0, 5.0, 5.0, 5.0]]))
    assert np.all(scale >= MIN_SCALE_PX)


def test_empty_and_malformed_input():
    center, scale = xyxy_to_center_scale(np.zeros((0, 4)))
    assert center.shape == (0, 2) and scale.shape == (0, 2)
    with pytest.raises(ValueError, match=r"xyxy: expected shape \(N, 4\)"):
        xyxy_to_center_scale(np.zeros((3, 5)))


def test_clip_and_area():
    boxes = np.array([[-10.0, 5.0, 50.0, 300.0], [20.0, 20.0, 10.0, 30.0]])
    np.testing.assert_allclose(clip_xyxy(boxes, (40, 100)), [[0, 5, 40, 100], [20, 20, 10, 30]])
    np.testing.assert_allclose(area_xyxy(boxes), [60.0 * 295.0, 0.0])
