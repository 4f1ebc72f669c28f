"""Reading and writing video with PyAV: pts kept, VFR kept, folders, crash safety."""

import json
import os
import signal
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest

from posestream.errors import InputError
from posestream.io.video import open_source
from posestream.io.writers import KeypointCsvWriter, KeypointJsonlWriter, VideoWriter
from posestream.keypoints import get_keypoint_set
from posestream.types import Poses, Tracks


def _read_times(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.time) for f in c.decode(s)], s.codec_context.name, s.pix_fmt


def test_reader_gives_container_pts_for_variable_frame_rate(make_video):
    path = make_video(n=20, fps=30, vfr=True)
    expected, _, _ = _read_times(path)
    assert len(set(np.round(np.diff(expected), 4))) > 1  # really variable
    with open_source(str(path)) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose([f.pts for f in frames], expected, atol=1e-9)
    assert frames[0].image.shape == (120, 160, 3) and frames[0].image.dtype == np.uint8


def test_writer_roundtrip_keeps_frame_count_and_pts_and_is_h264(make_video, tmp_path):
    src = make_video(n=25, fps=30, vfr=True)
    out = tmp_path / "out.mp4"
    with open_source(str(src)) as reader:
        info = reader.info
        with VideoWriter(out, info.size_wh, fps=info.fps, time_base=info.time_base) as writer:
            for f in reader:
                writer.write(f.image, f.pts)
    times_in, _, _ = _read_times(src)
    times_out, codec, pix = _read_times(out)
    assert codec == "h264" and pix == "yuv420p"
    assert len(times_out) == 25
    np.testing.assert_allclose(times_out, times_in, atol=1e-6)
    with open(out, "rb") as fh:  # +faststart: the index (moov) precedes the media data (mdat)
        head = fh.read(4096)
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_writer_pads_odd_sizes(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, (33, 21), fps=10) as w:
        for i in range(3):
            w.write(np.full((21, 33, 3), 128, np.uint8), i / 10)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (34, 22) and s.frames == 3


