"""Keypoint writers for any K: the header names the set's keypoints and every row is as long."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from posestream.io.writers import KeypointCsvWriter, KeypointJsonlWriter
from posestream.keypoints import get_keypoint_set
from posestream.types import Poses, Tracks


def poses(n: int, k: int) -> Poses:
    rng = np.random.default_rng(k)
    kp = rng.random((n, k, 2), dtype=np.float32) * 100
    kp[:1, 3] = np.nan  # a lost keypoint: an empty cell, never a shorter row
    return Poses(kp, rng.random((n, k), dtype=np.float32), np.tile(np.float32([1, 2, 30, 40]), (n, 1)),
                 np.arange(n, dtype=np.int64))  # fmt: skip


@pytest.mark.parametrize("name", ["wholebody", "aic", "coco_25"])
def test_csv_rows_and_header_have_equal_length_for_any_k(tmp_path, name):
    kset = get_keypoint_set(name)
    writer = KeypointCsvWriter(tmp_path / "k.csv", kset, random_weights=True)
    writer.write(0, 0.0, poses(3, kset.num_keypoints))
    writer.write(1, 0.04, poses(0, kset.num_keypoints))
    writer.close()
    rows = list(csv.reader((tmp_path / "k.csv").open()))
    assert len(rows) == 1 + 3
    assert {len(r) for r in rows} == {8 + 3 * kset.num_keypoints + 1}
    assert rows[0][8:11] == [f"{kset.keypoints[0]}_x", f"{kset.keypoints[0]}_y", f"{kset.keypoints[0]}_score"]
    assert rows[0][-2] == f"{kset.keypoints[-1]}_score" and rows[0][-1] == "random_weights"
    assert rows[1][8 + 3 * 3] == ""  # the NaN keypoint


def test_jsonl_names_the_set_and_lists_names_once(tmp_path):
    wb = get_keypoint_set("wholebody")
    writer = KeypointJsonlWriter(tmp_path / "k.jsonl", keypoint_set=wb)
    for i in range(3):
        writer.write(i, i / 25, poses(2, 133))
    writer.close()
    lines = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert lines[0]["keypoint_names"] == list(wb.keypoints) and len(lines[0]["keypoint_names"]) == 133
    assert all(line["keypoint_set"] == "wholebody" for line in lines) and "keypoint_names" not in lines[2]
    assert all(len(p["keypoints"]) == 133 for line in lines for p in line["people"])


def test_poses_of_another_set_are_refused(tmp_path):
    writer = KeypointCsvWriter(tmp_path / "k.csv", get_keypoint_set("coco"))
    with pytest.raises(
        ValueError, match="poses have 133 keypoints, the file was opened for keypoint set coco"
    ):
        writer.write(0, 0.0, poses(1, 133))
    writer.close()
    boxes_only = KeypointCsvWriter(tmp_path / "b.csv", None)
    tracks = Tracks(np.float32([[1, 2, 30, 40]]), np.float32([0.9]), np.int64([7]))
    boxes_only.write(0, 0.0, Poses.from_tracks(tracks))
    boxes_only.close()
    rows = list(csv.reader((tmp_path / "b.csv").open()))
    assert rows[0] == ["frame", "pts", "track_id", "x1", "y1", "x2", "y2", "box_score"] and len(rows[1]) == 8
