"""`posestream run` end to end: real files, real PyAV, real threads, real signals."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import av
import numpy as np
import pytest

from posestream import cli
from posestream.app import build_pipeline
from posestream.config import load_config


def _video_facts(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [float(f.time) for f in c.decode(s)]
        return s.codec_context.name, s.pix_fmt, times


def _source_times(path):
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(c.streams.video[0])]


def test_run_shared_clip_writes_h264_with_source_pts_and_one_json_line_per_frame(shared, tmp_path, capsys):
    src = shared / "media" / "pose2sim_singleperson_cam01.mp4"
    out_video, out_json, out_csv = tmp_path / "o.mp4", tmp_path / "o.jsonl", tmp_path / "o.csv"
    code = cli.main(["run", str(src), "--pose-model", "none", "--out-video", str(out_video), "--out-json",
                     str(out_json), "--out-csv", str(out_csv)])  # fmt: skip
    assert code == 0
    codec, pix, times = _video_facts(out_video)
    assert (codec, pix, len(times)) == ("h264", "yuv420p", 100)
    np.testing.assert_allclose(times, _source_times(src), atol=1e-6)
    lines = out_json.read_text().splitlines()
    assert len(lines) == 100
    records = [json.loads(x) for x in lines]
    assert [r["frame"] for r in records] == list(range(100))
    np.testing.assert_allclose([r["pts"] for r in records], times, atol=1e-5)
    assert "decode" in capsys.readouterr().err  # the per-stage summary table


class RaiseAt:
    name = "faulty"

    def __init__(self, at):
        self.at = at

    def open(self, ctx):
        pass

    def process(self, packet):
        if packet.index == self.at:
            raise RuntimeError("injected failure")
        return packet

    def close(self):
        pass


def test_stage_failure_mid_stream_exits_1_within_2s_and_finalises_outputs(shared, tmp_path, capsys):
    config = load_config(None, [f"output.video={tmp_path / 'o.mp4'}", f"output.json={tmp_path / 'o.jsonl'}"])
    pipeline = build_pipeline(str(shared / "media" / "sports2d_demo.mp4"), config, extra_stages=[RaiseAt(40)])
    t0 = time.monotonic()
    code = cli.guarded(lambda: cli.execute(pipeline))
    assert time.monotonic() - t0 < 2.0 + 1.5  # 2 s budget after the fault, plus the 40 frames before it
    assert code == 1
    err = capsys.readouterr().err
    assert "stage 'faulty' failed at frame 40" in err and "injected failure" in err
    _, _, times = _video_facts(tmp_path / "o.mp4")  # finalised and readable
    assert 0 < len(times) <= 230
    assert all(json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines())


def _wait_for_lines(path, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines in {timeout} s")


def _long_clip(make_video):
    return make_video(n=300, fps=30, size_wh=(320, 240))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_stops_cleanly_and_outputs_stay_readable(make_video, tmp_path, sig):
    src = _long_clip(make_video)  # 10 s of video played in real time
    out_video, out_json = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "posestream", "run", str(src), "--realtime", "--out-video", str(out_video),
         "--out-json", str(out_json), "--pose-model", "none"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_lines(out_json, 15)  # the graph is running: mid-stream, not during start-up
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert re.search(r"video .*o.mp4: \d+ frames, finalised", err) and "stopped early" in err
    codec, _, times = _video_facts(out_video)
    lines = out_json.read_text().splitlines()
    assert codec == "h264" and 10 <= len(times) < 300
    frames = [json.loads(x)["frame"] for x in lines]  # whole lines only
    assert frames == sorted(set(frames))  # live (drop-oldest) may skip frames, never reorder
    assert len(lines) == len(times)  # both sinks saw the same frames: the sinks drain on a stop


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{tmp}/missing.mp4"], "does not exist"),
        (["run", "{text}"], "not a video file, or truncated"),
        (["run", "{truncated}"], "truncated"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--set", "tracker.lost_track_bufer=3"],
         "unknown config key 'tracker.lost_track_bufer'"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--config", "nosuch"], "unknown config 'nosuch'"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--max-frames", "x"], "invalid int value"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--serve", "localhost"], "expected HOST:PORT"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--show"], "use --serve"),
        (["run", "{shared}/media/mmpose_demo.mp4", "--detector", "{text}", "--out-json", "{tmp}/o.jsonl"], "{text}"),
    ],
)
def test_bad_input_exits_2_with_one_line(shared, tmp_path, make_video, args, message, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    full = make_video(n=60)
    truncated = tmp_path / "cut.mp4"
    data = full.read_bytes()
    # The generated file has its index at the end: cutting it keeps the header, loses the index.
    truncated.write_bytes(data[: len(data) // 2])
    fill = {"tmp": tmp_path, "text": text, "truncated": truncated, "shared": shared}
    args = [a.format(**fill) for a in args]
    with pytest.raises(SystemExit) if "invalid int" in message else _nullcontext() as exit_info:
        code = cli.main(args)
    if exit_info is not None:
        code = exit_info.value.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message.format(**fill) in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_serve_flag_serves_frames_and_stats(make_video):
    src = _long_clip(make_video)
    proc = subprocess.Popen(
        [sys.executable, "-m", "posestream", "run", str(src), "--realtime", "--serve", "127.0.0.1:0",
         "--pose-model", "none"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = ""
        deadline = time.monotonic() + 20
        while "live view on" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        url = re.search(r"(http://\S+)", line).group(1)
        time.sleep(1.0)
        stats = json.loads(urllib.request.urlopen(url + "stats.json", timeout=5).read())
        jpeg = urllib.request.urlopen(url + "frame.jpg", timeout=5).read()
        assert jpeg[:2] == b"\xff\xd8"
        assert stats["frame"] > 0 and stats["fps"] > 0
        assert [s["name"] for s in stats["stages"]][:2] == ["decode", "render"]
        assert "capture_to_render" in stats["latency_ms"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 130


def test_info_prints_versions_and_providers(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime providers" in out and "CPUExecutionProvider" in out and "gpu usable" in out


@pytest.mark.skipif(os.name != "posix", reason="module entry point check")
def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "posestream", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("posestream ")
