"""`posestream run CLIP --keypoints-from EARLIER.jsonl`: poses from a file, no model, everything else
as in a normal run (smoothing, rendering, exercise, reports); bad replays are input errors."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from synthetic_motion import squat_keypoints_for_clip

from posestream import cli


def clip_times(path):
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(c.streams.video[0])]


@pytest.fixture(scope="module")
def single(shared):
    return shared / "media" / "pose2sim_singleperson_cam01.mp4"


@pytest.fixture(scope="module")
def earlier(single, tmp_path_factory):
    """An 'earlier run' of the single-person clip (60 fps, 100 frames): two squats made in the test."""
    path = tmp_path_factory.mktemp("replay") / "earlier.jsonl"
    squat_keypoints_for_clip(path, clip_times(single), [80, 85], period_s=0.6, hold_s=0.2, scale=2.0,
                             offset=(200, 700))  # fmt: skip
    return path


def test_replay_reproduces_the_keypoints_and_draws_them(single, earlier, tmp_path):
    out_json, out_video = tmp_path / "again.jsonl", tmp_path / "again.mp4"
    code = cli.main(["run", str(single), "--keypoints-from", str(earlier), "--smooth", "none",
                     "--out-json", str(out_json), "--out-video", str(out_video)])  # fmt: skip
    assert code == 0
    before = [json.loads(x) for x in earlier.read_text().splitlines()]
    after = [json.loads(x) for x in out_json.read_text().splitlines()]
    assert [r["frame"] for r in after] == list(range(100)) and [r["pts"] for r in after] == [r["pts"] for r in before]
    for a, b in zip(before, after):
        assert [p["track_id"] for p in a["people"]] == [p["track_id"] for p in b["people"]] == [1]
        np.testing.assert_allclose(b["people"][0]["keypoints"], a["people"][0]["keypoints"], atol=2e-3)
    # Rendered: the frame differs from the source where the skeleton is drawn.
    with av.open(str(out_video)) as c, av.open(str(single)) as s:
        drawn = next(c.decode(c.streams.video[0])).to_ndarray(format="bgr24").astype(int)
        plain = next(s.decode(s.streams.video[0])).to_ndarray(format="bgr24").astype(int)
    hip = np.array(before[0]["people"][0]["keypoints"][11][:2]).round().astype(int)
    patch = (slice(hip[1] - 6, hip[1] + 7), slice(hip[0] - 6, hip[0] + 7))
    assert np.abs(drawn[patch] - plain[patch]).mean() > 20


def test_replay_re_smooths(single, earlier, tmp_path):
    out = tmp_path / "smoothed.jsonl"
    assert cli.main(["run", str(single), "--keypoints-from", str(earlier), "--smooth", "one_euro",
                     "--out-json", str(out)]) == 0  # fmt: skip
    raw = np.array([json.loads(x)["people"][0]["keypoints"] for x in earlier.read_text().splitlines()])
    smooth = np.array([json.loads(x)["people"][0]["keypoints"] for x in out.read_text().splitlines()])
    jitter = lambda k: np.abs(np.diff(k[:, :, :2], n=2, axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < 0.8 * jitter(raw)  # the noise added in the test is filtered again
    np.testing.assert_allclose(smooth[:, :, 2], raw[:, :, 2], atol=5e-4)  # scores untouched (3 decimals)


def test_bad_replays_exit_2_and_never_touch_the_earlier_file(single, earlier, tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    lines = earlier.read_text().splitlines()
    shifted = [json.dumps({**json.loads(x), "pts": json.loads(x)["pts"] + 0.5}) for x in lines]
    other.write_text("\n".join(shifted) + "\n")
    cases = [
        (["--keypoints-from", str(other)], "from another clip"),
        (["--keypoints-from", str(tmp_path / "missing.jsonl")], "cannot read keypoints file"),
        (["--keypoints-from", str(earlier), "--pose-model", str(tmp_path / "m.onnx")], "give no pose model"),
        (["--exercise", "squat", "--keypoints-from", str(earlier), "--out-json", str(earlier)], "overwritten"),
        (["--out-reps", str(tmp_path / "r.jsonl"), "--keypoints-from", str(earlier)], "--out-reps needs --exercise"),
        (["--exercise", "deadlift", "--keypoints-from", str(earlier)], "unknown exercise 'deadlift'"),
    ]
    for args, message in cases:
        code = cli.main(["run", str(single), "--out-json", str(tmp_path / "o.jsonl"), *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (args, err)
    assert earlier.read_text().splitlines() == lines  # the earlier run's file is never touched
