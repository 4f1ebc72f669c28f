"""Progress lines for a non-terminal stderr, and the list of written files."""

import io

import pytest

from posestream.progress import LineProgress, format_duration, format_size, written_files


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_line_every_few_seconds_with_frames_fps_and_eta():
    clock, out = Clock(), io.StringIO()
    p = LineProgress(200, out, every_s=5.0, clock=clock)
    for second in range(1, 13):  # 10 frames a second for 12 s
        clock.t += 1.0
        p.update(10 * second)
    p.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "posestream: 50/200 frames (25%), 10.0 fps, eta 15 s",
        "posestream: 100/200 frames (50%), 10.0 fps, eta 10 s",
        "posestream: 120/200 frames (60%), 10.0 fps, eta 8 s",  # close(): the final count
    ]


def test_live_sources_have_no_total_and_no_eta():
    clock, out = Clock(), io.StringIO()
    p = LineProgress(None, out, every_s=1.0, clock=clock)
    clock.t += 2.0
    p.update(50)
    p.close()  # nothing new since the last line: silent
    assert out.getvalue() == "posestream: 50 frames, 25.0 fps\n"
    with pytest.raises(ValueError):
        LineProgress(None, out, every_s=-1)


def test_sizes_durations_and_written_files(tmp_path):
    assert [format_size(n) for n in (12, 1234, 12_345_678, 3 * 10**9)] == ["12 B", "1.2 kB", "12.3 MB", "3.0 GB"]
    assert [format_duration(s) for s in (4.4, 75, 3725)] == ["4 s", "1 min 15 s", "1 h 02 min"]
    (tmp_path / "a.jsonl").write_text("x" * 10)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "1.jpg").write_bytes(b"y" * 5)
    (tmp_path / "imgs" / "2.jpg").write_bytes(b"y" * 7)
    found = written_files([tmp_path / "a.jsonl", tmp_path / "missing.csv", tmp_path / "imgs"])
    assert found == [(tmp_path / "a.jsonl", 10, 1), (tmp_path / "imgs", 12, 2)]
