"""Cross-frame batching: order, same keypoints as per-frame calls, when batches run."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.estimation.device import DeviceTopDownEstimator
from posestream.estimation.topdown import TopDownEstimator
from posestream.estimation.frame_batcher import FrameBatcher
from posestream.runtime.torch import TorchPoseBackend

from pose_synthetic import BrightSpotModel, frame_with_people  # tests/ is on sys.path


class CountingEstimator(DeviceTopDownEstimator):
    """The real device estimator, noting how many crops each model batch held."""

    def __init__(self, backend) -> None:
        super().__init__(backend)
        self.batches: list[int] = []

    def estimate_frames(self, frames, boxes):
        self.batches.append(sum(len(b) for b in boxes))
        return super().estimate_frames(frames, boxes)


@pytest.fixture(scope="module")
def backend() -> TorchPoseBackend:
    return TorchPoseBackend(BrightSpotModel(), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def frames():
    counts = [2, 0, 3, 1, 5, 0, 0, 4, 2, 1]  # 18 people in 10 frames
    return [frame_with_people(seed, n)[:2] for seed, n in enumerate(counts)]


@pytest.mark.parametrize("estimator_kind", ["device", "opencv"])
def test_frames_come_back_in_order_with_the_keypoints_of_per_frame_calls(backend, frames, estimator_kind):
    estimator = CountingEstimator(backend) if estimator_kind == "device" else TopDownEstimator(backend, None)
    batcher = FrameBatcher(estimator, max_crops=6, max_frames=8, max_wait_s=60.0)
    out = []
    for index, (image, boxes) in enumerate(frames):
        out += batcher.add(index, image, boxes)
    assert len(out) < len(frames)  # some frames were held back...
    out += batcher.flush()  # ...and the end of the stream releases them
    assert [key for key, _, _ in out] == list(range(len(frames)))
    assert batcher.pending_frames == 0 and batcher.flush() == []
    for (index, keypoints, scores), (image, boxes) in zip(out, frames):
        alone, alone_scores = estimator.estimate(image, boxes)  # the per-frame call, same estimator
        assert keypoints.shape == (len(boxes), 17, 2) and scores.shape == (len(boxes), 17)
        np.testing.assert_allclose(keypoints, alone, atol=1e-3, err_msg=f"frame {index}")
        np.testing.assert_allclose(scores, alone_scores, atol=1e-5)
    if estimator_kind == "device":
        batches = estimator.batches[: batcher.batches_run]
        assert sum(batches) == 18 and len(batches) < 10  # fewer model calls than frames
        assert max(batches) <= 6  # never past max_crops (no single frame holds more)


def test_a_batch_runs_when_full_when_old_or_when_it_holds_max_frames(backend, frames):
    now = [0.0]
    batcher = FrameBatcher(CountingEstimator(backend), max_crops=5, max_frames=3, max_wait_s=1.0,
                           clock=lambda: now[0])  # fmt: skip
    image, boxes = frames[0]  # 2 people
    assert batcher.add("a", image, boxes) == [] and batcher.add("b", image, boxes) == []  # 4 crops held
    done = batcher.add("c", image, boxes)  # 4 + 2 > 5: a and b run first, c waits
    assert [key for key, _, _ in done] == ["a", "b"] and batcher.pending_frames == 1
    now[0] = 0.5
    assert batcher.add("d", *frames[1]) == []  # nobody in d; c is 0.5 s old
    now[0] = 1.2
    done = batcher.add("e", *frames[3])  # c has waited 1.2 s >= 1.0: all three go
    assert [key for key, _, _ in done] == ["c", "d", "e"]
    assert done[1][1].shape == (0, 17, 2)  # the frame without people comes back empty, in its place
    empty = frames[1]
    assert batcher.add("f", *empty) == [] and batcher.add("g", *empty) == []
    assert [key for key, _, _ in batcher.add("h", *empty)] == ["f", "g", "h"]  # max_frames = 3
    with pytest.raises(ValueError, match="positive"):
        FrameBatcher(batcher.estimator, max_crops=0)
