"""``posestream train`` flag and dataset errors: one line on stderr, exit code 2, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from posestream.cli import main


@pytest.mark.parametrize("extra, message", [
    (["--keypoints", "6"], "--keypoints 6, but"),
    (["--variant", "xl"], "--variant: unknown ViTPose variant"),
    (["--val-images", "somewhere"], "--val-images and --val-annotations together"),
    (["--resume"], "nothing to resume"),
])  # fmt: skip
def test_train_cli_errors_exit_2(shared: Path, tmp_path: Path, capsys, extra, message):
    root = shared / "coco" / "train_mini"
    argv = ["train", "--images", str(root / "images"), "--annotations", str(root / "person_keypoints.json"),
            "--variant", "s", "--decoder", "simple", "--epochs", "1", "--batch-size", "2",
            "--out", str(tmp_path / "run"),
            "--no-progress", *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_train_cli_missing_annotations(tmp_path: Path, capsys):
    (tmp_path / "images").mkdir()
    argv = ["train", "--images", str(tmp_path / "images"), "--annotations", str(tmp_path / "none.json"),
            "--variant", "s", "--epochs", "1", "--batch-size", "2",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2 and "none.json does not exist" in capsys.readouterr().err
