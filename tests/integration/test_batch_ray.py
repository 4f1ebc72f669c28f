"""`posestream batch` on a real local Ray: same outputs as `run`, per-video failures, resume, worker death,
Ctrl-C. One Ray session for the module (2 CPUs = 2 workers); commands that must be killed or
interrupted run as subprocesses that join it with --address.
"""

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import ray

from posestream import cli
from posestream.batch.driver import NAMESPACE, board_name, start_local_ray
from posestream.batch.layout import TMP_DIRNAME

CLIPS = ("mmpose_demo", "pose2sim_multiperson_cam01", "pose2sim_singleperson_cam01", "sports2d_demo")
FRAMES = 5  # frame cap, the same for batch and run: the test stays short on 2 cores


@pytest.fixture(scope="module")
def ray_address():
    start_local_ray(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, shared):
    folder = tmp_path_factory.mktemp("bad")
    whole = (shared / "media" / "pose2sim_multiperson_cam01.mp4").read_bytes()
    (folder / "truncated_copy.mp4").write_bytes(whole[: len(whole) // 2])  # index (moov) is at the end
    (folder / "notes.mp4").write_text("shopping list: eggs, milk\n")
    return [folder / "truncated_copy.mp4", folder / "notes.mp4"]


def _model_args(shared, onnx):
    return ["--detector", str(shared / "models" / "yolox_nano_coco.onnx"), "--pose-model", str(onnx),
            "--max-frames", str(FRAMES)]  # fmt: skip


@pytest.fixture(scope="module")
def first_batch(ray_address, shared, vitpose_s_onnx, bad_inputs, tmp_path_factory):
    """The must-show batch: four shared clips + a truncated copy + a text file named .mp4."""
    out = tmp_path_factory.mktemp("batch") / "out"
    inputs = [str(shared / "media" / f"{c}.mp4") for c in CLIPS] + [str(p) for p in bad_inputs]
    argv = ["batch", *inputs, "--out-dir", str(out), "--no-progress", *_model_args(shared, vitpose_s_onnx)]
    return argv, out, _main(argv)


def _main(argv):
    """cli.main in this process (it joins the module's Ray session); (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue()


def _timing_free(jsonl: bytes) -> list[str]:
    """The lines with timing fields (``t_*``, ``*_ms``) removed, if a writer ever adds any."""

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if not (k.startswith("t_") or k.endswith("_ms"))}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj

    return [json.dumps(strip(json.loads(line)), separators=(",", ":")) for line in jsonl.splitlines()]


def test_batch_writes_what_run_writes_and_lists_bad_inputs(first_batch, shared, vitpose_s_onnx, tmp_path):
    _, out, (code, err) = first_batch
    assert code == 1, err
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["videos"]}
    assert list(rows) == [*CLIPS, "truncated_copy", "notes"]
    for clip in CLIPS:
        assert rows[clip]["status"] == "done" and rows[clip]["frames"] == FRAMES, rows[clip]
        run_json, run_csv = tmp_path / f"{clip}.jsonl", tmp_path / f"{clip}.csv"
        assert cli.main(["run", str(shared / "media" / f"{clip}.mp4"), "--out-json", str(run_json),
                         "--out-csv", str(run_csv), "--no-progress", *_model_args(shared, vitpose_s_onnx)]) == 0  # fmt: skip
        batch_json = (out / clip / "keypoints.jsonl").read_bytes()
        assert _timing_free(batch_json) == _timing_free(run_json.read_bytes()), clip
        if _timing_free(batch_json) == [x.decode() for x in batch_json.splitlines()]:  # no timing fields today
            assert batch_json == run_json.read_bytes(), clip
        assert (out / clip / "keypoints.csv").read_bytes() == run_csv.read_bytes(), clip
        assert (out / clip / "video.mp4").stat().st_size > 0 and (out / clip / "angles" / "angles.csv").is_file()
    assert sum(rows[c]["people"] for c in CLIPS) > 0  # real detections went through, not empty frames
    for bad in ("truncated_copy", "notes"):
        row = rows[bad]
        assert row["status"] == "failed" and "\n" not in row["error"] and f"{bad}.mp4" in row["error"]
        assert "not a video file, or truncated" in row["error"]
        assert f"posestream: failed: {bad} " in err
        assert not (out / bad).exists()
    table = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["name"], r["status"], r["error"]) for r in table] == [
        (n, rows[n]["status"], rows[n]["error"] or "") for n in rows]  # fmt: skip
    assert summary["totals"]["done"] == 4 and summary["totals"]["failed"] == 2
    assert not (out / TMP_DIRNAME).exists()
    # The models were loaded once per worker process, not once per video.
    pids = {rows[c]["worker_pid"] for c in CLIPS}
    assert len(pids) < len(CLIPS)
    for pid in pids:
        assert max(rows[c]["model_loads"] for c in CLIPS if rows[c]["worker_pid"] == pid) == 1


def test_rerun_skips_finished_videos_and_force_redoes_one(first_batch, shared, vitpose_s_onnx):
    argv, out, _ = first_batch
    before = {c: (out / c / "batch.json").stat().st_ino for c in CLIPS}
    t0 = time.monotonic()
    code, err = _main(argv)
    rerun_s = time.monotonic() - t0
    assert code == 1  # the bad ones are tried again, and fail again
    rows = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["videos"]}
    assert [rows[c]["status"] for c in CLIPS] == ["skipped"] * 4
    assert {c: (out / c / "batch.json").stat().st_ino for c in CLIPS} == before  # untouched
    print(f"re-run of 6 inputs, 4 of them finished: {rerun_s:.1f} s")

    clip = str(shared / "media" / "sports2d_demo.mp4")
    code, err = _main(["batch", clip, "--out-dir", str(out), "--force", "--no-progress",
                       *_model_args(shared, vitpose_s_onnx)])  # fmt: skip
    assert code == 0, err
    assert (out / "sports2d_demo" / "batch.json").stat().st_ino != before["sports2d_demo"]
    assert json.loads((out / "summary.json").read_text())["videos"][0]["status"] == "done"


def _batch_subprocess(ray_address, inputs, out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "posestream", "batch", *map(str, inputs), "--out-dir", str(out),
         "--address", ray_address, "--outputs", "json", "--no-progress", *extra],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _board(out, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get_actor(board_name(out), namespace=NAMESPACE)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait_running(board, name, min_frames, timeout_s=180):
    """(pid, frames) once ``name`` runs and has done ``min_frames`` (reported through the Ray actor)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        video = ray.get(board.snapshot.remote()).get(name, {})
        if video.get("frames", 0) >= min_frames and video.get("pid"):
            return video["pid"], video["frames"], video.get("total")
        time.sleep(0.1)
    raise AssertionError(f"'{name}' did not reach {min_frames} frames")


def test_killed_worker_mid_video_is_retried_and_completes(ray_address, make_video, vitpose_s_onnx, tmp_path):
    video = make_video(n=60)
    out = tmp_path / "out"
    proc = _batch_subprocess(ray_address, [video], out, "--pose-model", vitpose_s_onnx)
    try:
        pid, frames, total = _wait_running(_board(out), video.stem, min_frames=5)
        assert frames < total == 60  # mid-video
        assert (out / TMP_DIRNAME / video.stem).is_dir()  # its hidden folder, not yet in place
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    (row,) = json.loads((out / "summary.json").read_text())["videos"]
    assert (row["status"], row["attempts"], row["frames"]) == ("done", 2, 60)
    assert row["worker_pid"] != pid
    lines = (out / video.stem / "keypoints.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == list(range(60))  # whole, from the retry alone
    assert {p.name for p in out.iterdir()} == {".posestream-batch.lock", video.stem, "summary.csv", "summary.json"}


def test_ctrl_c_cancels_running_videos_and_keeps_finished_ones(ray_address, make_video, vitpose_s_onnx, tmp_path):
    short, long1, long2 = make_video(n=3), make_video(n=100), make_video(n=100)
    out = tmp_path / "out"
    proc = _batch_subprocess(ray_address, [short, long1, long2], out, "--pose-model", vitpose_s_onnx)
    try:
        board = _board(out)
        deadline = time.monotonic() + 180
        while not (out / short.stem / "batch.json").is_file():
            assert time.monotonic() < deadline, "the short video did not finish"
            time.sleep(0.1)
        _wait_running(board, long1.stem, min_frames=3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    rows = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["videos"]}
    assert rows[short.stem]["status"] == "done"
    assert rows[long1.stem]["status"] == rows[long2.stem]["status"] == "cancelled"
    assert len((out / short.stem / "keypoints.jsonl").read_text().splitlines()) == 3
    assert not (out / long1.stem).exists() and not (out / long2.stem).exists()
    assert not (out / TMP_DIRNAME).exists()
