"""Issue 10, case 10 (export): a path that cannot take the model fails at once, in one line.

Before: an existing folder failed after the whole export (37 s), a read-only folder or a full disk
with a traceback. Now the preflight and a free-space check run before any work; a write that still
fails is an ``OutputError`` (exit 1) and leaves nothing at the output path.
"""

from __future__ import annotations

import sys
import time

import pytest
from output_checks import assert_one_line_error, namespaces_work, posestream_cmd, run_on_tiny_fs

from posestream import cli

needs_tiny_fs = pytest.mark.skipif(not namespaces_work(), reason="cannot mount a tmpfs (no user namespaces)")


@pytest.mark.parametrize("target, message", [("{tmp}", "is an existing folder"),
                                             ("/dev/null", "is not a regular file")])  # fmt: skip
def test_export_to_a_folder_or_a_device_is_refused_before_any_work(tmp_path, capsys, target, message):
    t0 = time.monotonic()
    code = cli.main(["export", "--variant", "s", "--weights", "none", "--out", target.format(tmp=tmp_path)])
    assert code == 2 and time.monotonic() - t0 < 15
    assert_one_line_error(capsys.readouterr().err, message)


@needs_tiny_fs
@pytest.mark.parametrize("read_only, message", [(True, "is not writable"), (False, "MB are free")])
def test_export_to_a_read_only_or_full_disk_is_refused_at_once(tmp_path, read_only, message):
    disk = tmp_path / "disk"
    cmd = posestream_cmd("export", "--variant", "s", "--weights", "none", "--out", disk / "s.onnx")
    proc = run_on_tiny_fs(disk, "2m", cmd, tmp_path / "kept", read_only=read_only)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, message)
    assert not list((tmp_path / "kept").iterdir())


@needs_tiny_fs
def test_export_write_error_is_an_output_error_and_leaves_nothing(tmp_path):
    # A model small enough to pass the free-space check of a caller that has none, on a 16 KB disk.
    disk = tmp_path / "disk"
    script = f"""
import torch
from posestream.errors import OutputError
from posestream.export.onnx import export_onnx
model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.Conv2d(64, 17, 1),
                            torch.nn.AdaptiveAvgPool2d((64, 48)))
try:
    export_onnx(model, {str(disk / 'tiny.onnx')!r}, random_weights=True)
except OutputError as exc:
    print("OutputError:", exc)
"""
    proc = run_on_tiny_fs(disk, "16k", [sys.executable, "-c", script], tmp_path / "kept")
    assert proc.returncode == 0, proc.stderr
    assert "OutputError: cannot write the exported model" in proc.stdout and "No space left" in proc.stdout
    assert not list((tmp_path / "kept").iterdir())  # no partial file, no staging folder

