"""Issue 10, data loss: outputs never destroy the source or each other; refused runs touch nothing;
two runs never write the same file; write errors fail the run and keep what decodes.

Real files made by PyAV, the real CLI, real processes, a real tiny filesystem for disk-full.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time

import pytest
from output_checks import (assert_one_line_error, decode_all, digest, namespaces_work, parse_jsonl,
                           posestream_cmd, run_args, run_on_tiny_fs, write_noisy_video)  # fmt: skip

from posestream import cli


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main(run_args("run", *args))
    return code, capsys.readouterr().err


# --------------------------------------------------------------------------- case 1
@pytest.mark.parametrize("flag", ["--out-video", "--out-json", "--out-csv"])
def test_output_equal_to_the_source_is_refused_and_the_source_untouched(make_video, capsys, flag):
    src = make_video(n=10)
    before = digest(src)
    code, err = _run(capsys, src, flag, src)
    assert code == 2
    assert_one_line_error(err, "is the source itself")
    assert digest(src) == before and len(decode_all(src)) == 10


def test_output_reaching_the_source_through_a_link_or_dots_is_refused(make_video, tmp_path, capsys):
    src = make_video(n=10)
    (tmp_path / "link.mp4").symlink_to(src)
    (tmp_path / "sub").mkdir()
    before = digest(src)
    for alias in (tmp_path / "link.mp4", tmp_path / "sub" / ".." / src.name):
        code, err = _run(capsys, src, "--out-video", alias)
        assert code == 2
        assert_one_line_error(err, "is the source itself")
    os.link(src, tmp_path / "hard.mp4")  # same inode, another name
    code, err = _run(capsys, src, "--out-json", tmp_path / "hard.mp4")
    assert code == 2 and "is the source itself" in err
    assert digest(src) == before


def test_one_path_for_two_outputs_is_refused_and_the_old_file_kept(make_video, tmp_path, capsys):
    src = make_video(n=10)
    same = tmp_path / "results.out"
    same.write_text("an earlier result\n")
    code, err = _run(capsys, src, "--out-json", same, "--out-video", same)
    assert code == 2
    assert_one_line_error(err, "same file as the")
    assert same.read_text() == "an earlier result\n"


def test_image_of_the_source_folder_as_output_is_refused(tmp_path, capsys):
    import cv2
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((40, 60, 3), 90 * i, np.uint8))
    before = digest(folder / "p1.png")
    code, err = _run(capsys, folder, "--out-csv", folder / "p1.png")
    assert code == 2 and "is the source itself" in err
    assert digest(folder / "p1.png") == before


@pytest.mark.parametrize("kind", ["folder", "file-as-folder"])
def test_output_that_is_a_folder_or_below_a_file_is_refused(make_video, tmp_path, capsys, kind):
    src = make_video(n=5)
    target = tmp_path if kind == "folder" else src.parent / "plain.txt" / "o.jsonl"
    (src.parent / "plain.txt").write_text("x")
    code, err = _run(capsys, src, "--out-json", target)
    assert code == 2
    assert_one_line_error(err, "existing folder" if kind == "folder" else "is a file")


def test_missing_output_folder_is_made_and_a_refused_run_leaves_no_folder_behind(make_video, tmp_path, capsys):
    src = make_video(n=5)
    code, err = _run(capsys, src, "--out-json", tmp_path / "new" / "deeper" / "k.jsonl")
    assert code == 0, err
    assert len(parse_jsonl(tmp_path / "new" / "deeper" / "k.jsonl")) == 5
    # Refused after the claim (the pose model is bad): the folders the claim made are gone again.
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_text("not onnx")
    code, err = _run(capsys, src, "--out-json", tmp_path / "other" / "k.jsonl", "--out-video",
                     tmp_path / "other" / "v.mp4", "--pose-model", bad_model)  # fmt: skip
    assert code == 2 and not (tmp_path / "other").exists()  # the new video's early header went too


# --------------------------------------------------------------------------- case 5
def test_refused_run_keeps_every_earlier_output_byte_for_byte(make_video, tmp_path, capsys):
    src = make_video(n=12)
    keep_json, keep_video = tmp_path / "keep.jsonl", tmp_path / "keep.mp4"
    assert cli.main(run_args("run", src, "--out-json", keep_json, "--out-video", keep_video)) == 0
    capsys.readouterr()
    before = digest(keep_json), digest(keep_video)
    mtimes = keep_json.stat().st_mtime_ns, keep_video.stat().st_mtime_ns
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"\x00" * 100)
    refusals = [
        (["--serve", f"127.0.0.1:{port}"], "address already in use"),
        (["--serve", "127.0.0.1:70000"], "out of range"),
        (["--pose-model", bad_model], "bad.onnx"),
        (["--set", "detector.detect_every=0"], "detector.detect_every = 0"),
        (["--set", "pipeline.queue_size=0"], "pipeline.queue_size = 0"),
    ]
    try:
        for extra, message in refusals:
            code, err = _run(capsys, src, "--out-json", keep_json, "--out-video", keep_video, *extra)
            assert code == 2, (extra, err)
            assert_one_line_error(err, message)
            assert (digest(keep_json), digest(keep_video)) == before, extra
            assert (keep_json.stat().st_mtime_ns, keep_video.stat().st_mtime_ns) == mtimes
    finally:
        busy.close()


# --------------------------------------------------------------------------- case 6
def test_second_run_on_the_same_outputs_exits_2_naming_the_first(make_video, tmp_path, capsys):
    src = make_video(n=150, size_wh=(160, 120))  # 5 s, played in real time by the first run
    out_json, out_video = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    first = subprocess.Popen(posestream_cmd("run", src, "--realtime", "--out-json", out_json, "--out-video",
                                            out_video), stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (out_json.exists() and out_json.read_text().count("\n") >= 5):
            assert time.monotonic() < deadline and first.poll() is None, "first run did not start"
            time.sleep(0.05)
        other = tmp_path / "other.jsonl"
        for args in (["--out-json", out_json], ["--out-json", other, "--out-video", out_video]):
            code, err = _run(capsys, src, *args)
            assert code == 2
            assert_one_line_error(err, "is being written by another run", f"pid {first.pid}")
        assert not other.exists()  # the refused run made nothing
        first.send_signal(signal.SIGINT)
        _, first_err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 130, first_err
    records = parse_jsonl(out_json)
    frames = [r["frame"] for r in records]
    assert frames == sorted(set(frames))  # one writer: no torn or interleaved lines
    times = decode_all(out_video)
    assert times == sorted(times) and len(times) == len(records)


# --------------------------------------------------------------------------- case 2 and write errors
needs_tiny_fs = pytest.mark.skipif(not namespaces_work(), reason="cannot mount a tmpfs (no user namespaces)")


@needs_tiny_fs
def test_disk_full_while_writing_the_video_exits_1_and_keeps_a_decodable_file(make_video, tmp_path):
    src = write_noisy_video(tmp_path / "noise.mp4", 30)  # ~15 KB a frame: 96 KB fill up at frame ~6
    disk, keep = tmp_path / "disk", tmp_path / "kept"
    cmd = posestream_cmd("run", src, "--out-video", disk / "o.mp4", "--out-json", tmp_path / "o.jsonl")
    proc = run_on_tiny_fs(disk, "96k", cmd, keep)
    assert proc.returncode == 1, proc.stderr
    line = assert_one_line_error(proc.stderr, "video", str(disk / "o.mp4"), "No space left on device")
    assert "stage 'video'" in line
    times = decode_all(keep / "o.mp4")  # cut back to its last whole fragment: decodes to the end
    assert 0 < len(times) < 30
    assert "write failed" in proc.stderr  # the summary says what was kept, never "finalised"
    assert not any(name.startswith(".o.mp4") for name in os.listdir(keep))  # no remux leftovers


@needs_tiny_fs
def test_disk_full_while_writing_keypoints_keeps_whole_lines(make_video, tmp_path):
    src = make_video(n=200)  # 200 lines of ~36 bytes: more than the one free 4 KB page
    disk, keep = tmp_path / "disk", tmp_path / "kept"
    run = " ".join(posestream_cmd("run", src, "--out-json", disk / "k.jsonl", "--out-csv", tmp_path / "k.csv"))
    proc = run_on_tiny_fs(disk, "12k", ["sh", "-c", f"head -c 8192 /dev/zero > {disk}/filler && exec {run}"], keep)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc.stderr, "stage 'keypoints'", f"JSON output '{disk / 'k.jsonl'}'",
                          "No space left on device")  # fmt: skip
    records = parse_jsonl(keep / "k.jsonl")
    assert 50 < len(records) < 200 and [r["frame"] for r in records] == list(range(len(records)))


@needs_tiny_fs
def test_read_only_folder_is_refused_before_anything_runs(make_video, tmp_path):
    src = make_video(n=5)
    disk, keep = tmp_path / "ro", tmp_path / "kept"
    for flag, name in (("--out-json", "k.jsonl"), ("--out-csv", "k.csv"), ("--out-video", "v.mp4")):
        proc = run_on_tiny_fs(disk, "64k", posestream_cmd("run", src, flag, disk / name), keep, read_only=True)
        assert proc.returncode == 2, proc.stderr
        assert_one_line_error(proc.stderr, "is not writable", str(disk))


def _file_size_limit(limit: int):
    """For ``preexec_fn``: writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("flag, name, what", [("--out-video", "o.mp4", "video"), ("--out-json", "k.jsonl", "JSON")])
