"""Models loaded once and reused across videos (what a batch worker does) give the same outputs."""

from posestream import cli
from posestream.app import build_pipeline, load_models
from posestream.config import apply_overrides, load_config


def test_pipelines_sharing_loaded_models_write_what_fresh_ones_write(shared, vitpose_s_onnx, tmp_path):
    clip = str(shared / "media" / "pose2sim_singleperson_cam01.mp4")
    config = load_config(None, [f"detector.model={shared / 'models' / 'yolox_nano_coco.onnx'}",
                                f"pose.model={vitpose_s_onnx}", "source.max_frames=5"])  # fmt: skip
    models = load_models(config)
    outputs = {}
    for run, shared_models in (("fresh", None), ("reused1", models), ("reused2", models)):
        cfg = apply_overrides(config, {"output.json": str(tmp_path / f"{run}.jsonl")})
        pipeline = build_pipeline(clip, cfg, models=shared_models)
        if shared_models is not None:
            assert pipeline.extras["estimator"].backend is models.pose  # nothing was loaded again
        assert cli.execute(pipeline) == 0
        outputs[run] = (tmp_path / f"{run}.jsonl").read_bytes()
    assert outputs["reused1"] == outputs["fresh"] == outputs["reused2"]
    assert outputs["fresh"].count(b"\n") == 5 and b'"keypoints"' in outputs["fresh"]
