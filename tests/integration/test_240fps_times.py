"""A 240 fps clip made with PyAV keeps exact frame times in every output of a run: keypoints JSON
Lines and CSV, the video, rep events, the angles CSV, and the biomechanics TRC, MOT and CSV
(1/240 s has no short decimal form, so any rounding on the way shows as a mismatch)."""

from __future__ import annotations

import csv
import json
from fractions import Fraction

import av
import numpy as np
from opensim_readers import assert_times_exact, read_mot, read_trc
from synthetic_motion import squat_keypoints_for_clip

from posestream import cli


def make_240fps_clip(path, n: int) -> list[float]:
    """An H.264 MP4 at 240 fps (codec time base 1/240), written with PyAV; returns the decoded times."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=240)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 240)
        stream.options = {"bf": "0", "preset": "ultrafast"}
        for i in range(n):
            image = np.full((480, 640, 3), 30 + (i % 50), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, 240)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(container.streams.video[0])]


def test_every_output_keeps_the_exact_frame_times_at_240fps(tmp_path):
    clip = tmp_path / "squat240.mp4"
    times = make_240fps_clip(clip, 336)  # 1.4 s
    assert len(times) == 336 and times[1] == 1 / 240  # PyAV's own reading: what every output must match
    kp = tmp_path / "earlier.jsonl"
    squat_keypoints_for_clip(kp, times, [80, 100], period_s=0.5, hold_s=0.1)
    out = {name: tmp_path / name for name in ("o.jsonl", "o.csv", "o.mp4", "reps.jsonl", "angles", "bio")}
    code = cli.main(["run", str(clip), "--keypoints-from", str(kp), "--smooth", "none", "--exercise", "squat",
                     "--out-json", str(out["o.jsonl"]), "--out-csv", str(out["o.csv"]), "--out-video",
                     str(out["o.mp4"]), "--out-reps", str(out["reps.jsonl"]), "--out-angles", str(out["angles"]),
                     "--out-biomech", str(out["bio"]), "--person-height", "1.75"])  # fmt: skip
    assert code == 0

    assert [json.loads(x)["pts"] for x in out["o.jsonl"].read_text().splitlines()] == times
    with open(out["o.csv"], newline="") as fh:
        assert [float(r["pts"]) for r in csv.DictReader(fh)] == times  # one person in every frame
    with av.open(str(out["o.mp4"])) as container:
        assert [float(f.time) for f in container.decode(container.streams.video[0])] == times
    with open(out["angles"] / "angles.csv", newline="") as fh:
        assert [float(r["pts"]) for r in csv.DictReader(fh)] == times
    trc, mot = read_trc(out["bio"] / "track_1.trc"), read_mot(out["bio"] / "track_1.mot")
    assert_times_exact(trc.time, times)
    assert_times_exact(mot.time, times)
    assert trc.header["Units"] == "m" and float(trc.header["DataRate"]) == 240.0
    with open(out["bio"] / "track_1.csv", newline="") as fh:
        assert [float(r["pts"]) for r in csv.DictReader(fh)] == times

    events = [json.loads(x) for x in out["reps.jsonl"].read_text().splitlines()]
    assert [e["rep"] for e in events] == [1, 2] and [e["cues"] for e in events] == [[], ["go deeper"]]
    frame_times = set(times)
    assert all({e["pts_start"], e["pts_turn"], e["pts"]} <= frame_times for e in events)
