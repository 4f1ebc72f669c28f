"""Issue 10, case 7 (and 14): damaged sources are decoded like FFmpeg does, to the end.

A corrupt packet is skipped and counted, the run goes on; a file cut short keeps every frame that
can be decoded (the decoder is flushed); every decoded frame reaches every output, so the video
and the JSON hold the same frames. ``--strict`` fails instead. The reference for "what can be
decoded" is PyAV itself, packet by packet, independent of posestream.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from output_checks import assert_one_line_error, decode_all, digest, encode_frames, parse_jsonl, run_args

from posestream import cli


def _reference_frames(path: Path) -> list[float]:
    """Frame times FFmpeg decodes from ``path`` when it skips what it cannot decode."""
    times = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        try:
            for packet in c.demux(s):
                try:
                    times += [float(f.time) for f in s.decode(packet)]
                except av.FFmpegError:
                    pass
        except av.FFmpegError:
            times += [float(f.time) for f in s.decode(None)]
    return times


def _damaged(make_video, tmp_path: Path, at: float = 0.4, nbytes: int = 600) -> Path:
    src = make_video(n=200)
    data = bytearray(src.read_bytes())
    pos = int(len(data) * at)
    data[pos : pos + nbytes] = np.random.default_rng(1).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    return path


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main(run_args("run", *args))
    return code, capsys.readouterr().err


def _assert_outputs_agree(video: Path, jsonl: Path, expected: list[float]) -> None:
    times = decode_all(video)
    records = parse_jsonl(jsonl)
    assert len(times) == len(records) == len(expected)
    np.testing.assert_allclose(times, expected, atol=1e-6)
    np.testing.assert_allclose([r["pts"] for r in records], expected, atol=1e-5)
    assert [r["frame"] for r in records] == list(range(len(expected)))


def test_garbage_mid_file_is_skipped_and_the_run_reads_to_the_end(make_video, tmp_path, capsys, caplog):
    src = _damaged(make_video, tmp_path)
    before = digest(src)
    expected = _reference_frames(src)
    assert 60 < len(expected) < 200  # really damaged, and frames after the damage exist
    assert expected[-1] > 6.0  # the last second of the clip is there
    out_video, out_json = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--out-video", out_video, "--out-json", out_json)
    assert code == 0, err
    assert "corrupt packet(s) skipped" in err  # the summary says so
    assert "corrupt packet at frame" in caplog.text  # the warnings name the frames
    _assert_outputs_agree(out_video, out_json, expected)
    assert digest(src) == before


def test_strict_fails_at_the_first_corrupt_packet_and_keeps_what_was_written(make_video, tmp_path, capsys):
    src = _damaged(make_video, tmp_path)
    out_video, out_json = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--strict", "--out-video", out_video, "--out-json", out_json)
    assert code == 2
    assert_one_line_error(err, "stage 'decode'", "corrupt packet at frame", "--strict")
    times, records = decode_all(out_video), parse_jsonl(out_json)
    assert 0 < len(times) == len(records) < 200  # the sinks drain: both hold the same frames


def _cut(path: Path, out: Path, keep: float) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def _noise(n: int):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(n))


def _faststart_clip(tmp_path: Path, n: int) -> Path:
    """A noisy H.264 MP4 with its index in front (what web servers hand out)."""
    return encode_frames(tmp_path / "front.mp4", _noise(n), 30, options={"bf": "0", "preset": "ultrafast", "g": "10"},
                         container_options={"movflags": "+faststart"})  # fmt: skip


def _avi_clip(tmp_path: Path, n: int) -> Path:
    return encode_frames(tmp_path / "clip.avi", _noise(n), 25, codec="mpeg4")


@pytest.mark.parametrize("make, keep", [(_faststart_clip, 0.7), (_avi_clip, 0.9)], ids=["mp4", "avi"])
def test_truncated_file_keeps_every_decodable_frame_in_both_outputs(tmp_path, capsys, make, keep):
    full = make(tmp_path, 90)
    src = _cut(full, tmp_path / f"cut{full.suffix}", keep)
    expected = _reference_frames(src)
    assert 30 < len(expected) < 90
    out_video, out_json = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--out-video", out_video, "--out-json", out_json)
    assert code == 0, err
    assert "truncated" in err or "cut short" in err
    _assert_outputs_agree(out_video, out_json, expected)
    code, err = _run(capsys, src, "--strict", "--out-json", tmp_path / "strict.jsonl")
    assert code == 2
    assert_one_line_error(err, "--strict")
