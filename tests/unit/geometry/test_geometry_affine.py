"""UDP warps and model-input layout, checked by construction and against Hugging Face.

Hugging Face's ``VitPoseImageProcessor`` (the PIL backend here, as torchvision is not installed;
both call the same scipy warp) builds mmpose's UDP matrix and warps with
``scipy.ndimage.affine_transform(order=1)`` in float64, rounded to uint8. ``cv2.warpAffine``
interpolates with 1/32-pixel fixed-point weights, so crops may differ by one grey level on a few
pixels; that is the tolerance below. Pixels whose bilinear footprint leaves the frame differ more
(scipy's ``constant`` mode does not blend with the border, OpenCV does), hence boxes inside.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posestream.geometry.affine import (
    apply_affine,
    to_model_input,
    udp_inverse_matrix,
    udp_warp_matrix,
    warp_crops,
)
from posestream.geometry.boxes import xywh_to_xyxy, xyxy_to_center_scale

# COCO xywh boxes whose padded crop regions lie inside a 640 x 480 frame.
BOXES_XYWH = np.array([[200.3, 100.7, 80.2, 150.9], [300.0, 150.0, 120.5, 90.25], [60.0, 80.0, 30.0, 40.0]])
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def smooth_image(height: int = 480, width: int = 640) -> np.ndarray:
    """(H, W, 3) uint8 BGR with smooth, different patterns per channel."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = [127 + 100 * np.sin(xx / 23.0 + c) * np.cos(yy / 31.0 - c) for c in range(3)]
    return np.clip(np.round(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def hf_crops(image_bgr: np.ndarray, boxes_xywh: np.ndarray, normalize: bool) -> np.ndarray:
    """Hugging Face preprocess of one RGB image -> (N, 3, 256, 192) (uint8, or normalised float)."""
    hf = pytest.importorskip("transformers.models.vitpose.image_processing_pil_vitpose")
    processor = hf.VitPoseImageProcessorPil()
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    out = processor.preprocess(
        rgb, boxes=[boxes_xywh.tolist()], do_rescale=normalize, do_normalize=normalize, return_tensors="np"
    )
    return out["pixel_values"]


def test_warp_maps_region_edges_to_first_and_last_pixel():
    center, scale = np.array([[100.0, 50.0]]), np.array([[60.0, 80.0]])
    matrix = udp_warp_matrix(center, scale, (192, 256))
    corners = np.array([[[70.0, 10.0], [130.0, 90.0], [100.0, 50.0]]])  # region corners and centre
    expected = [[[0, 0], [191, 255], [95.5, 127.5]]]
    np.testing.assert_allclose(apply_affine(matrix, corners), expected, atol=1e-9)


def test_inverse_undoes_warp():
    rng = np.random.default_rng(1)
    center, scale = rng.uniform(0, 1000, (5, 2)), rng.uniform(10, 500, (5, 2))
    points = rng.uniform(0, 1000, (5, 7, 2))
    there = apply_affine(udp_warp_matrix(center, scale, (48, 64)), points)
    back = apply_affine(udp_inverse_matrix(center, scale, (48, 64)), there)
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_warp_puts_a_frame_point_where_the_matrix_says():
    point = np.array([201.3, 121.6])
    yy, xx = np.mgrid[0:300, 0:400]
    blob = 255 * np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 4.0**2))
    image = np.repeat(np.round(blob).astype(np.uint8)[..., None], 3, axis=2)
    center, scale = np.array([[190.0, 140.0]]), np.array([[120.0, 160.0]])
    crop = warp_crops(image, center, scale)[0, :, :, 0].astype(np.float64)
    yy, xx = np.mgrid[0:256, 0:192]
    found = np.array([(xx * crop).sum(), (yy * crop).sum()]) / crop.sum()  # centroid of the blob
    expected = apply_affine(udp_warp_matrix(center, scale, (192, 256)), point[None, None])[0, 0]
    np.testing.assert_allclose(found, expected, atol=0.05)


def test_warp_equals_hugging_face_on_smooth_image():
    image = smooth_image()
    center, scale = xyxy_to_center_scale(xywh_to_xyxy(BOXES_XYWH))
    ours = warp_crops(image, center, scale)[..., ::-1].transpose(0, 3, 1, 2).astype(np.int16)  # RGB, NCHW
    theirs = hf_crops(image, BOXES_XYWH, normalize=False).astype(np.int16)
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3


def test_warp_equals_hugging_face_on_real_image(shared):
    image = cv2.imread(str(shared / "media" / "images" / "astronaut.png"))
    boxes = np.array([[150.3, 40.7, 200.2, 300.9], [60.0, 90.0, 120.5, 90.25], [300.0, 300.0, 60.0, 100.0]])
    center, scale = xyxy_to_center_scale(xywh_to_xyxy(boxes))
    ours = warp_crops(image, center, scale)[..., ::-1].transpose(0, 3, 1, 2).astype(np.int16)
    theirs = hf_crops(image, boxes, normalize=False).astype(np.int16)
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3


def test_model_input_equals_hugging_face_normalisation():
    image = smooth_image()
    center, scale = xyxy_to_center_scale(xywh_to_xyxy(BOXES_XYWH))
    ours = to_model_input(warp_crops(image, center, scale), IMAGENET_MEAN, IMAGENET_STD, "RGB")
    theirs = hf_crops(image, BOXES_XYWH, normalize=True)
    assert ours.shape == theirs.shape == (3, 3, 256, 192) and ours.dtype == np.float32
    assert ours.flags.c_contiguous
    # One grey level is 1/57 in normalised units; crops differ by at most one level (see above).
    assert np.abs(ours - theirs).max() <= 1.0 / 57.0 + 1e-5


def test_model_input_channel_order_and_out_buffer():
    crops = np.zeros((2, 4, 3, 3), np.uint8)
    crops[..., 0] = 10  # B
    crops[..., 2] = 250  # R
    rgb = to_model_input(crops, (0, 0, 0), (1, 1, 1), "RGB")
    np.testing.assert_array_equal(rgb[:, 0], 250)  # channel 0 is red
    bgr = to_model_input(crops, (5, 0, 0), (5, 1, 1), "BGR")
    np.testing.assert_array_equal(bgr[:, 0], 1.0)  # (10 - 5) / 5
    padded = np.zeros((4, 3, 4, 3), np.float32)
    result = to_model_input(crops, (0, 0, 0), (1, 1, 1), "RGB", out=padded[:2])
    assert np.shares_memory(result, padded) and np.all(padded[2:] == 0) and np.all(padded[:2, 0] == 250)
    with pytest.raises(ValueError, match="color_order"):
        to_model_input(crops, (0, 0, 0), (1, 1, 1), "YUV")


def test_warp_rejects_non_uint8_frame():
    with pytest.raises(ValueError, match=r"image_bgr: expected \(H, W, 3\) uint8"):
        warp_crops(np.zeros((10, 10, 3), np.float32), np.zeros((1, 2)), np.ones((1, 2)))
