"""Heatmap decoding: known sub-pixel peaks, DARK vs argmax, parity with Hugging Face.

Hugging Face's ``post_process_pose_estimation`` implements the same argmax + DARK + UDP steps but
blurs with sigma 0.8 / scipy 'reflect' instead of the reference's 11x11 OpenCV kernel (sigma 2.0,
BORDER_REFLECT_101); see ``posestream.geometry.heatmaps``. The parity test therefore decodes with
HF's blur settings and must agree within 0.01 px; a second test shows that on clean Gaussians our
reference default agrees with HF too, and a third why the reference blur is the default.
"""

from __future__ import annotations

import numpy as np
import pytest

from posestream.geometry.affine import apply_affine, udp_inverse_matrix
from posestream.geometry.boxes import xywh_to_xyxy, xyxy_to_center_scale
import cv2

from posestream.geometry.heatmaps import decode_heatmaps, heatmap_argmax, refine_dark_udp

H, W = 64, 48  # heatmap size for a 256x192 input
YY, XX = np.mgrid[0:H, 0:W]


def gaussian_heatmaps(peaks_xy: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """(N, K, 2) heatmap-pixel peaks -> (N, K, 64, 48) float64 unit Gaussians."""
    dx = XX - peaks_xy[..., 0, None, None]
    dy = YY - peaks_xy[..., 1, None, None]
    return np.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def realistic_heatmaps(rng: np.random.Generator, n: int, k: int, noise: float) -> np.ndarray:
    """Main peak + weaker distractor per map, random peak heights, Gaussian noise: (N, K, 64, 48) float32."""
    peaks = rng.uniform([4, 4], [W - 5, H - 5], size=(n, k, 2))
    distractors = rng.uniform([0, 0], [W - 1, H - 1], size=(n, k, 2))
    maps = gaussian_heatmaps(peaks) + 0.3 * gaussian_heatmaps(distractors)
    maps = maps * rng.uniform(0.3, 1.0, size=(n, k, 1, 1)) + noise * rng.standard_normal(maps.shape)
    return maps.astype(np.float32)


def hf_decode(heatmaps: np.ndarray, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hugging Face post-processing of one image's people -> (N, K, 2), (N, K)."""
    hf = pytest.importorskip("transformers.models.vitpose.image_processing_pil_vitpose")
    modeling = pytest.importorskip("transformers.models.vitpose.modeling_vitpose")
    import torch

    outputs = modeling.VitPoseEstimatorOutput(heatmaps=torch.from_numpy(heatmaps.copy()))
    results = hf.VitPoseImageProcessorPil().post_process_pose_estimation(outputs, boxes=[boxes_xywh.tolist()])
    keypoints = np.stack([person["keypoints"].numpy() for person in results[0]])
    scores = np.stack([person["scores"].numpy() for person in results[0]])
    return keypoints, scores


def random_boxes_xywh(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.concatenate([rng.uniform(0, 1500, (n, 2)), rng.uniform(30, 600, (n, 2))], axis=1)


def test_single_gaussian_round_trips_to_frame_pixel():
    rng = np.random.default_rng(0)
    peaks = rng.uniform(6, [W - 7, H - 7], size=(3, 5, 2))  # known sub-pixel heatmap locations
    center = np.array([[320.0, 240.0], [1000.5, 80.25], [50.0, 700.0]])
    scale = np.array([[150.0, 200.0], [90.0, 120.0], [300.0, 400.0]])
    keypoints, scores = decode_heatmaps(gaussian_heatmaps(peaks).astype(np.float32), center, scale)
    # Expected: the UDP formula x = x_hm * sw / (w - 1) + cx - sw / 2, written out.
    expected = peaks * scale[:, None] / [W - 1, H - 1] + center[:, None] - scale[:, None] / 2
    assert keypoints.shape == (3, 5, 2) and keypoints.dtype == np.float32
    assert np.abs(keypoints - expected).max() < 0.05
    np.testing.assert_allclose(scores, 1.0, atol=0.06)  # peak between pixels: max sample < 1


def test_dark_is_closer_than_argmax():
    rng = np.random.default_rng(1)
    peaks = rng.uniform(6, [W - 7, H - 7], size=(4, 17, 2))
    maps = (gaussian_heatmaps(peaks) + 0.01 * rng.standard_normal((4, 17, H, W))).astype(np.float32)
    center, scale = np.full((4, 2), 100.0), np.tile([[W - 1.0, H - 1.0]], (4, 1))  # 1 frame px = 1 hm px
    truth = apply_affine(udp_inverse_matrix(center, scale, (W, H)), peaks)
    dark, _ = decode_heatmaps(maps, center, scale)
    argmax, _ = decode_heatmaps(maps, center, scale, dark=False)
    dark_error = np.linalg.norm(dark - truth, axis=-1)
    argmax_error = np.linalg.norm(argmax - truth, axis=-1)
    assert dark_error.mean() < 0.25 * argmax_error.mean()
    assert dark_error.max() < 0.1


def test_matches_hugging_face_post_process_within_0_01_px():
    rng = np.random.default_rng(2)
    n, k = 6, 17
    heatmaps = realistic_heatmaps(rng, n, k, noise=0.02)
    boxes_xywh = random_boxes_xywh(rng, n)
    hf_keypoints, hf_scores = hf_decode(heatmaps, boxes_xywh)

    center, scale = xyxy_to_center_scale(xywh_to_xyxy(boxes_xywh))
    keypoints, scores = decode_heatmaps(heatmaps, center, scale, blur_sigma=0.8, blur_border="reflect")
    assert np.abs(keypoints - hf_keypoints).max() < 0.01
    np.testing.assert_array_equal(scores, hf_scores)


def test_reference_blur_matches_hugging_face_on_clean_gaussians():
    rng = np.random.default_rng(3)
    peaks = rng.uniform(8, [W - 9, H - 9], size=(4, 17, 2))
    heatmaps = (gaussian_heatmaps(peaks) * rng.uniform(0.3, 1.0, (4, 17, 1, 1))).astype(np.float32)
    boxes_xywh = random_boxes_xywh(rng, 4)
    hf_keypoints, _ = hf_decode(heatmaps, boxes_xywh)
    center, scale = xyxy_to_center_scale(xywh_to_xyxy(boxes_xywh))
    keypoints, _ = decode_heatmaps(heatmaps, center, scale)  # reference defaults
    assert np.abs(keypoints - hf_keypoints).max() < 0.01


def test_reference_blur_is_more_accurate_than_hugging_face_blur_on_noisy_maps():
    rng = np.random.default_rng(4)
    peaks = rng.uniform(8, [W - 9, H - 9], size=(10, 17, 2))
    maps = (gaussian_heatmaps(peaks) + 0.03 * rng.standard_normal((10, 17, H, W))).astype(np.float32)
    center, scale = np.full((10, 2), 100.0), np.tile([[W - 1.0, H - 1.0]], (10, 1))
    truth = apply_affine(udp_inverse_matrix(center, scale, (W, H)), peaks)
    reference, _ = decode_heatmaps(maps, center, scale)
    hf_like, _ = decode_heatmaps(maps, center, scale, blur_sigma=0.8, blur_border="reflect")
    reference_error = np.linalg.norm(reference - truth, axis=-1).mean()
    hf_error = np.linalg.norm(hf_like - truth, axis=-1).mean()
    assert reference_error < 0.75 * hf_error


def dark_by_the_book(heatmap: np.ndarray, x: int, y: int, sigma: float, border: int) -> np.ndarray:
    """One map, the plain way: blur the whole map with OpenCV, log, edge-pad, solve the 2x2 system."""
    blurred = cv2.GaussianBlur(heatmap, (11, 11), sigma, borderType=border)
    padded = np.pad(np.log(np.clip(blurred, 0.001, 50)), 1, mode="edge").astype(np.float64)
    v = padded[y : y + 3, x : x + 3]  # 3x3 around the peak, v[1, 1] is the peak
    gradient = np.array([v[1, 2] - v[1, 0], v[2, 1] - v[0, 1]]) / 2
    dxy = (v[2, 2] - v[1, 2] - v[2, 1] + 2 * v[1, 1] - v[1, 0] - v[0, 1] + v[0, 0]) / 2
    hessian = np.array([[v[1, 2] - 2 * v[1, 1] + v[1, 0], dxy], [dxy, v[2, 1] - 2 * v[1, 1] + v[0, 1]]])
    return np.array([x, y]) - np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2)) @ gradient


@pytest.mark.parametrize(
    "border, cv_border, sigma",
    [("reflect_101", cv2.BORDER_REFLECT_101, None), ("reflect", cv2.BORDER_REFLECT, 0.8),
     ("replicate", cv2.BORDER_REPLICATE, None), ("constant", cv2.BORDER_CONSTANT, 1.5)],
)  # fmt: skip
def test_local_blur_refinement_equals_whole_map_blur(border, cv_border, sigma):
    """The 3x3-only blur gives the whole-map OpenCV result, also for peaks on edges and corners."""
    rng = np.random.default_rng(5)
    peaks = rng.uniform(0, [W - 1, H - 1], size=(3, 17, 2))
    peaks[0, :4] = [[0, 0], [W - 1, H - 1], [0.3, 30.2], [20.6, H - 1.2]]  # corners and edges
    maps = (gaussian_heatmaps(peaks) + 0.02 * rng.standard_normal((3, 17, H, W))).astype(np.float32)
    coords, _ = heatmap_argmax(maps)
    refined = refine_dark_udp(maps, coords, 11, sigma, border, max_offset=None)  # the book has no guard
    for n, j in np.ndindex(3, 17):
        expected = dark_by_the_book(maps[n, j], *coords[n, j], sigma or 0, cv_border)
        np.testing.assert_allclose(refined[n, j], expected, atol=1e-4, err_msg=f"person {n} keypoint {j}")


def test_argmax_and_edge_cases():
    maps = np.zeros((1, 2, H, W), np.float32)
    maps[0, 0, 10, 7] = 0.9
    coords, scores = heatmap_argmax(maps)
    np.testing.assert_array_equal(coords[0, 0], [7, 10])
    np.testing.assert_allclose(scores[0], [0.9, 0.0])
    keypoints, _ = decode_heatmaps(maps, np.zeros((1, 2)), np.ones((1, 2)))
    assert np.all(np.isfinite(keypoints))  # an all-zero map stays finite
    no_maps = np.zeros((0, 17, H, W), np.float32)
    empty_keypoints, empty_scores = decode_heatmaps(no_maps, np.zeros((0, 2)), np.zeros((0, 2)))
    assert empty_keypoints.shape == (0, 17, 2) and empty_scores.shape == (0, 17)
    with pytest.raises(ValueError, match="aspect ratio"):
        decode_heatmaps(np.zeros((1, 17, 64, 64), np.float32), np.zeros((1, 2)), np.ones((1, 2)))


def test_dark_step_is_guarded_on_maps_without_a_real_peak():
    """Noise maps (what random weights give): some unguarded Taylor steps fly off; the guard keeps
    exactly those at their integer peak and leaves every other step as the reference makes it."""
    maps = np.random.default_rng(3).random((8, 17, H, W)).astype(np.float32)
    coords, _ = heatmap_argmax(maps)
    wild = refine_dark_udp(maps, coords, max_offset=None)
    guarded = refine_dark_udp(maps, coords)
    far = np.any(np.abs(wild - coords) > 2.0, axis=-1)
    assert far.sum() >= 3  # the case exists on noise
    np.testing.assert_array_equal(guarded[far], coords[far])
    np.testing.assert_array_equal(guarded[~far], wild[~far])