def test_killed_writer_leaves_a_playable_video(tmp_path):
    # A child process writes frames forever; SIGKILL gives it no chance to finalise anything.
    out = tmp_path / "killed.mp4"
    code = f"""
import sys, numpy as np
from posestream.io.writers import VideoWriter
w = VideoWriter({str(out)!r}, (64, 48), fps=10)
i = 0
while True:
    w.write(np.full((48, 64, 3), i % 255, np.uint8), i / 10)
    i += 1
    if i == 35:
        print("ready", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    times, codec, _ = _read_times(out)
    assert codec == "h264" and len(times) >= 30  # every complete 1-second fragment survives


def test_image_folder_source(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), np.full((10, 12, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path), image_fps=10) as reader:
        frames = list(reader)
    assert [f.pts for f in frames] == [0.0, 0.1, 0.2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]
    with open_source(str(tmp_path / "img_00[12].png")) as reader:
        assert len(list(reader)) == 2


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: (d / "text.mp4").write_text("hello") and d / "text.mp4", "not a video file, or truncated"),
        (lambda d: d, "matches no image file"),
        (lambda d: d / "*.jpg", "matches no image file"),
    ],
)
def test_bad_sources_raise_input_error(tmp_path, make_bad, message):
    with pytest.raises(InputError, match=message):
        open_source(str(make_bad(tmp_path)))


def test_truncated_video_keeps_every_decodable_frame_and_strict_refuses_it(make_video, tmp_path, caplog):
    # Index at the front (faststart), media cut in half: every frame that can be decoded is read,
    # with a warning; --strict makes it an error instead.
    src = make_video(n=60)
    full = tmp_path / "full.mp4"
    with open_source(str(src)) as r, VideoWriter(full, r.info.size_wh, fps=30, time_base=r.info.time_base) as w:
        for f in r:
            w.write(f.image, f.pts)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as c:  # what FFmpeg itself gets out of the cut file
        s = c.streams.video[0]
        expected = 0
        try:
            for packet in c.demux(s):
                try:
                    expected += len(s.decode(packet))
                except av.FFmpegError:
                    pass
        except av.FFmpegError:
            expected += len(s.decode(None))
    with open_source(str(cut)) as reader:
        frames = list(reader)
        assert reader.truncated
    assert 0 < len(frames) == expected < 60
    assert "truncated" in caplog.text or "cut short" in caplog.text
    with pytest.raises(InputError, match="truncated|cut short"):
        with open_source(str(cut), strict=True) as reader:
            list(reader)


def test_max_frames_limits_reading(make_video):
    with open_source(str(make_video(n=20)), max_frames=5) as reader:
        assert reader.info.frame_count == 5 and len(list(reader)) == 5


def _poses(n, k=17):
    rng = np.random.default_rng(1)
    return Poses(rng.random((n, k, 2), dtype=np.float32) * 100, rng.random((n, k), dtype=np.float32),
                 np.tile(np.float32([1, 2, 30, 40]), (n, 1)), np.arange(n, dtype=np.int64),
                 np.linspace(0.9, 0.5, n, dtype=np.float32))  # fmt: skip


def test_jsonl_and_csv_writers(tmp_path):
    coco = get_keypoint_set("coco")
    jw = KeypointJsonlWriter(tmp_path / "k.jsonl", {"random_weights": True}, coco)
    cw = KeypointCsvWriter(tmp_path / "k.csv", coco)
    for i in range(3):
        jw.write(i, i / 30, _poses(i))
        cw.write(i, i / 30, _poses(i))
    jw.close()
    cw.close()
    lines = [json.loads(x) for x in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == [0, 1, 2] and all(x["random_weights"] for x in lines)
    assert all(x["keypoint_set"] == "coco" for x in lines) and lines[0]["keypoint_names"] == list(coco.keypoints)
    assert "keypoint_names" not in lines[1]
    assert len(lines[2]["people"]) == 2 and len(lines[2]["people"][1]["keypoints"]) == 17
    assert lines[2]["people"][1]["track_id"] == 1
    assert [p["box_score"] for p in lines[2]["people"]] == [0.9, 0.5]  # the detector's score per person
    rows = (tmp_path / "k.csv").read_text().splitlines()
    assert len(rows) == 1 + 0 + 1 + 2 and rows[0].startswith("frame,pts,track_id,x1,y1,x2,y2,box_score,nose_x")
    assert len(rows[0].split(",")) == 8 + 17 * 3
    assert [r.split(",")[7] for r in rows[2:]] == ["0.9", "0.5"]
    unknown = Poses.from_tracks(Tracks.empty()), Poses(*(np.zeros(s, np.float32) for s in [(1, 0, 2), (1, 0), (1, 4)]),
                                                       np.ones(1, np.int64))  # fmt: skip
    assert unknown[0].box_score.shape == (0,) and np.isnan(unknown[1].box_score).all()  # omitted: unknown


def test_output_path_that_is_a_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is an existing folder"):
        KeypointJsonlWriter(tmp_path)
    assert os.path.isdir(tmp_path)


def test_http_url_source_reads_every_frame_from_a_real_server(make_video, tmp_path):
    import functools
    import http.server
    import threading

    # Python's http.server has no Range requests, so serve a +faststart MP4 (index first, readable
    # front to back): what our writer produces, and what web servers hand out.
    src = make_video(n=12, vfr=True)
    served = tmp_path / "www"
    served.mkdir()
    with open_source(str(src)) as r, VideoWriter(served / "clip.mp4", r.info.size_wh, time_base=r.info.time_base) as w:
        for f in r:
            w.write(f.image, f.pts)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with open_source(f"{base}/clip.mp4") as reader:
            assert reader.info.kind == "stream" and reader.info.live is False  # a file over HTTP
            frames = list(reader)
        with open_source(str(served / "clip.mp4")) as local:
            expected = list(local)
        assert len(frames) == 12 and [f.pts for f in frames] == [f.pts for f in expected]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, expected))
        with pytest.raises(InputError, match="cannot open stream"):
            open_source(f"{base}/missing.mp4")
    finally:
        server.shutdown()
        server.server_close()
