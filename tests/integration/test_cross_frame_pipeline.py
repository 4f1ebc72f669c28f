"""Cross-frame batching in the running graph: real clip, real YOLOX-Nano, real torch model on the CPU.

The pose model is ``BrightSpotModel`` (heatmaps peak at the brightest 4x4 cell of each crop):
deterministic and batch-invariant, so a batched run must give exactly the keypoints of per-frame
calls. The same device-side estimator runs on CUDA in ``tests/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest

from posestream.app import build_pipeline
from posestream.config import load_config
from posestream.io.video import open_source
from posestream.detection import load_person_detector
from posestream.estimation.device import DeviceTopDownEstimator
from posestream.estimation.frame_batcher import FrameBatcher
from posestream.pipeline.graph import Graph
from posestream.runtime.torch import TorchPoseBackend
from posestream.stages.base import StageBase
from posestream.stages.decode import DecodeSource
from posestream.stages.detect import DetectStage
from posestream.stages.pose import PoseStage

from pose_synthetic import BrightSpotModel  # tests/ is on sys.path


class Collect(StageBase):
    name = "collect"

    def __init__(self) -> None:
        self.packets = []

    def process(self, packet):
        self.packets.append(packet)
        return packet


def run_graph(shared, pose_stage: PoseStage) -> list:
    reader = open_source(str(shared / "media" / "mmpose_demo.mp4"))  # 5 frames, ~10 people each
    detector = load_person_detector(shared / "models" / "yolox_nano_coco.onnx", intra_op_threads=1)
    collect = Collect()
    graph = Graph(DecodeSource(reader, live=False), [DetectStage(detector), pose_stage, collect], capacity=2)
    result = graph.run()
    assert not result.interrupted and not result.stuck
    return collect.packets


def test_batched_frames_come_back_in_order_with_the_keypoints_of_per_frame_calls(shared):
    backend = TorchPoseBackend(BrightSpotModel(), device="cpu")
    per_frame_estimator = DeviceTopDownEstimator(backend)
    per_frame = run_graph(shared, PoseStage(per_frame_estimator))
    estimator = DeviceTopDownEstimator(backend)
    batcher = FrameBatcher(estimator, max_crops=64, max_frames=3, max_wait_s=60.0)
    batched = run_graph(shared, PoseStage(estimator, batcher=batcher))

    assert [p.index for p in batched] == [p.index for p in per_frame] == [0, 1, 2, 3, 4]
    people = [len(p.poses) for p in batched]
    assert min(people) >= 3  # a crowd: several people per frame
    assert (estimator.model_calls, per_frame_estimator.model_calls) == (2, 5)  # frames 0-2 and 3-4 batched
    for one, other in zip(batched, per_frame):
        np.testing.assert_array_equal(one.poses.xyxy, other.poses.xyxy)
        np.testing.assert_allclose(one.poses.keypoints, other.poses.keypoints, atol=1e-3)
        np.testing.assert_allclose(one.poses.scores, other.poses.scores, atol=1e-5)


@pytest.mark.parametrize("live", [False, True])
def test_the_app_batches_across_frames_only_for_lossless_sources(shared, live):
    overrides = ["pose.model=torch:s", "pose.cross_frame=true", "pose.device_pipeline=true", "smooth.filter=none",
                 f"source.live={'true' if live else 'false'}", "source.max_frames=2"]  # fmt: skip
    pipeline = build_pipeline(str(shared / "media" / "mmpose_demo.mp4"), load_config(None, overrides))
    try:
        pose = next(stage for stage in pipeline.graph.stages if stage.name == "pose")
        assert isinstance(pose.estimator, DeviceTopDownEstimator)
        assert (pose.batcher is None) == live  # a live source keeps one call per frame
    finally:
        pipeline.graph.source.close()
