"""Issue 10, cases 10 and 11 through the CLI: values that ended in tracebacks or were accepted
silently are one-line errors with exit code 2, before anything is written."""

from __future__ import annotations

import pytest
from output_checks import assert_one_line_error, run_args

from posestream import cli


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "detector.detect_every=0"], ["detector.detect_every = 0", "1 <= x <= 1000"]),
        (["--set", "detector.detect_every=-3"], ["detector.detect_every = -3"]),
        (["--set", "tracker.lost_track_buffer=-1"], ["tracker.lost_track_buffer = -1"]),
        (["--set", "pipeline.queue_size=0"], ["pipeline.queue_size = 0"]),
        (["--set", "pipeline.queue_size=-1"], ["pipeline.queue_size = -1"]),
        (["--set", "source.image_fps=0"], ["source.image_fps = 0.0"]),
        (["--set", "source.image_fps=-30"], ["source.image_fps = -30.0"]),
        (["--set", "output.preset=notapreset"], ["output.preset", "veryslow"]),
        (["--set", "pose.threads=-2"], ["pose.threads = -2"]),
        (["--set", "pipeline.shutdown_timeout_s=-1"], ["pipeline.shutdown_timeout_s = -1.0"]),
        (["--set", "output.crf=999"], ["output.crf = 999", "0 <= x <= 51"]),
        (["--set", "render.keypoint_threshold=.nan"], ["render.keypoint_threshold = nan"]),
        (["--max-frames", "0"], ["source.max_frames = 0", "x >= 1"]),
        (["--max-frames", "-5"], ["source.max_frames = -5"]),
        (["--serve", "127.0.0.1:70000"], ["port 70000 is out of range"]),
    ],
)
def test_bad_value_is_a_one_line_error_and_writes_nothing(make_video, tmp_path, capsys, args, fragments):
    src = make_video(n=5)
    out = tmp_path / "o.jsonl"
    code = cli.main(run_args("run", src, "--out-json", out, *args))
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not out.exists()
