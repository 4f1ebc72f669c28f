"""The torch (device-side) warp and decode against the OpenCV / numpy ones, on the CPU.

The same torch code runs on CUDA; ``tests/gpu`` compares the two devices there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestream.geometry.affine import to_model_input, warp_crops
from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.geometry.heatmaps import decode_heatmaps
from posestream.geometry.torch_heatmaps import decode_heatmaps_torch
from posestream.geometry.torch_warp import normalise_crops, stack_frames, warp_crops_torch

from pose_synthetic import H, W, peaked_heatmaps, random_boxes_inside, textured_frame  # tests/ is on sys.path

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def test_torch_warp_equals_opencv_within_one_grey_level_for_boxes_inside():
    rng = np.random.default_rng(0)
    frames = [textured_frame(seed) for seed in range(3)]
    frame_index, center, scale, expected = [], [], [], []
    for f, frame in enumerate(frames):  # 0, 4 and 2 people: one call samples all three frames
        boxes = random_boxes_inside(rng, [0, 4, 2][f], (frame.shape[1], frame.shape[0]))
        if len(boxes) == 0:
            continue
        c, s = xyxy_to_center_scale(boxes)
        frame_index += [f] * len(boxes)
        center.append(c)
        scale.append(s)
        expected.append(warp_crops(frame, c, s, (192, 256)))  # (n, 256, 192, 3) uint8 BGR, OpenCV
    center, scale, expected = np.concatenate(center), np.concatenate(scale), np.concatenate(expected)

    volume = stack_frames([torch.from_numpy(frame) for frame in frames])
    crops = warp_crops_torch(volume, np.array(frame_index), center, scale, (192, 256))  # (N, 3, 256, 192)
    assert crops.shape == (6, 3, 256, 192) and crops.dtype == torch.float32
    got = crops.permute(0, 2, 3, 1).numpy()
    difference = np.abs(got - expected.astype(np.float32))
    assert difference.max() <= 1.0, f"max {difference.max()} grey levels"
    assert (difference > 0).mean() < 0.01  # and equal almost everywhere


def test_torch_warp_is_zero_outside_the_frame_like_opencv():
    frame = textured_frame(7, 120, 160)
    box = np.array([[-60.0, 30.0, 40.0, 150.0]])  # sticks out left and bottom
    center, scale = xyxy_to_center_scale(box)
    expected = warp_crops(frame, center, scale, (48, 64)).astype(np.float32)
    got = warp_crops_torch(stack_frames([torch.from_numpy(frame)]), np.zeros(1), center, scale, (48, 64))
    got = got.permute(0, 2, 3, 1).numpy()
    outside = expected.sum(axis=-1) == 0
    assert outside.mean() > 0.3 and np.all(got[outside] == 0)
    # Pixels whose bilinear footprint straddles the frame edge blend with the zero border in both.
    assert np.abs(got - expected).max() <= 1.0


def test_normalise_crops_equals_to_model_input():
    crops = np.random.default_rng(1).integers(0, 256, (5, 32, 24, 3), dtype=np.uint8)
    for order in ("RGB", "BGR"):
        expected = to_model_input(crops, MEAN, STD, order)
        got = normalise_crops(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), MEAN, STD, order)
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    as_bf16 = normalise_crops(torch.zeros(1, 3, 4, 4), MEAN, STD, "RGB", dtype=torch.bfloat16)
    assert as_bf16.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="color_order"):
        normalise_crops(torch.zeros(1, 3, 4, 4), MEAN, STD, "GBR")


@pytest.mark.parametrize(
    "border, sigma", [("reflect_101", None), ("reflect", 0.8), ("replicate", None), ("constant", 1.5)]
)
def test_torch_decode_equals_numpy_decode_within_0_01_px(border, sigma):
    rng = np.random.default_rng(2)
    heatmaps = peaked_heatmaps(rng, 6, 17, noise=0.02)
    boxes = np.concatenate([rng.uniform(0, 1500, (6, 2)), rng.uniform(30, 700, (6, 2))], axis=1)
    boxes[:, 2:] += boxes[:, :2]
    center, scale = xyxy_to_center_scale(boxes)
    expected, expected_scores = decode_heatmaps(heatmaps, center, scale, blur_sigma=sigma, blur_border=border)
    keypoints, scores = decode_heatmaps_torch(torch.from_numpy(heatmaps), center, scale, blur_sigma=sigma,
                                              blur_border=border)  # fmt: skip
    assert keypoints.dtype == torch.float32 and keypoints.shape == (6, 17, 2)
    assert np.abs(keypoints.numpy() - expected).max() < 0.01
    np.testing.assert_array_equal(scores.numpy(), expected_scores)


def test_torch_decode_keeps_the_guard_and_edge_cases_of_numpy():
    noise = np.random.default_rng(3).random((8, 17, H, W)).astype(np.float32)  # random weights' flat maps
    center, scale = np.full((8, 2), 300.0), np.full((8, 2), 200.0)
    expected, _ = decode_heatmaps(noise, center, scale)
    got, _ = decode_heatmaps_torch(torch.from_numpy(noise), center, scale)
    assert np.abs(got.numpy() - expected).max() < 0.01
    argmax_only, _ = decode_heatmaps_torch(torch.from_numpy(noise), center, scale, dark=False)
    np.testing.assert_allclose(argmax_only.numpy(), decode_heatmaps(noise, center, scale, dark=False)[0])
    empty, empty_scores = decode_heatmaps_torch(torch.zeros(0, 17, H, W), np.zeros((0, 2)), np.zeros((0, 2)))
    assert empty.shape == (0, 17, 2) and empty_scores.shape == (0, 17)
    as_bf16 = torch.from_numpy(noise).bfloat16()  # what a bf16 model returns: decoded in float32
    got_bf16, _ = decode_heatmaps_torch(as_bf16, center, scale)
    expected_bf16, _ = decode_heatmaps(as_bf16.float().numpy(), center, scale)
    assert np.abs(got_bf16.numpy() - expected_bf16).max() < 0.01
    with pytest.raises(ValueError, match="aspect ratio"):
        decode_heatmaps_torch(torch.zeros(1, 17, 64, 64), np.zeros((1, 2)), np.ones((1, 2)))
