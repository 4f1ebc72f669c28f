"""Batch output layout: hidden folder until complete, one rename into place, resume, force, lock."""

import csv
import json

import pytest

from posestream.batch.layout import RECORD_NAME, TMP_DIRNAME, OutputLayout
from posestream.errors import InputError


def test_a_video_appears_only_when_committed_and_is_then_done(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    layout.open()
    folder = layout.begin("clip")
    (folder / "keypoints.jsonl").write_text("{}\n")
    assert not layout.final("clip").exists() and not layout.is_done("clip")
    final = layout.commit("clip", {"status": "done", "frames": 1})
    assert final == tmp_path / "out" / "clip" and layout.is_done("clip")
    assert sorted(p.name for p in final.iterdir()) == [RECORD_NAME, "keypoints.jsonl"]
    assert layout.read_record("clip")["frames"] == 1
    layout.close()
    assert not (tmp_path / "out" / TMP_DIRNAME).exists()


def test_a_new_attempt_starts_from_an_empty_folder_and_close_removes_leftovers(tmp_path):
    layout = OutputLayout(tmp_path)
    layout.open()
    (layout.begin("clip") / "half.mp4").write_bytes(b"partial")  # an attempt that died
    assert list(layout.begin("clip").iterdir()) == []
    layout.close()  # the batch ended with the video unfinished
    assert sorted(p.name for p in tmp_path.iterdir()) == [".posestream-batch.lock"]


def test_force_replaces_a_finished_result_only_once_the_new_one_is_complete(tmp_path):
    layout = OutputLayout(tmp_path)
    layout.open()
    layout.begin("clip")
    layout.commit("clip", {"run": 1})
    new = layout.begin("clip")
    assert layout.read_record("clip") == {"run": 1}  # still there while the new attempt runs
    (new / "video.mp4").write_bytes(b"v2")
    layout.commit("clip", {"run": 2})
    assert layout.read_record("clip") == {"run": 2} and (tmp_path / "clip" / "video.mp4").read_bytes() == b"v2"


def test_a_folder_that_is_not_a_result_is_foreign_and_never_replaced(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "mine.txt").write_text("user data")
    layout = OutputLayout(tmp_path)
    assert layout.foreign("clip") and not layout.foreign("other")
    layout.open()
    layout.begin("clip")
    with pytest.raises(FileExistsError):
        layout.commit("clip", {})
    assert (tmp_path / "clip" / "mine.txt").read_text() == "user data"


def test_one_batch_per_out_dir(tmp_path):
    first, second = OutputLayout(tmp_path), OutputLayout(tmp_path)
    first.open()
    with pytest.raises(InputError, match="another posestream batch is writing into"):
        second.open()
    first.close()
    second.open()
    second.close()


def test_summary_json_and_csv(tmp_path):
    layout = OutputLayout(tmp_path)
    rows = [{"name": "a", "status": "done", "frames": 3, "fps": 1.5, "people": 2, "wall_s": 2.0, "attempts": 1,
             "error": None, "source": "/v/a.mp4", "worker_pid": 7},
            {"name": "b", "status": "failed", "frames": 0, "fps": None, "people": None, "wall_s": 0.1,
             "attempts": 1, "error": "cannot open file 'b.mp4': bad, really", "source": "/v/b.mp4"}]  # fmt: skip
    json_path, csv_path = layout.write_summary(rows, {"videos": 2})
    assert json.loads(json_path.read_text()) == {"totals": {"videos": 2}, "videos": rows}
    table = list(csv.DictReader(csv_path.open()))
    assert [(r["name"], r["status"], r["fps"], r["error"]) for r in table] == [
        ("a", "done", "1.5", ""), ("b", "failed", "", "cannot open file 'b.mp4': bad, really")]  # fmt: skip
