"""The device-side estimator (torch warp, model, decode) against the OpenCV/numpy estimator, on the CPU.

The model is small and real: it turns each crop into heatmaps that peak where the crop is
brightest (a 4x4 average pool of the normalised crop, exponentiated). Each person in the test
frames carries a bright blob at a known spot, so both estimators must find that spot, and they
must agree with each other far more closely than with it.
"""

from __future__ import annotations

import numpy as np
import pytest

from posestream.estimation.device import DeviceTopDownEstimator
from posestream.estimation.topdown import TopDownEstimator
from posestream.runtime.torch import TorchPoseBackend

from pose_synthetic import K, BrightSpotModel, frame_with_people  # tests/ is on sys.path


@pytest.fixture(scope="module")
def backend() -> TorchPoseBackend:
    return TorchPoseBackend(BrightSpotModel(), device="cpu", dtype="fp32")


def test_device_estimator_matches_the_opencv_numpy_estimator(backend):
    image, boxes, blobs = frame_with_people(0, 5)
    reference = TopDownEstimator(backend, batch_buckets=None)
    device = DeviceTopDownEstimator(backend)
    expected, expected_scores = reference.estimate(image, boxes)
    keypoints, scores = device.estimate(image, boxes)
    assert keypoints.shape == (5, K, 2) and keypoints.dtype == np.float32
    # Both find the blob (DARK on a 4-px-pooled map: within a few frame pixels)...
    assert np.abs(keypoints - blobs[:, None, :]).max() < 4.0
    # ...and agree with each other: the crops differ by at most 1 grey level on a few pixels.
    assert np.abs(keypoints - expected).max() < 0.05
    np.testing.assert_allclose(scores, expected_scores, atol=1e-3)
    assert device.model_calls == 1 and set(device.last_timings) == {"total"}


def test_several_frames_in_one_call_come_back_per_frame_in_order(backend):
    frames = [frame_with_people(seed, n) for seed, n in ((1, 2), (2, 0), (3, 3), (4, 1))]
    device = DeviceTopDownEstimator(backend)
    uploaded = [device.upload(image) for image, _, _ in frames]
    together = device.estimate_frames(uploaded, [boxes for _, boxes, _ in frames])
    assert device.model_calls == 1  # six people of four frames: one model call
    for (image, boxes, _), (keypoints, scores) in zip(frames, together):
        alone, alone_scores = DeviceTopDownEstimator(backend).estimate(image, boxes)
        assert keypoints.shape == (len(boxes), K, 2) and scores.shape == (len(boxes), K)
        np.testing.assert_allclose(keypoints, alone, atol=1e-3)
        np.testing.assert_allclose(scores, alone_scores, atol=1e-6)
    numpy_way = TopDownEstimator(backend, batch_buckets=None).estimate_frames(
        [image for image, _, _ in frames], [boxes for _, boxes, _ in frames]
    )
    for (keypoints, _), (expected, _) in zip(together, numpy_way):
        assert np.abs(keypoints - expected).max() < 0.05 if len(expected) else keypoints.shape == (0, K, 2)


def test_chunks_and_empty_inputs(backend):
    image, boxes, _ = frame_with_people(5, 5)
    chunked = DeviceTopDownEstimator(backend, max_chunk=2)
    keypoints, _ = chunked.estimate(image, boxes)
    assert chunked.model_calls == 3  # 2 + 2 + 1
    unchunked, _ = DeviceTopDownEstimator(backend).estimate(image, boxes)
    np.testing.assert_allclose(keypoints, unchunked, atol=1e-3)
    none, none_scores = chunked.estimate(image, np.zeros((0, 4)))
    assert none.shape == (0, K, 2) and none_scores.shape == (0, K) and chunked.model_calls == 3
    with pytest.raises(ValueError, match="uint8"):
        chunked.upload(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(TypeError, match="torch backend"):
        DeviceTopDownEstimator(object())
