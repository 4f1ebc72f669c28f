"""The Python API on a real clip with the real YOLOX and a (random-weight) ViTPose-S ONNX:
``posestream.track`` stops cleanly when the loop breaks and agrees with ``posestream run``;
``PoseTracker`` on frames read by the user agrees with the graph; the README quick start runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import posestream
from posestream import cli
from posestream.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(shared, vitpose_s_onnx):
    return {"pose": vitpose_s_onnx, "detector": shared / "models" / "yolox_nano_coco.onnx"}


@pytest.fixture(scope="module")
def clip(shared):
    return shared / "media" / "pose2sim_multiperson_cam01.mp4"


@pytest.fixture(scope="module")
def broken_loop(clip, models):
    """Results of a loop that breaks after 10 frames, and the threads alive after it that were not
    before it. A stream built and closed unstarted first imports what the run imports (OpenVINO's
    import starts an idle telemetry pool thread, which is no thread of the loop's)."""
    posestream.track(clip, **models).close()
    before = {t.ident for t in threading.enumerate()}
    results = []
    for r in posestream.track(clip, **models):
        results.append(r)
        if len(results) == 10:
            break
    after = [t for t in threading.enumerate() if t.ident not in before]
    return results, after


def people(record_or_result):
    if isinstance(record_or_result, dict):
        return [(p["track_id"], np.array(p["keypoints"], float)) for p in record_or_result["people"]]
    return [(p.track_id, np.concatenate([p.keypoints, p.scores[:, None]], axis=1)) for p in record_or_result.people]


def test_breaking_the_loop_stops_every_thread_and_gives_what_run_gives(broken_loop, clip, models, tmp_path):
    results, new_threads = broken_loop
    assert new_threads == [], f"threads left running: {[t.name for t in new_threads]}"
    assert [r.index for r in results] == list(range(10))
    assert sum(len(r.people) for r in results) >= 10  # people were found: the comparison below means something

    out = tmp_path / "run.jsonl"
    code = cli.main(["run", str(clip), "--detector", str(models["detector"]), "--pose-model", str(models["pose"]),
                     "--max-frames", "10", "--out-json", str(out)])  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 10
    for rec, res in zip(records, results):
        assert rec["frame"] == res.index and rec["pts"] == res.pts
        a, b = people(rec), people(res)
        assert [tid for tid, _ in a] == [tid for tid, _ in b]
        for (_, ka), (_, kb) in zip(a, b):
            np.testing.assert_allclose(ka, kb, atol=1e-3)  # the file keeps 3 decimals
        assert res.keypoint_names == posestream.api.COCO_KEYPOINTS and res.image.shape == (1920, 1088, 3)


def test_pose_tracker_on_frames_read_by_the_user_gives_the_graphs_ids(broken_loop, clip, models):
    graph_results, _ = broken_loop
    ids_graph = [[p.track_id for p in r.people] for r in graph_results]
    assert len({tid for ids in ids_graph for tid in ids}) >= 2  # several people: ids could be confused
    with posestream.PoseTracker(**models) as tracker, av.open(str(clip)) as container:
        for frame, expected in zip(container.decode(container.streams.video[0]), graph_results):
            r = tracker(frame.to_ndarray(format="bgr24"), t=float(frame.time))
            assert [p.track_id for p in r.people] == [p.track_id for p in expected.people], r.index
            for p, q in zip(r.people, expected.people):
                np.testing.assert_allclose(p.keypoints, q.keypoints, atol=1e-4)
                np.testing.assert_allclose(p.box_xyxy, q.box_xyxy, atol=1e-4)


def test_results_convert_and_draw_themselves(broken_loop):
    r = next(r for r in broken_loop[0] if r.people)
    d = json.loads(r.to_json())
    assert d["frame"] == r.index and len(d["people"]) == len(r.people) and len(d["keypoint_names"]) == 17
    assert len(d["people"][0]["keypoints"]) == 17 and len(d["people"][0]["box_xyxy"]) == 4
    original = r.image.copy()
    drawn = r.draw()
    assert drawn.shape == r.image.shape and np.array_equal(r.image, original)  # drawn on a copy
    assert np.count_nonzero(np.abs(drawn.astype(int) - r.image).sum(axis=2)) > 500  # skeletons and boxes
    on_black = r.draw(np.zeros_like(r.image)).any(axis=2)
    near = np.zeros_like(on_black)
    for p in r.people:  # box and drawn keypoints, with room for the id label above and line widths
        pts = np.concatenate([p.box_xyxy.reshape(2, 2), p.keypoints[p.scores >= 0.3]])
        (x1, y1), (x2, y2) = pts.min(axis=0).astype(int), pts.max(axis=0).astype(int)
        near[max(y1 - 80, 0) : y2 + 40, max(x1 - 40, 0) : x2 + 40] = True
    assert on_black[near].any() and not on_black[~near].any()


def test_bad_settings_raise_at_the_call(clip, tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'lost_buffer'"):
        posestream.track(clip, lost_buffer=3)
    with pytest.raises(ConfigError, match="tracker.lost_track_buffer"):
        posestream.track(clip, tracker={"lost_track_buffer": "long"})
    with pytest.raises(InputError, match="does not exist"):
        posestream.track(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="increase"):
        with posestream.PoseTracker(pose="none", detector="none") as tracker:  # no model: only the checks
            tracker(np.zeros((32, 32, 3), np.uint8), t=1.0)
            tracker(np.zeros((32, 32, 3), np.uint8), t=1.0)


def quick_start() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert block, "README has no Python quick start under '## Python API'"
    return block.group(1)


def test_readme_quick_start_runs(shared, models, tmp_path):
    code = quick_start()
    assert len(code.strip().splitlines()) == 5
    with av.open(str(shared / "media" / "pose2sim_singleperson_cam01.mp4")) as src, \
            av.open(str(tmp_path / "clip.mp4"), "w") as dst:  # fmt: skip
        stream = dst.add_stream("libx264", rate=60)
        stream.width, stream.height, stream.pix_fmt = 540, 960, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 60)
        for i, frame in enumerate(src.decode(src.streams.video[0])):
            if i == 4:
                break
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24")[::2, ::2].copy(), format="bgr24")
            out.pts, out.time_base = i, Fraction(1, 60)
            for packet in stream.encode(out):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    (tmp_path / "vitpose-s.onnx").symlink_to(models["pose"])
    (tmp_path / "yolox_nano_coco.onnx").symlink_to(models["detector"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"{i} ") for i, line in enumerate(lines)), lines
    assert "array([" in proc.stdout  # somebody's nose was printed
    assert sorted(p.name for p in tmp_path.glob("frame*.png")) == [f"frame{i}.png" for i in range(4)]
