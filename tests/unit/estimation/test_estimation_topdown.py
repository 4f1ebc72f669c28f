"""TopDownEstimator on real ONNX Runtime sessions of tiny models built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.estimation.topdown import TopDownEstimator
from posestream.runtime.factory import open_pose_backend
from posestream.runtime.onnx import OnnxPoseBackend
from posestream.runtime.sessions import open_session

K, H, W = 17, 64, 48


def write_onnx(path: Path, batch: int | str = "N", constant_heatmaps: np.ndarray | None = None) -> Path:
    """(batch, 3, 256, 192) -> (batch, K, 64, 48): sigmoid of a 4x4/stride-4 conv, or, with
    ``constant_heatmaps`` (1, K, 64, 48), those heatmaps for every crop (conv weights zero)."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (K, 3, 4, 4)).astype(np.float32)
    bias = rng.normal(0, 0.1, K).astype(np.float32)
    initializers = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")]
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["logits"], kernel_shape=[4, 4], strides=[4, 4])]
    if constant_heatmaps is None:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["heatmaps"]))
    else:
        initializers[0] = numpy_helper.from_array(np.zeros_like(weight), "W")
        initializers[1] = numpy_helper.from_array(np.zeros_like(bias), "B")
        initializers.append(numpy_helper.from_array(constant_heatmaps.astype(np.float32), "C"))
        nodes.append(helper.make_node("Add", ["logits", "C"], ["heatmaps"]))  # broadcast over the batch
    graph = helper.make_graph(
        nodes,
        "tiny_pose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [batch, K, H, W])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


class RecordingBackend(OnnxPoseBackend):
    """The real ORT backend, noting the batch shapes it was called with."""

    def __init__(self, path: Path) -> None:
        super().__init__(open_session(path, threads=1))
        self.batch_sizes: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return super().__call__(batch)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return write_onnx(tmp_path_factory.mktemp("estimator") / "tiny.onnx")


def frame_and_boxes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    top_left = rng.uniform([0, 0], [500, 200], (n, 2))
    return image, np.concatenate([top_left, top_left + rng.uniform(40, 160, (n, 2))], axis=1)


def test_seven_people_make_exactly_one_padded_call(model_path):
    backend = RecordingBackend(model_path)
    estimator = TopDownEstimator(backend)
    image, boxes = frame_and_boxes(7)
    keypoints, scores = estimator.estimate(image, boxes)
    assert estimator.model_calls == 1 and backend.batch_sizes == [8]  # 7 padded to the bucket 8
    assert keypoints.shape == (7, K, 2) and scores.shape == (7, K)
    assert keypoints.dtype == np.float32 and scores.dtype == np.float32
    assert set(estimator.last_timings) == {"preprocess", "model", "postprocess"}
    assert all(seconds > 0 for seconds in estimator.last_timings.values())


def test_padding_gives_identical_keypoints_to_unpadded(model_path):
    image, boxes = frame_and_boxes(7, seed=1)
    padded_backend, exact_backend = RecordingBackend(model_path), RecordingBackend(model_path)
    padded = TopDownEstimator(padded_backend, batch_buckets=(1, 2, 4, 8, 16)).estimate(image, boxes)
    exact = TopDownEstimator(exact_backend, batch_buckets=(7,)).estimate(image, boxes)
    assert padded_backend.batch_sizes == [8] and exact_backend.batch_sizes == [7]
    np.testing.assert_array_equal(padded[0], exact[0])  # rows are independent: bit-identical
    np.testing.assert_array_equal(padded[1], exact[1])


def test_each_person_alone_gives_the_same_keypoints(model_path):
    image, boxes = frame_and_boxes(5, seed=2)
    estimator = TopDownEstimator(open_pose_backend(model_path, threads=1, engine="onnxruntime"))
    together, _ = estimator.estimate(image, boxes)
    alone = np.concatenate([estimator.estimate(image, boxes[i : i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(together, alone, atol=1e-3)


def test_no_people_no_call(model_path):
    estimator = TopDownEstimator(RecordingBackend(model_path))
    image, _ = frame_and_boxes(0)
    keypoints, scores = estimator.estimate(image, np.zeros((0, 4), np.float32))
    assert estimator.model_calls == 0
    assert keypoints.shape == (0, K, 2) and scores.shape == (0, K)


def test_chunks_beyond_the_largest_bucket(model_path):
    backend = RecordingBackend(model_path)
    estimator = TopDownEstimator(backend, batch_buckets=(1, 2, 4))
    image, boxes = frame_and_boxes(7, seed=3)
    chunked, _ = estimator.estimate(image, boxes)
    assert backend.batch_sizes == [4, 4] and estimator.model_calls == 2  # 4 + 3 padded to 4
    single, _ = TopDownEstimator(open_pose_backend(model_path, threads=1, engine="onnxruntime")).estimate(image, boxes)
    np.testing.assert_allclose(chunked, single, atol=1e-3)


def test_no_buckets_means_no_padding(model_path):
    backend = RecordingBackend(model_path)
    estimator = TopDownEstimator(backend, batch_buckets=None)
    image, boxes = frame_and_boxes(7, seed=7)
    keypoints, _ = estimator.estimate(image, boxes)
    estimator.estimate(image, boxes[:3])
    assert backend.batch_sizes == [7, 3] and estimator.model_calls == 2
    padded, _ = TopDownEstimator(open_pose_backend(model_path, threads=1, engine="onnxruntime")).estimate(image, boxes)
    np.testing.assert_array_equal(keypoints, padded)


def test_fixed_batch_model_is_never_padded(tmp_path, model_path):
    backend = RecordingBackend(write_onnx(tmp_path / "b1.onnx", batch=1))
    estimator = TopDownEstimator(backend)
    assert estimator.batch_buckets == (1,)
    image, boxes = frame_and_boxes(3, seed=4)
    keypoints, _ = estimator.estimate(image, boxes)
    assert backend.batch_sizes == [1, 1, 1]
    dynamic, _ = TopDownEstimator(open_pose_backend(model_path, threads=1, engine="onnxruntime")).estimate(image, boxes)
    np.testing.assert_allclose(keypoints, dynamic, atol=1e-3)


def test_known_heatmap_peaks_land_on_known_frame_pixels(tmp_path):
    """End to end through a model whose heatmaps are fixed Gaussians: boxes -> frame pixels."""
    rng = np.random.default_rng(5)
    peaks = rng.uniform(8, [W - 9, H - 9], size=(K, 2))  # heatmap pixels
    yy, xx = np.mgrid[0:H, 0:W]
    maps = np.exp(-((xx - peaks[:, 0, None, None]) ** 2 + (yy - peaks[:, 1, None, None]) ** 2) / 8.0)[None]
    estimator = TopDownEstimator(open_pose_backend(write_onnx(tmp_path / "fixed.onnx", constant_heatmaps=maps), engine="onnxruntime"))
    image, boxes = frame_and_boxes(3, seed=6)
    keypoints, scores = estimator.estimate(image, boxes)
    center, scale = xyxy_to_center_scale(boxes, aspect_wh=192 / 256, padding=1.25)
    expected = peaks[None] * scale[:, None] / [W - 1, H - 1] + center[:, None] - scale[:, None] / 2
    assert np.abs(keypoints - expected).max() < 0.05
    assert np.all(scores > 0.9)


def test_rejects_bad_boxes_and_buckets(model_path):
    backend = open_pose_backend(model_path, threads=1, engine="onnxruntime")
    with pytest.raises(ValueError, match=r"xyxy: expected shape \(N, 4\)"):
        TopDownEstimator(backend).estimate(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="batch_buckets"):
        TopDownEstimator(backend, batch_buckets=(0, 4))
