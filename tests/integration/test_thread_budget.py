"""What each inference session and codec of a real run got from the CPU thread budget."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.app import build_pipeline
from posestream.config import load_config


def _threads_granted(pipeline) -> dict[str, int]:
    """Read back from the engines and codecs themselves, not from the plan."""
    graph = pipeline.graph
    detect = next(s for s in graph.stages if s.name == "detect")
    video = next(s for s in graph.stages if s.name == "video")
    return {
        "decode": graph.source.reader.decode_threads,
        "detector": detect.detector.session.threads,
        "pose": pipeline.extras["estimator"].backend.session.threads,
        "encode": video.writer.threads,
    }


# OpenVINO caps INFERENCE_NUM_THREADS at the machine's cores, so a budget above them (8 on the
# 2-core CI machine) is checked on onnxruntime, which takes the count as given.
@pytest.mark.parametrize(("engine", "cores"), [("onnxruntime", 2), ("onnxruntime", 8), ("openvino", 2)])
def test_sessions_and_codecs_get_the_budget(shared, tmp_path, vitpose_s_onnx, cores, engine):
    config = load_config(None, [
        f"pipeline.cores={cores}", f"detector.model={shared / 'models' / 'yolox_nano_coco.onnx'}",
        f"pose.model={vitpose_s_onnx}", f"pose.engine={engine}", f"detector.engine={engine}",
        "pose.precision=fp32", f"output.video={tmp_path / 'o.mp4'}", "source.max_frames=2",
    ])  # fmt: skip
    pipeline = build_pipeline(str(shared / "media" / "mmpose_demo.mp4"), config)
    try:
        granted = _threads_granted(pipeline)
    finally:
        pipeline.graph.source.close()
        for stage in pipeline.graph.stages:
            stage.close()
    assert granted == dict(pipeline.extras["budget"].threads)
    if cores >= len(granted):
        assert sum(granted.values()) == cores  # never oversubscribed
        assert granted["pose"] == max(granted.values())  # the model stage gets most
    else:  # the light consumers keep their floor, the model's pool spans the cores
        assert granted["pose"] == cores and {granted[k] for k in granted if k != "pose"} == {1}
    assert pipeline.resources["threads"].startswith(f"{sum(granted.values())} threads on {cores} cores")


def test_two_pose_workers_give_the_same_frames_in_order(tmp_path, make_video, vitpose_s_onnx):
    """Parallel pose copies (one session each) finish out of order; the graph puts frames back."""
    import json

    from posestream.cli import execute

    video = make_video(n=8, size_wh=(96, 128))
    lines = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.jsonl"
        config = load_config(None, [
            f"pose.model={vitpose_s_onnx}", f"pose.workers={workers}", "pipeline.cores=2",
            f"output.json={out}", "smooth.filter=none",
        ])  # fmt: skip
        pipeline = build_pipeline(str(video), config)
        if workers == 2:
            pose = next(s for s in pipeline.graph.stages if s.name == "pose")
            assert pose.workers == 2
            sessions = [replica.estimator.backend.session for replica in pose.replicas]
            assert sessions[0] is not sessions[1] and [s.threads for s in sessions] == [1, 1]
            assert dict(pipeline.extras["budget"].threads) == {"decode": 1, "pose.0": 1, "pose.1": 1}
        assert execute(pipeline) == 0
        lines[workers] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in lines[2]] == list(range(8))
    for one, two in zip(lines[1], lines[2]):
        a = np.array([p["keypoints"] for p in one["people"]], np.float32)
        b = np.array([p["keypoints"] for p in two["people"]], np.float32)
        np.testing.assert_allclose(a, b, atol=1e-3)