def test_write_error_at_the_file_layer_mid_run_exits_1_and_keeps_what_decodes(make_video, tmp_path, flag, name, what):
    # Runs everywhere (no tmpfs needed): the kernel refuses writes past a file-size limit mid-run.
    src = write_noisy_video(tmp_path / "noise.mp4", 30) if what == "video" else make_video(n=300)
    out = tmp_path / name
    proc = subprocess.run(posestream_cmd("run", src, flag, out), capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(96_000 if what == "video" else 6_000))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc.stderr, f"{what} output '{out}'", "File too large")
    assert "write failed" in proc.stderr and "finalised" not in proc.stderr
    if what == "video":
        assert 0 < len(decode_all(out)) < 30  # cut back to its last whole fragment: decodes to the end
        assert not any(n.startswith(".o.mp4") for n in os.listdir(tmp_path))  # no remux leftovers
    else:
        records = parse_jsonl(out)  # whole lines only
        assert 50 < len(records) < 300 and [r["frame"] for r in records] == list(range(len(records)))


def test_writing_to_a_full_device_exits_1_naming_the_output(make_video, capsys):
    src = make_video(n=5)
    for flag, what in (("--out-csv", "CSV"), ("--out-json", "JSON"), ("--out-video", "video")):
        code, err = _run(capsys, src, flag, "/dev/full")
        assert code == 1, err
        assert_one_line_error(err, f"{what} output '/dev/full'", "No space left on device")
