"""`posestream batch` input errors: one line, exit 2, nothing written, before Ray starts."""

import pytest

from posestream import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing.mp4"], "input '{tmp}/missing.mp4' does not exist"),
        (["{video}", "--outputs", "json,gif"], "--outputs 'json,gif': expected a comma-separated subset"),
        (["{video}", "--cpus-per-task", "0"], "--cpus-per-task must be > 0"),
        (["{manifest}"], "line 2: unknown config key 'tracker.lost_track_bufer'"),
        (["{video}", "--set", "smooth.filter=gauss"], "smooth.filter: expected one of"),
        (["{video}", "--address", "127.0.0.1:9"], "--address '127.0.0.1:9': nothing answers there"),
        (["{video}", "--workers", "2", "--address", "127.0.0.1:9"], "--workers sizes a local Ray"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(make_video, tmp_path, capsys, args, message):
    video = make_video(n=2)
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path,tracker.lost_track_bufer\n{video},3\n")
    fill = {"tmp": tmp_path, "video": video, "manifest": manifest}
    out = tmp_path / "out"
    code = cli.main(["batch", *[a.format(**fill) for a in args], "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message.format(**fill) in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_folder_in_the_way_is_never_replaced(make_video, tmp_path, capsys):
    video = make_video(n=2)
    (tmp_path / "out" / video.stem).mkdir(parents=True)
    (tmp_path / "out" / video.stem / "notes.txt").write_text("mine")
    assert cli.main(["batch", str(video), "--out-dir", str(tmp_path / "out")]) == 2
    assert "exists and is not a batch result" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == [video.stem]
    assert (tmp_path / "out" / video.stem / "notes.txt").read_text() == "mine"
