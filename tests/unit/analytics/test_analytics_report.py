"""Angles report: JSON Lines reader, CSV columns and rows, one PNG per track."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from posestream.analytics.angles import angle_names
from posestream.analytics.report import (
    PoseRecord, csv_columns, plot_angles, read_keypoints_jsonl, track_angles, write_angles_csv,
)
from posestream.errors import InputError


def person(track_id: int, knee_bend: float, score: float = 0.9) -> dict:
    """A standing person whose left shank swings out by ``knee_bend`` px; extra keys as the lead may add."""
    kp = np.array([[150, 60]] * 5 + [[160, 100], [140, 100], [160, 150], [140, 150], [160, 190], [140, 190],
                                     [160, 200], [140, 200], [160, 300], [140, 300], [160 + knee_bend, 400],
                                     [140, 400]], np.float64)
    kps = np.concatenate([kp, np.full((17, 1), score)], axis=1)
    return {"track_id": track_id, "box_xyxy": [0, 0, 300, 420], "keypoints": kps.tolist(), "extra": 1}


def write_jsonl(path: Path) -> None:
    lines = []
    for i in range(30):
        people = [person(1, 3.0 * i)]
        if not 10 <= i < 13:  # track 2 missing for three frames
            people.append(person(2, 0.0, score=0.1 if i == 20 else 0.9))
        people.append(person(-1, 0.0))  # untracked: skipped
        lines.append(json.dumps({"frame": i, "pts": i / 30.0, "people": people, "new_field": "x"}))
    lines.insert(5, "")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def records(tmp_path: Path) -> list[PoseRecord]:
    write_jsonl(tmp_path / "kp.jsonl")
    return read_keypoints_jsonl(tmp_path / "kp.jsonl")


def test_reader(records):
    assert len(records) == 30 + 27 + 30
    r = records[0]
    assert (r.frame, r.pts, r.track_id) == (0, 0.0, 1)
    assert r.keypoints.shape == (17, 2) and r.scores.shape == (17,)


def test_csv_columns_and_rows(records, tmp_path):
    n = write_angles_csv(records, tmp_path / "out" / "angles.csv", threshold=0.3)
    with (tmp_path / "out" / "angles.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == csv_columns()
    assert rows[0][:3] == ["frame", "pts", "track_id"] and len(rows[0]) == 3 + 2 * len(angle_names())
    assert n == len(rows) - 1 == 30 + 27  # one row per frame and tracked person
    keys = [(int(r[0]), int(r[2])) for r in rows[1:]]
    assert keys == sorted(keys)
    col = rows[0].index("left_knee_deg")
    by_key = {(int(r[0]), int(r[2])): r for r in rows[1:]}
    assert float(by_key[(0, 1)][col]) == pytest.approx(180.0)
    assert float(by_key[(10, 1)][col]) < 180.0
    assert by_key[(20, 2)][col] == ""  # low scores: NaN written as an empty cell
    assert float(by_key[(5, 1)][rows[0].index("left_knee_deg_s")]) < 0  # the knee is bending


def test_smoothing_option_and_duplicates(records):
    raw = track_angles(records)[1].angles["left_knee"]
    smooth = track_angles(records, smooth_cutoff_hz=2.0)[1].angles["left_knee"]
    assert raw.shape == smooth.shape == (30,) and not np.allclose(raw, smooth)
    with pytest.raises(ValueError, match="twice"):
        track_angles(records + [records[0]])


def test_plot_writes_one_png_per_track(records, tmp_path):
    paths = plot_angles(records, tmp_path / "plots")
    assert [p.name for p in paths] == ["angles_track_1.png", "angles_track_2.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_bad_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"frame": 0, "pts": 0.0, "people": []}) + "\n{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:2"):
        read_keypoints_jsonl(path)
    path.write_text(json.dumps({"frame": 0, "pts": 0.0, "people": [{"track_id": 1, "keypoints": [[1, 2]]}]}))
    with pytest.raises(InputError, match="x, y, score"):
        read_keypoints_jsonl(path)
    with pytest.raises(InputError, match="cannot read"):
        read_keypoints_jsonl(tmp_path / "missing.jsonl")


def _rotating(tmp_path: Path, turns: float = 3.0, n: int = 90) -> list[PoseRecord]:
    """A person whose trunk turns ``turns`` full circles (clockwise in the image) over n frames at 30 fps."""
    recs = []
    for i in range(n):
        theta = np.radians(360.0 * turns * i / n)  # lean angle, grows past 180 many times
        hip = np.array([200.0, 200.0])
        up = np.array([np.sin(theta), -np.cos(theta)]) * 80  # image up = -y; +x = positive lean
        kp = np.tile(hip, (17, 1))
        kp[[5, 6]] = hip + up + [[-5, 0], [5, 0]]  # shoulders
        kp[[11, 12]] = hip + [[-5, 0], [5, 0]]  # hips
        recs.append(PoseRecord(i, i / 30.0, 1, kp, np.full(17, 0.9)))
    return recs


def test_trunk_lean_is_wrapped_and_its_velocity_has_no_wrap_spikes(tmp_path):
    ta = track_angles(_rotating(tmp_path))[1]
    lean, speed = ta.angles["trunk_lean"], ta.velocities["trunk_lean"]
    assert np.all((lean > -180.0) & (lean <= 180.0))  # reported wrapped, never -1,054 deg
    assert np.sum(np.abs(np.diff(lean)) > 180) == 3  # it crossed +-180 once per turn
    expected = 360.0 * 3.0 / (90 / 30.0)  # deg/s of the constant rotation
    np.testing.assert_allclose(speed, expected, rtol=1e-6)  # from the continuous series: no spikes
    n = write_angles_csv(_rotating(tmp_path), tmp_path / "a.csv")
    with (tmp_path / "a.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert n == 90 and all(-180 < float(r["trunk_lean_deg"]) <= 180 for r in rows)


def test_plot_shows_angular_velocity_and_says_when_a_panel_has_no_data(records):
    from posestream.analytics.report import NO_DATA_NOTE, track_figure

    good = track_figure(track_angles(records)[1])
    top, middle, bottom = good.axes
    assert "velocity" in middle.get_ylabel() and len(middle.get_lines()) >= 8
    assert not any(t.get_text() for ax in good.axes for t in ax.texts)
    low = [PoseRecord(r.frame, r.pts, r.track_id, r.keypoints, r.scores * 0.1) for r in records]
    empty = track_figure(track_angles(low, threshold=0.3)[1], threshold=0.3)
    notes = [t.get_text() for ax in empty.axes for t in ax.texts]
    assert notes == [NO_DATA_NOTE.format(threshold=0.3)] * 3 == ["no keypoints above threshold 0.3"] * 3


def test_tracking_only_json_is_accepted_with_a_clear_note(tmp_path, capsys):
    from posestream.analytics.cli import write_angle_report

    path = tmp_path / "boxes.jsonl"
    lines = [{"frame": i, "pts": i / 30, "people": [{"track_id": 1, "box_xyxy": [0, 0, 9, 9], "box_score": 0.8,
                                                       "keypoints": []}]} for i in range(5)]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    csv_path, plots, rows = write_angle_report(path, tmp_path / "report")
    err = capsys.readouterr().err
    assert "boxes and track ids only (a tracking-only run" in err and len(err.splitlines()) == 1
    assert rows == 5 and len(plots) == 1
    with csv_path.open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["track_id"] for r in table] == ["1"] * 5 and all(r["left_knee_deg"] == "" for r in table)
