"""The sports preset poses a person from the first frame the detector sees them, not from confirmation."""

import json

import av

from posestream import cli
from posestream.config import load_config
from posestream.detection import load_person_detector


def test_sports_preset_poses_the_athlete_from_the_first_frame_yolox_scores_them(shared, vitpose_s_onnx, tmp_path):
    clip, model = shared / "media" / "sports2d_demo.mp4", shared / "models" / "yolox_nano_coco.onnx"
    threshold = load_config("sports").detector.score_threshold
    detector = load_person_detector(model, score_threshold=threshold)
    with av.open(str(clip)) as c:
        seen = [len(detector.detect(f.to_ndarray(format="bgr24"))) > 0 for _, f in zip(range(12), c.decode(video=0))]
    first = seen.index(True)  # the first frame YOLOX scores the athlete above the preset's threshold
    out = tmp_path / "o.jsonl"
    code = cli.main(["run", str(clip), "--config", "sports", "--detector", str(model), "--pose-model",
                     str(vitpose_s_onnx), "--max-frames", "12", "--out-json", str(out), "-q"])  # fmt: skip
    assert code == 0
    frames = [json.loads(x) for x in out.read_text().splitlines()]
    posed = [f["frame"] for f in frames if any(len(p["keypoints"]) == 17 and p["track_id"] >= 1 for p in f["people"])]
    print(f"first detection at frame {first}; posed frames {posed}")
    assert len(frames) == 12 and posed == list(range(first, 12))  # from that frame on, every frame
    assert {p["track_id"] for f in frames for p in f["people"]} == {1}  # one athlete, one id
    # without backfill ByteTrack reports them only once confirmed, frames later (what the issue saw)
    out2 = tmp_path / "late.jsonl"
    assert cli.main(["run", str(clip), "--config", "sports", "--detector", str(model), "--pose-model", "none",
                     "--max-frames", "12", "--out-json", str(out2), "-q", "--set", "tracker.backfill_s=0"]) == 0
    late = [json.loads(x)["frame"] for x in out2.read_text().splitlines() if json.loads(x)["people"]]
    assert late[0] > first + 3
