"""The CUDA path against the CPU path: warp, decode, the device estimator, CUDA graphs, compile.

Marked ``gpu``: skipped with the reason where torch sees no CUDA device (``tests/conftest.py``);
``benchmarks/gpu_check.sh`` runs them on a lent GPU machine. Each test compares the CUDA result
with the same code on the CPU (itself tested against OpenCV / numpy in ``tests/unit``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.geometry.heatmaps import decode_heatmaps
from posestream.geometry.torch_heatmaps import decode_heatmaps_torch
from posestream.geometry.torch_warp import stack_frames, warp_crops_torch
from posestream.estimation.device import DeviceTopDownEstimator
from posestream.estimation.topdown import TopDownEstimator
from posestream.estimation.frame_batcher import FrameBatcher
from posestream.runtime.torch import TorchPoseBackend
from posestream.runtime.torch_runner import BucketedRunner

from pose_synthetic import (  # tests/ is on sys.path
    BrightSpotModel,
    frame_with_people,
    peaked_heatmaps,
    random_boxes_inside,
    textured_frame,
)

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def test_warp_on_cuda_equals_the_cpu_warp():
    """The CPU torch warp equals OpenCV 5 within 1 grey level (tests/unit); the GPU's OpenCV may be
    older (fixed-point warps), so the CUDA result is held to the CPU torch result instead."""
    rng = np.random.default_rng(0)
    frames = [textured_frame(seed) for seed in range(2)]
    boxes = [random_boxes_inside(rng, 5, (480, 360)) for _ in frames]
    center, scale = xyxy_to_center_scale(np.concatenate(boxes))
    index = np.repeat([0, 1], 5)
    expected = warp_crops_torch(stack_frames([torch.from_numpy(f) for f in frames]), index, center, scale)
    on_gpu = stack_frames([torch.from_numpy(f).to(CUDA) for f in frames])
    crops = warp_crops_torch(on_gpu, index, center, scale)
    assert crops.device.type == "cuda"
    difference = (crops.cpu() - expected).abs()
    assert difference.max() <= 1.0 and (difference > 0).float().mean() < 0.001


def test_decode_on_cuda_equals_numpy_within_0_01_px():
    rng = np.random.default_rng(1)
    heatmaps = peaked_heatmaps(rng, 64, 17, noise=0.02)
    boxes = np.concatenate([rng.uniform(0, 1500, (64, 2)), rng.uniform(30, 700, (64, 2))], axis=1)
    boxes[:, 2:] += boxes[:, :2]
    center, scale = xyxy_to_center_scale(boxes)
    expected, expected_scores = decode_heatmaps(heatmaps, center, scale)
    keypoints, scores = decode_heatmaps_torch(torch.from_numpy(heatmaps).to(CUDA), center, scale)
    assert np.abs(keypoints.cpu().numpy() - expected).max() < 0.01
    np.testing.assert_array_equal(scores.cpu().numpy(), expected_scores)


def test_cuda_graph_replay_equals_eager_for_padded_and_chunked_batches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 17, 4, stride=4), torch.nn.Sigmoid()).to(CUDA).eval()
    runner = BucketedRunner(model, device=CUDA, dtype=torch.float32, input_size_hw=(256, 192),
                            cuda_graphs=True, buckets=(1, 4, 8))  # fmt: skip
    with torch.inference_mode():
        for n in (3, 8, 1, 19):  # 3 -> bucket 4 (padded), 19 -> 8 + 8 + 3 (chunks)
            x = torch.randn(n, 3, 256, 192, device=CUDA)
            expected = model(x)  # cuDNN may use TF32 and other kernels per batch size: 1e-3
            torch.testing.assert_close(runner(x).clone(), expected, atol=1e-3, rtol=1e-3)
    assert runner.cuda_graphs and sorted(bucket for bucket, _ in runner.warmups) == [1, 4, 8]


def test_device_estimator_on_cuda_equals_the_cpu_one_and_batches_frames():
    cpu = DeviceTopDownEstimator(TorchPoseBackend(BrightSpotModel(), device="cpu"))
    gpu = DeviceTopDownEstimator(TorchPoseBackend(BrightSpotModel(), device="cuda", compile=False))
    frames = [frame_with_people(seed, n) for seed, n in ((0, 3), (1, 0), (2, 5), (3, 2))]
    batcher = FrameBatcher(gpu, max_crops=6, max_frames=8, max_wait_s=60.0)
    out = []
    for index, (image, boxes, _) in enumerate(frames):
        out += batcher.add(index, image, boxes)  # uploads through pinned memory on the copy stream
    out += batcher.flush()
    assert [key for key, _, _ in out] == [0, 1, 2, 3]
    for (_, keypoints, scores), (image, boxes, blobs) in zip(out, frames):
        expected, expected_scores = cpu.estimate(image, boxes)
        np.testing.assert_allclose(keypoints, expected, atol=0.02)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-4)
        if len(boxes):
            assert np.abs(keypoints - blobs[:, None, :]).max() < 4.0


def test_vitpose_s_bf16_compiled_with_cuda_graphs_matches_eager_fp32():
    """The fast path's numbers: bf16 + torch.compile + CUDA graphs vs plain fp32 on the same weights."""
    from posestream.models.vitpose import build_vitpose

    torch.manual_seed(0)
    model = build_vitpose("s").eval()
    fast_model = copy.deepcopy(model)  # a backend converts its module in place
    reference = TorchPoseBackend(model, device="cuda", dtype="fp32", compile=False, cuda_graphs=False)
    fast = TorchPoseBackend(fast_model, device="cuda", dtype="bf16", compile=True, cuda_graphs=True)
    assert fast.warm_up((4,)) > 0 and fast.on_gpu  # batches >= 2 share one compilation (1 gets its own)
    batch = np.random.default_rng(0).standard_normal((3, 3, 256, 192)).astype(np.float32)
    expected, got = reference(batch), fast(batch)
    assert got.dtype == np.float32 and got.shape == expected.shape
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() < 0.05 * scale  # bf16 keeps ~3 significant digits
    assert fast.runner.compiled, "torch.compile fell back to eager on this machine (see the log)"
    TopDownEstimator(fast, batch_buckets=(2, 4)).warm_up()  # the OpenCV path's buckets: 2 is new
    assert sorted(bucket for bucket, _ in fast.runner.warmups) == [2, 4]
