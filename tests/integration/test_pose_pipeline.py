"""The full top-down pipeline on real clips: YOLOX-Nano -> ByteTrack -> ViTPose-S (ONNX) -> smoothing."""

import json

import numpy as np
import pytest

from posestream import cli
from posestream.app import build_pipeline
from posestream.config import load_config


@pytest.fixture(scope="module")
def detector(shared):
    return shared / "models" / "yolox_nano_coco.onnx"


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_batched_model_call_per_frame_and_keypoints_in_frame_pixels(shared, detector, vitpose_s_onnx, tmp_path):
    out_json = tmp_path / "o.jsonl"
    config = load_config(None, [f"detector.model={detector}", f"pose.model={vitpose_s_onnx}",
                                f"output.json={out_json}", "smooth.filter=none"])  # fmt: skip
    pipeline = build_pipeline(str(shared / "media" / "mmpose_demo.mp4"), config)
    assert cli.execute(pipeline) == 0
    records = _records(out_json)
    assert len(records) == 5
    people = [len(r["people"]) for r in records]
    assert min(people) >= 3  # a crowd: several people per frame...
    assert pipeline.extras["estimator"].model_calls == 5  # ...and exactly one model call per frame
    for r in records:
        assert r["random_weights"] is True
        for person in r["people"]:
            kps = np.array(person["keypoints"], dtype=float)
            assert kps.shape == (17, 3)
            # Keypoints come from heatmaps over the crop (box widened to 3:4, then x1.25), mapped
            # back to frame pixels: they must land inside that crop region (give or take the
            # DARK step, at most 2 heatmap px = 2/48 of the crop width).
            x1, y1, x2, y2 = person["box_xyxy"]
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            w, h = max(w, 0.75 * h) * 1.25, max(h, w / 0.75) * 1.25
            assert np.all(np.abs(kps[:, 0] - cx) <= w / 2 * (1 + 4 / 48))
            assert np.all(np.abs(kps[:, 1] - cy) <= h / 2 * (1 + 4 / 64))
            assert person["track_id"] >= 1


def test_cli_run_with_pose_model_only_uses_whole_frame(shared, vitpose_s_onnx, tmp_path, capsys):
    out_json, out_csv = tmp_path / "o.jsonl", tmp_path / "o.csv"
    code = cli.main(["run", str(shared / "media" / "mmpose_demo.mp4"), "--pose-model", str(vitpose_s_onnx),
                     "--out-json", str(out_json), "--out-csv", str(out_csv)])  # fmt: skip
    assert code == 0
    records = _records(out_json)
    assert [len(r["people"]) for r in records] == [1] * 5  # fallback: one box = the frame
    assert records[0]["people"][0]["box_xyxy"] == [0.0, 0.0, 960.0, 540.0]
    assert "RANDOM WEIGHTS" in capsys.readouterr().err
    header = out_csv.read_text().splitlines()[0]
    assert header.endswith("random_weights")


def test_run_with_variant_and_random_weights_through_pytorch(shared, tmp_path, capsys):
    out_json = tmp_path / "o.jsonl"
    code = cli.main(["run", str(shared / "media" / "mmpose_demo.mp4"), "--variant", "s", "--weights", "none",
                     "--detector", str(shared / "models" / "yolox_nano_coco.onnx"), "--max-frames", "2",
                     "--out-json", str(out_json)])  # fmt: skip
    assert code == 0
    records = _records(out_json)
    assert len(records) == 2 and all(r["random_weights"] for r in records)
    assert all(len(p["keypoints"]) == 17 for r in records for p in r["people"]) and records[0]["people"]
    assert "RANDOM WEIGHTS" in capsys.readouterr().err
