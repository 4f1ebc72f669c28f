"""Batch inputs: files, folders, globs, manifests -> jobs with unique, stable output names."""

import json

import pytest

from posestream.batch.inputs import collect_jobs
from posestream.errors import InputError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_files_folders_and_globs_expand_in_order_without_duplicates(tmp_path):
    a = _touch(tmp_path / "one" / "a.mp4")
    b = _touch(tmp_path / "one" / "b.MOV")
    _touch(tmp_path / "one" / "notes.txt")  # not a video suffix: a folder does not contribute it
    c = _touch(tmp_path / "two" / "deep" / "c.mkv")
    odd = _touch(tmp_path / "odd.txt")  # named explicitly: taken as a video whatever its suffix
    jobs = collect_jobs([str(tmp_path / "one"), str(tmp_path / "two" / "**" / "*.mkv"), str(a), str(odd)])
    assert [(j.source, j.name) for j in jobs] == [(a, "a"), (b, "b"), (c, "c"), (odd, "odd")]
    assert all(j.overrides == () for j in jobs)


def test_same_stem_in_two_folders_gets_two_names_that_do_not_depend_on_order(tmp_path):
    x = _touch(tmp_path / "day1" / "clip.mp4")
    y = _touch(tmp_path / "day2" / "clip.mp4")
    first = {j.source: j.name for j in collect_jobs([str(x), str(y)])}
    second = {j.source: j.name for j in collect_jobs([str(y), str(x), str(_touch(tmp_path / "z.mp4"))])}
    assert first[x] != first[y] and all(n.startswith("clip-") and len(n) == len("clip-") + 8 for n in first.values())
    assert first == {k: v for k, v in second.items() if k in first}  # resume finds the same folders


def test_names_are_safe_folder_names_and_avoid_the_summary_files(tmp_path):
    weird = _touch(tmp_path / ".hidden clip (1).mp4")
    summary = _touch(tmp_path / "summary.json.mp4")
    names = [j.name for j in collect_jobs([str(weird), str(summary)])]
    assert names == ["hidden_clip_1_", "summary.json-video"]


def test_csv_manifest_paths_relative_to_it_names_and_per_video_options(tmp_path):
    _touch(tmp_path / "videos" / "a.mp4")
    _touch(tmp_path / "videos" / "b.mp4")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,name,source.max_frames,smooth.filter\n"
                        "videos/a.mp4,first,10,kalman\n"
                        "videos/b.mp4,,,\n")  # fmt: skip
    jobs = collect_jobs([str(manifest)])
    assert [(j.source.name, j.name, j.options()) for j in jobs] == [
        ("a.mp4", "first", {"source.max_frames": 10, "smooth.filter": "kalman"}),
        ("b.mp4", "b", {}),
    ]


def test_jsonl_manifest(tmp_path):
    video = _touch(tmp_path / "a.mp4")
    manifest = tmp_path / "list.jsonl"
    manifest.write_text(json.dumps({"path": str(video), "tracker.enabled": False}) + "\n\n")
    (job,) = collect_jobs([str(manifest)])
    assert (job.source, job.name, job.options()) == (video, "a", {"tracker.enabled": False})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nx\n", "header with a 'path' column"),
        ("path\nmissing.mp4\n", "line 2: video 'missing.mp4' does not exist"),
        ("path,colour\na.mp4,red\n", "column 'colour' is not a config key"),
        ("path,output.video\na.mp4,o.mp4\n", "'output.video' is set by batch"),
        ("path,name\na.mp4,same\nb.mp4,same\n", "names 'same' for more than one video"),
        ("path\n", "lists no videos"),
    ],
)
def test_bad_csv_manifests_are_one_line_input_errors(tmp_path, text, message):
    _touch(tmp_path / "a.mp4")
    _touch(tmp_path / "b.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        collect_jobs([str(manifest)])
    assert "\n" not in str(info.value)


def test_bad_jsonl_line_names_the_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.mp4"\n')
    with pytest.raises(InputError, match=r"m.jsonl' line 1: not valid JSON"):
        collect_jobs([str(manifest)])


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nope.mp4", "input 'nope.mp4' does not exist"), ("*.nothing", "matches no files"), (".", "holds no video")],
)
def test_missing_inputs_are_input_errors(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        collect_jobs([spec])
